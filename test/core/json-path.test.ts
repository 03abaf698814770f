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
});
