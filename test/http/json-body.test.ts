import { describe, expect, it } from 'vitest';
import { DepthScanner } from '../../src/http/json-body.ts';

describe('DepthScanner', () => {
  it('counts nesting across chunks', () => {
    const scanner = new DepthScanner(3);
    expect(scanner.feed('{"a":[')).toBe(true);
    expect(scanner.feed('[1],')).toBe(true);
    expect(scanner.feed('[[')).toBe(false);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    const scanner = new DepthScanner(2);
    expect(scanner.feed('{"text": "[[[[{{{{ \\" [[[[", "b": ')).toBe(true);
    expect(scanner.feed('"\\\\"}')).toBe(true);
    expect(scanner.feed('[[')).toBe(true);
    expect(scanner.feed('[')).toBe(false);
  });

  it('closing brackets give depth back', () => {
    const scanner = new DepthScanner(2);
    for (let i = 0; i < 100; i++) expect(scanner.feed('[[]]')).toBe(true);
  });
});
