import { describe, expect, it } from 'vitest';
import jsonata from 'jsonata';
import { TemplateError } from '../../src/errors.ts';
import { compileFilter, compileTemplate, evaluateFilter, evaluateTemplate } from '../../src/core/mapping.ts';
import { LinearRegex, findUnsupportedRegex } from '../../src/core/linear-regex.ts';
import { ROOMY_LIMITS } from '../support/limits.ts';

/** jsonata with its default engine (V8's backtracking RegExp), as the reference for results. */
const withRegExp = (source: string, input: unknown = {}) => jsonata(source).evaluate(input);

describe('templates run regular expressions on the linear engine', () => {
  it.each([
    '$match("ab12cd345", /\\d+/)',
    '$contains("Hello", /l+/i)',
    '$replace("a-b-c", /-/, "+")',
    '$replace("2024-05-01", /(\\d+)-(\\d+)-(\\d+)/, "$3/$2/$1")',
    '$split("a1b22c", /\\d+/)',
    '$match("xb", /(a)|(b)/)',
    '"Hello" ~> /l+/i',
    '$match("😀 ab 😀 b", /b/)',
    '$match("a\\nb\\nb", /^b$/m)',
    '$match("one two  three", /\\s+/)',
    '$contains("call_abc123", /^call_[a-z0-9]+$/)',
  ])('%s gives what RegExp gives', async (source) => {
    const expected = await withRegExp(source);
    expect(await evaluateTemplate(compileTemplate(source), {}, {}, ROOMY_LIMITS)).toEqual(JSON.parse(JSON.stringify(expected)));
  });

  it('runs a pattern that backtracks catastrophically in linear time', async () => {
    // With V8's engine this input takes longer than the age of the universe; here, microseconds.
    const event = { data: { user_agent: `${'a'.repeat(5_000)}!` } };
    expect(await evaluateTemplate(compileTemplate('{"ua": $contains(data.user_agent, /^(a+)+$/)}'), event, {}, ROOMY_LIMITS)).toEqual({ ua: false });
    expect(await evaluateFilter(compileFilter('$match(data.user_agent, /(a|aa)+$/) = null'), event, {}, ROOMY_LIMITS)).toBe(false);
  });

  it.each([
    ['a backreference', '{"x": $match(data.s, /(a)\\1/)}', 1, 22],
    ['a lookahead', '$contains(data.s,\n  /a(?=b)/)', 2, 3],
    ['a lookbehind', '$replace(data.s, /(?<!x)y/, "z")', 1, 18],
  ])('refuses %s when the template is compiled, with its position', (_what, source, line, column) => {
    let err: unknown;
    try {
      compileTemplate(source);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TemplateError);
    const error = err as TemplateError;
    expect(error.code).toBe('template_syntax_error');
    expect(error.message).toMatch(/is not supported.*linear-time engine/);
    expect(error.details[0]).toMatchObject({ line, column });
  });

  it('refuses them in filters too', () => {
    expect(() => compileFilter('$contains(data.s, /(x)\\1/)')).toThrowError(expect.objectContaining({ code: 'filter_syntax_error' }));
  });
});

