import { describe, expect, it } from 'vitest';
import { json, parse } from '../../src/storage/json-columns.ts';

describe('JSON text columns', () => {
  it('store null and a missing value as SQL NULL (not the text "null"), and anything else as its JSON, key order kept', () => {
    expect(json(null)).toBeNull();
    expect(json(undefined)).toBeNull();
    expect(json({ b: 1, a: [null] })).toBe('{"b":1,"a":[null]}');
    expect(json(false)).toBe('false');
    expect(parse(null)).toBeNull();
    expect(parse('{"b":1,"a":2}')).toEqual({ b: 1, a: 2 });
  });
});
