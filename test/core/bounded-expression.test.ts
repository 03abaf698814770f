import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { boundedShape, jsonSizeWithin } from '../../src/core/bounded-expression.ts';

const shape = (source: string) => boundedShape(jsonata(source).ast());

describe('boundedShape', () => {
  it('accepts paths, literals, constructors, operators and conditionals, counting the paths read', () => {
    expect(shape('{"id": id, "event": event, "call_id": data.call.id, "status": data.call.status, "duration": data.call.duration}')).toEqual({ references: 5 });
    expect(shape('data.score > 0.8 and event = "call.ended"')).toEqual({ references: 2 });
    expect(shape('data.items[price > 1 and tags[0] = "x"].name')).toEqual({ references: 3 });
    expect(shape('[id, -data.n, data.a & "-" & data.b, data.n % 2 = 0 ? "even" : "odd", event in ["a", "b"], (id; event), data.list[]]')).toEqual({ references: 9 });
    expect(shape('"constant"')).toEqual({ references: 0 });
    expect(shape('{"nested": {"deeper": [data.x, null, true, 1.5]}}')).toEqual({ references: 1 });
  });

  it.each([
    ['a function call', '$uppercase(data.x)'],
    ['the $pad allocation', '$pad("", 60000000)'],
    ['a regular expression', '$contains(data.ua, /^(a+)+$/)'],
    ['the root variable', 'data.items.{"root": $$}'],
    ['the context variable', '$.data'],
    ['a bound variable', '($x := data; $x)'],
    ['a binding', '$subscription.id'],
    ['a wildcard', 'data.*'],
    ['descendants', 'data.**.name'],
    ['a range', '[1..100000000]'],
    ['a constructor inside a path', 'data.items.{"n": name}'],
    ['an array constructor inside a path', 'data.items.[name, name]'],
    ['grouping', 'data.items{name: price}'],
    ['sorting', 'data.items^(price)'],
    ['the parent operator', 'data.items.name.%'],
    ['a focus binding', 'data.items@$i'],
    ['an index binding', 'data.items#$i'],
    ['a lambda', 'function($x) { $x }'],
    ['a transform', '$ ~> |data|{"x": 1}|'],
    ['function application', 'data.x ~> $string'],
  ])('refuses %s', (_what, source) => {
    expect(shape(source)).toBeUndefined();
  });
});

describe('boundedShape on hand-built trees (forms jsonata may produce in other versions)', () => {
  const name = (value: string, extra: Record<string, unknown> = {}) => ({ type: 'name', value, position: 1, ...extra });
  const path = (...steps: unknown[]) => ({ type: 'path', steps });

  it('accepts a conditional without else, counting both paths', () => {
    expect(shape('a ? b')).toEqual({ references: 2 });
    expect(shape('a ? b : c')).toEqual({ references: 3 });
    expect(boundedShape({ type: 'condition', condition: path(name('a')), then: path(name('b')), else: { type: 'function' } })).toBeUndefined();
    expect(boundedShape({ type: 'condition', condition: path(name('a')), then: { type: 'variable', value: '' } })).toBeUndefined();
    expect(boundedShape({ type: 'condition', condition: { type: 'variable', value: '' }, then: path(name('b')) })).toBeUndefined();
  });

  it('refuses a path with no steps, extra properties, or steps that are not plain names', () => {
    expect(boundedShape(path(name('a')))).toEqual({ references: 1 });
    expect(boundedShape({ type: 'path', steps: [] })).toBeUndefined();
    expect(boundedShape({ type: 'path' })).toBeUndefined();
    expect(boundedShape({ ...path(name('a')), group: {} })).toBeUndefined();
    expect(boundedShape(path(name('a', { focus: 'x' })))).toBeUndefined();
    expect(boundedShape(path(name('a'), { type: 'wildcard', value: '*' }))).toBeUndefined();
    expect(boundedShape(path(name('a', { stages: [{ type: 'index', expr: { type: 'number', value: 0 } }] })))).toBeUndefined();
    expect(boundedShape(path(name('a', { stages: [{ type: 'filter', expr: { type: 'regex', value: /x/ } }] })))).toBeUndefined();
    expect(boundedShape(path(name('a', { stages: [{ type: 'filter', expr: path(name('b')) }] })))).toEqual({ references: 2 });
  });

  it('refuses unknown operators and node types, and anything that is not a node', () => {
    expect(boundedShape({ type: 'binary', value: '..', lhs: { type: 'number', value: 1 }, rhs: { type: 'number', value: 2 } })).toBeUndefined();
    expect(boundedShape({ type: 'binary', value: '+', lhs: { type: 'number', value: 1 }, rhs: { type: 'variable', value: '' } })).toBeUndefined();
    expect(boundedShape({ type: 'binary', value: '+', lhs: { type: 'variable', value: '' }, rhs: { type: 'number', value: 1 } })).toBeUndefined();
    expect(boundedShape({ type: 'unary', value: '!', expression: { type: 'number', value: 1 } })).toBeUndefined();
    expect(boundedShape({ type: 'unary', value: '-', expression: { type: 'variable', value: '' } })).toBeUndefined();
    expect(boundedShape({ type: 'unary', value: '[' })).toBeUndefined();
    expect(boundedShape({ type: 'unary', value: '[', expressions: [{ type: 'variable', value: '' }] })).toBeUndefined();
    expect(boundedShape({ type: 'unary', value: '{', lhs: { type: 'string', value: 'k' } })).toBeUndefined();
    expect(boundedShape({ type: 'unary', value: '{', lhs: [[{ type: 'string', value: 'k' }, { type: 'variable', value: '' }]] })).toBeUndefined();
    expect(boundedShape({ type: 'unary', value: '{', lhs: [[{ type: 'variable', value: '' }, { type: 'string', value: 'v' }]] })).toBeUndefined();
    expect(boundedShape({ type: 'block' })).toBeUndefined();
    expect(boundedShape({ type: 'block', expressions: [{ type: 'number', value: 1 }, { type: 'variable', value: '' }] })).toBeUndefined();
    expect(boundedShape({ type: 'value', value: true })).toEqual({ references: 0 });
    expect(boundedShape(null)).toBeUndefined();
    expect(boundedShape(undefined)).toBeUndefined();
    expect(boundedShape('path')).toBeUndefined();
  });
});