describe('LinearRegex', () => {
  it('walks matches with lastIndex like a global RegExp, empty matches included', () => {
    for (const [pattern, input] of [[/a*/g, 'baab'], [/\d/g, 'a1b2c3'], [/x/g, 'abc']] as const) {
      const linear = new LinearRegex(pattern);
      const native = new RegExp(pattern.source, pattern.flags);
      for (let i = 0; i < 5; i++) {
        const ours = linear.exec(input);
        const theirs = native.exec(input);
        expect(ours?.[0]).toEqual(theirs?.[0]);
        expect(ours?.index).toEqual(theirs?.index);
        expect(linear.lastIndex).toBe(native.lastIndex);
        if (theirs?.[0] === '') {
          linear.lastIndex++;
          native.lastIndex++;
        }
      }
    }
  });

  it('fails a pattern that matches the empty string over and over the way jsonata does (D1004)', async () => {
    const reference = await withRegExp('$match("baab", /a*/)').catch((e: { code: string }) => e.code);
    const ours = await evaluateTemplate(compileTemplate('$match("baab", /a*/)'), {}, {}, ROOMY_LIMITS).catch((e: TemplateError) => e.details[0]?.jsonata_code);
    expect(reference).toBe('D1004');
    expect(ours).toBe('D1004');
  });

  it('reports the leftmost unsupported pattern in an expression', () => {
    const ast = jsonata('{"a": /(a)\\1/, "b": /a(?=b)/}').ast();
    expect(findUnsupportedRegex(ast)).toMatchObject({ pattern: '(a)\\1' });
    expect(findUnsupportedRegex(jsonata('{"a": /ok+/}').ast())).toBeUndefined();
  });

  it('reports the leftmost unsupported pattern wherever it sits in the tree, with RE2\'s reason', () => {
    const found = findUnsupportedRegex(jsonata('{"a": /(a)\\1/, "b": /a(?=b)/}').ast());
    expect(found).toEqual({ pattern: '(a)\\1', position: 13, reason: 'invalid escape sequence: `\\1`' });
    // The later literal comes first in a depth-first walk from the right; position decides.
    expect(findUnsupportedRegex(jsonata('$match(s, /a(?=b)/) & $match(s, /(a)\\1/)').ast())).toMatchObject({ pattern: 'a(?=b)' });
    expect(findUnsupportedRegex(jsonata('$match(s, /ok/) & $match(s, /(a)\\1/)').ast())).toMatchObject({ pattern: '(a)\\1' });
    expect(findUnsupportedRegex(null)).toBeUndefined();
    expect(findUnsupportedRegex({ type: 'regex', value: 'not a RegExp' })).toBeUndefined();
  });

  it('copes with shared and cyclic nodes, and a regex node without a position', () => {
    const node: Record<string, unknown> = { type: 'block' };
    const bad = { type: 'regex', value: /(x)\1/ };
    node.expressions = [bad, bad, node];
    expect(findUnsupportedRegex(node)).toEqual({ pattern: '(x)\\1', position: 0, reason: 'invalid escape sequence: `\\1`' });
  });

  it('takes a string pattern with flags, or a RegExp whose flags can be overridden', () => {
    expect(new LinearRegex('ab+', 'i').exec('xABBy')).toMatchObject({ 0: 'ABB', index: 1, input: 'xABBy' });
    expect(new LinearRegex('ab+').exec('xABBy')).toBeNull();
    expect(new LinearRegex(/ab+/i, '').exec('xABBy')).toBeNull();
    expect(new LinearRegex(/^b/, 'm').exec('a\nb')).toMatchObject({ 0: 'b', index: 2 });
    expect(new LinearRegex(/^b/).exec('a\nb')).toBeNull();
  });

  it('returns every group, undefined for one that took no part, and resets lastIndex at the end', () => {
    const regex = new LinearRegex(/(a)|(b)/);
    const match = regex.exec('xb')!;
    expect([...match]).toEqual(['b', undefined, 'b']);
    expect(match.index).toBe(1);
    expect(regex.lastIndex).toBe(2);
    expect(regex.exec('xb')).toBeNull();
    expect(regex.lastIndex).toBe(0);
    regex.lastIndex = 5;
    expect(regex.exec('xb')).toBeNull();
    expect(regex.lastIndex).toBe(0);
    expect(new LinearRegex(/$/).exec('ab')).toMatchObject({ 0: '', index: 2 });
  });

  it('still compiles correctly after more than a thousand distinct patterns (the cache stays bounded)', () => {
    for (let i = 0; i < 1_100; i++) expect(new LinearRegex(`p${i}x`).exec(`-p${i}x-`)?.index).toBe(1);
    expect(new LinearRegex('p0x').exec('p0x')?.[0]).toBe('p0x');
  });
});
