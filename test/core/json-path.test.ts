import { describe, expect, it } from 'vitest';
import { jsonPathOf, pointerSegments } from '../../src/core/json-path.ts';

describe('jsonPathOf', () => {
  it('turns ajv pointers into the paths error details use', () => {
    expect(jsonPathOf(pointerSegments('/events/0'))).toBe('$.events[0]');
    expect(jsonPathOf(pointerSegments('/headers/X-Num'))).toBe('$.headers.X-Num');
    expect(jsonPathOf(pointerSegments('/a~1b/c~0d'), { root: '$.connector_options' })).toBe('$.connector_options.a/b.c~d');
    expect(jsonPathOf([])).toBe('$');
  });

  it('with the data, writes [n] only where the value is an array, and quotes odd keys', () => {
    const data = { criteria: [{ score: 1 }], byId: { '0': 'x' }, 'odd key': 1, 'a.b': 2 };
    expect(jsonPathOf(['criteria', '0', 'score'], { root: '$.data', data })).toBe('$.data.criteria[0].score');
    expect(jsonPathOf(['byId', '0'], { root: '$.data', data })).toBe('$.data.byId.0');
    expect(jsonPathOf(['odd key'], { root: '$.data', data })).toBe('$.data["odd key"]');
    expect(jsonPathOf(['a.b'], { root: '$.data', data })).toBe('$.data["a.b"]');
  });

  it('undoes JSON Pointer escapes in the right order, everywhere in a segment', () => {
    expect(pointerSegments('')).toEqual([]);
    expect(pointerSegments('/')).toEqual(['']);
    expect(pointerSegments('/a/b')).toEqual(['a', 'b']);
    expect(pointerSegments('/a~1b~1c/~0~0')).toEqual(['a/b/c', '~~']);
    // ~01 is an escaped "~" followed by "1", not an escaped "/".
    expect(pointerSegments('/~01')).toEqual(['~1']);
  });

  it('without data, reads whole-number segments as indexes and nothing else', () => {
    expect(jsonPathOf(['list', '12'])).toBe('$.list[12]');
    expect(jsonPathOf(['a1', '1a'])).toBe('$.a1.1a');
  });

  it('quotes keys with dots, brackets, quotes or spaces, and the empty key', () => {
    expect(jsonPathOf(['a[0]'])).toBe('$["a[0]"]');
    expect(jsonPathOf(['x]'])).toBe('$["x]"]');
    expect(jsonPathOf(['say "hi"'])).toBe('$["say \\"hi\\""]');
    expect(jsonPathOf(["it's"])).toBe(`$["it's"]`);
    expect(jsonPathOf(['tab\there'])).toBe('$["tab\\there"]');
    expect(jsonPathOf([''])).toBe('$[""]');
    expect(jsonPathOf(['snake_case-key$'])).toBe('$.snake_case-key$');
  });

  it('walks with the data given, even when it is undefined or holds null', () => {
    expect(jsonPathOf(['0'], { data: undefined })).toBe('$.0');
    expect(jsonPathOf(['a', '0'], { data: { a: null } })).toBe('$.a.0');
    expect(jsonPathOf(['a', '0', '1'], { data: { a: [[1, 2]] } })).toBe('$.a[0][1]');
    expect(jsonPathOf(['a', '0', '1'], { data: { a: ['text'] } })).toBe('$.a[0].1');
  });
});
