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

describe('jsonSizeWithin', () => {
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