describe('jsonSizeWithin', () => {
  it('counts strings with their quotes, numbers and booleans as 8, null as 4, brackets and separators', () => {
    expect(jsonSizeWithin('abc', 100)).toBe(5);
    expect(jsonSizeWithin(12, 100)).toBe(8);
    expect(jsonSizeWithin(false, 100)).toBe(8);
    expect(jsonSizeWithin(null, 100)).toBe(4);
    expect(jsonSizeWithin(undefined, 100)).toBe(4);
    expect(jsonSizeWithin([], 100)).toBe(2);
    expect(jsonSizeWithin(['a', 'b'], 100)).toBe(2 + 2 + 3 + 3);
    expect(jsonSizeWithin({}, 100)).toBe(2);
    expect(jsonSizeWithin({ ab: 1 }, 100)).toBe(2 + 4 + 2 + 8);
    expect(jsonSizeWithin({ a: { b: 'c' } }, 100)).toBe(2 + 5 + 2 + 5 + 3);
  });

  it('accepts a value exactly at the limit and refuses one a byte over, wherever the excess is found', () => {
    expect(jsonSizeWithin('abc', 5)).toBe(5);
    expect(jsonSizeWithin('abc', 4)).toBeUndefined();
    // The array header alone passes the limit: refused before its elements are read.
    expect(jsonSizeWithin([1, 2], 4)).toBeUndefined();
    expect(jsonSizeWithin([1, 2], 20)).toBe(20);
    // A key alone passes the limit.
    expect(jsonSizeWithin({ abcdef: 1 }, 9)).toBeUndefined();
    expect(jsonSizeWithin({ abcdef: 1 }, 20)).toBe(20);
    expect(jsonSizeWithin({ abcdef: 1 }, 19)).toBeUndefined();
  });

  it('is the size of the value as JSON, near enough', () => {
    const value = { id: 'evt_1', data: { n: 12, ok: true, none: null, list: ['a', 'bc'] } };
    const size = jsonSizeWithin(value, 1_000)!;
    expect(Math.abs(size - JSON.stringify(value).length)).toBeLessThan(JSON.stringify(value).length / 2);
  });

  it('stops as soon as the value is larger than the limit', () => {
    expect(jsonSizeWithin({ s: 'x'.repeat(2_000) }, 1_000)).toBeUndefined();
    // A huge array or object is refused on its length, before its elements are read.
    const huge = new Array(10_000_000);
    expect(jsonSizeWithin({ huge }, 1_000)).toBeUndefined();
    expect(jsonSizeWithin(Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`k${i}`, i])), 1_000)).toBeUndefined();
  });

  it('refuses values that are not plain JSON', () => {
    expect(jsonSizeWithin({ f: () => 1 }, 1_000)).toBeUndefined();
  });
});

describe('bounded subset: every operator, and sizes at the limit', () => {
  it.each(['+', '-', '*', '/', '%', '=', '!=', '<', '<=', '>', '>=', '&', 'and', 'or', 'in'])('accepts the binary operator %s between two paths', (op) => {
    expect(boundedShape(jsonata(`data.a ${op} data.b`).ast())).toEqual({ references: 2 });
  });

  it('counts a size that reaches the limit exactly as within it', () => {
    expect(jsonSizeWithin([], 2)).toBe(2);
    expect(jsonSizeWithin([[]], 5)).toBe(5);
    expect(jsonSizeWithin([[]], 4)).toBeUndefined();
  });
});
