import { describe, expect, it } from 'vitest';
import { compileOrderingKey, evaluateOrderingKey } from '../../src/core/mapping.ts';
import { MAX_ORDERING_KEY_LENGTH, compileRoute, evaluateRoute, normalizeOrdering, orderingExpression, orderingKeyValue, plainKeyPath, readPlainKey, routeSource } from '../../src/core/ordering.ts';
import { ROOMY_LIMITS } from '../support/limits.ts';

const jsonataKey = async (expression: string, envelope: unknown) => orderingKeyValue(await evaluateOrderingKey(compileOrderingKey(expression), envelope, {}, ROOMY_LIMITS));

describe('ordering key values', () => {
  it('are strings as they are, other values as (stable) JSON, and nothing for undefined, null and ""', () => {
    expect(orderingKeyValue('conv_1')).toBe('conv_1');
    expect(orderingKeyValue(42)).toBe('42');
    expect(orderingKeyValue(true)).toBe('true');
    expect(orderingKeyValue({ b: 1, a: [2, 'x'] })).toBe('{"a":[2,"x"],"b":1}');
    expect(orderingKeyValue({ a: [2, 'x'], b: 1 })).toBe(orderingKeyValue({ b: 1, a: [2, 'x'] }));
    for (const nothing of [undefined, null, '']) expect(orderingKeyValue(nothing)).toBeNull();
  });

  it('are nothing for a value with no JSON form (no crash on it)', () => {
    for (const noJson of [Symbol('key'), () => 'key', { toJSON: () => undefined }]) expect(orderingKeyValue(noJson)).toBeNull();
  });

  it('longer than 255 characters become a hash of the value, the same for the same value', () => {
    const long = 'c'.repeat(MAX_ORDERING_KEY_LENGTH + 1);
    expect(orderingKeyValue(long)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(orderingKeyValue(long)).toBe(orderingKeyValue(long));
    expect(orderingKeyValue(long)).not.toBe(orderingKeyValue(`${long}d`));
    expect(orderingKeyValue('c'.repeat(MAX_ORDERING_KEY_LENGTH))).toHaveLength(MAX_ORDERING_KEY_LENGTH);
  });
});

describe('the ordering policy', () => {
  it('defaults on_failure to continue; "*" needs no expression', () => {
    expect(normalizeOrdering({ key: 'data.a' })).toEqual({ key: 'data.a', on_failure: 'continue' });
    expect(normalizeOrdering({ key: 'data.a', on_failure: 'block' })).toEqual({ key: 'data.a', on_failure: 'block' });
    expect(normalizeOrdering(null)).toBeNull();
    expect(orderingExpression({ key: '*', on_failure: 'continue' })).toBeNull();
    expect(orderingExpression({ key: 'data.a', on_failure: 'continue' })).toBe('data.a');
    expect(orderingExpression(null)).toBeNull();
  });
});

describe('plain key paths, read without an evaluator', () => {
  it('are dotted field names only', () => {
    expect(plainKeyPath('data.conversation_id')).toEqual(['data', 'conversation_id']);
    expect(plainKeyPath(' id ')).toEqual(['id']);
    for (const other of ['$.data', 'data.a[0]', 'data."a b"', 'data.a & "x"', 'data.in', 'data.and.b', '$substring(id, 1)', 'data.`a`', 'data..a', '']) expect(plainKeyPath(other), other).toBeUndefined();
    // Names start with a letter or "_": JSONata reads `data.a-b` as a subtraction, `data.1st` not at all.
    for (const other of ['data.a-b', 'data.1st', '2']) expect(plainKeyPath(other), other).toBeUndefined();
  });

  it('leave true, false and null to the evaluators: JSONata reads them as values, not fields', async () => {
    for (const literal of ['true', 'false', 'null', 'data.true', 'data.false', 'data.null']) expect(plainKeyPath(literal), literal).toBeUndefined();
    // Read as a field, `true` would give each event its own key; JSONata gives them all one.
    const envelope = { true: 'conv_1', false: 'conv_2', null: 'conv_3' };
    expect(await jsonataKey('true', envelope)).toBe('true');
    expect(await jsonataKey('false', envelope)).toBe('false');
    expect(await jsonataKey('null', envelope)).toBeNull();
  });

  it('give what JSONata gives, and leave arrays to the evaluators', async () => {
    const envelopes = [
      { event: 'x', id: 'e1', data: { conversation_id: 'conv_1' } },
      { event: 'x', id: 'e2', data: { conversation_id: 7 } },
      { event: 'x', id: 'e3', data: { conversation_id: { z: 1, a: 2 } } },
      { event: 'x', id: 'e4', data: { conversation_id: null } },
      { event: 'x', id: 'e5', data: { conversation_id: '' } },
      { event: 'x', id: 'e6', data: {} },
      { event: 'x', id: 'e7', data: 'text' },
      { event: 'x', id: 'e8', data: { conversation_id: false } },
    ];
    for (const expression of ['data.conversation_id', 'id', 'data.conversation_id.a', 'data.missing.deeper']) {
      for (const envelope of envelopes) {
        const read = readPlainKey(envelope, plainKeyPath(expression)!);
        expect(read, `${expression} on ${envelope.id}`).toEqual({ key: await jsonataKey(expression, envelope) });
      }
    }
    expect(readPlainKey({ data: { conversation_id: ['a'] } }, ['data', 'conversation_id'])).toBeUndefined();
    expect(readPlainKey({ data: [{ conversation_id: 'a' }] }, ['data', 'conversation_id'])).toBeUndefined();
  });
});

describe('a route: the filter and the key in one evaluation', () => {
  const envelope = { event: 'signal.frustration_spike', id: 'e1', data: { conversation_id: 'conv_1', severity: 'high' } };

  it('evaluates the key only for a match, and says why a failing key left the event unordered', async () => {
    const route = (filter: string | null, key: string | null) => evaluateRoute(compileRoute(routeSource(filter, key)), envelope, {}, ROOMY_LIMITS);
    expect(await route('data.severity = "high"', 'data.conversation_id')).toEqual({ matches: true, key: 'conv_1' });
    expect(await route('data.severity = "low"', 'data.conversation_id')).toEqual({ matches: false, key: null });
    expect(await route(null, 'data.conversation_id & "-" & event')).toEqual({ matches: true, key: 'conv_1-signal.frustration_spike' });
    expect(await route(null, 'data.nothing')).toEqual({ matches: true, key: null });
    // A filter alone: a match is unordered.
    expect(await route('data.severity = "high"', null)).toEqual({ matches: true, key: null });
    expect(await route('data.severity = "low"', null)).toEqual({ matches: false, key: null });
    const failing = await route(null, '$number("not a number") + $foo()');
    expect(failing).toMatchObject({ matches: true, key: null, key_error: expect.any(String) });
  });

  it('a filter that fails throws, as a filter alone does', async () => {
    await expect(evaluateRoute(compileRoute(routeSource('$undefinedFunction()', 'id')), envelope, {}, ROOMY_LIMITS)).rejects.toMatchObject({ code: 'filter_runtime_error' });
  });
});
