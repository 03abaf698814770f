import { describe, expect, it } from 'vitest';
import { compileTemplate, evaluateTemplate } from '../../src/core/mapping.ts';
import {
  flatten,
  formatDurationSeconds,
  isoToUnixMs,
  pickTemplateEnv,
  slackEscape,
  TEMPLATE_HELPERS,
  truncate,
} from '../../src/core/template-helpers.ts';
import { ROOMY_LIMITS } from '../support/limits.ts';

describe('template helpers', () => {
  it('truncate keeps the total within the limit, suffix included', () => {
    expect(truncate('abcdef', 6)).toBe('abcdef');
    expect(truncate('abcdefg', 6)).toBe('abcde…');
    expect(truncate('abcdefg', 6, '')).toBe('abcdef');
    expect(truncate('abcdefg', 2, '...')).toBe('ab'); // the suffix alone does not fit
    expect(truncate('👍🏽👍🏽', 3)).toBe('👍🏽…'); // code points, not UTF-16 units
    expect(truncate('😀'.repeat(150), 150)).toBe('😀'.repeat(150)); // 150 code points fit, though 300 UTF-16 units
    expect(truncate('👍🏽👍🏽', 4)).toBe('👍🏽👍🏽');
    expect(truncate('👍🏽👍🏽👍🏽', 4)).toBe('👍🏽…'); // never the thumb without its skin tone
    expect(truncate('a🇫🇷🇫🇷', 3)).toBe('a…'); // nor half a flag
    expect(truncate('👨‍👩‍👧👨‍👩‍👧', 6, '')).toBe('👨‍👩‍👧'); // nor part of a family
    expect(truncate(undefined, 3)).toBeUndefined();
    expect(() => truncate('abc', -1)).toThrow(/whole number/);
  });

  it('slackEscape escapes only &, < and >', () => {
    expect(slackEscape('<@U123> & "quotes" > *bold*')).toBe('&lt;@U123&gt; &amp; "quotes" &gt; *bold*');
  });

  it('isoToUnixMs accepts ISO 8601 only', () => {
    expect(isoToUnixMs('2026-03-15T14:30:00Z')).toBe(Date.UTC(2026, 2, 15, 14, 30));
    expect(isoToUnixMs('2026-03-15T16:30:00.500+02:00')).toBe(Date.UTC(2026, 2, 15, 14, 30, 0, 500));
    expect(() => isoToUnixMs('March 15, 2026')).toThrow(/ISO 8601/);
    expect(() => isoToUnixMs('2026-13-45T99:00:00Z')).toThrow(/ISO 8601/);
  });

  it('formatDurationSeconds uses the gateway duration format', () => {
    expect(formatDurationSeconds(180)).toBe('3m');
    expect(formatDurationSeconds(150)).toBe('2m 30s');
    expect(formatDurationSeconds(0)).toBe('0s');
  });

  it('pickTemplateEnv keeps allow-listed variables that are set, nothing else', () => {
    const env = pickTemplateEnv(['REGION', 'UNSET'], { REGION: 'eu', SLUICE_MASTER_KEY: 'secret' });
    expect(env).toEqual({ REGION: 'eu' });
    expect(Object.isFrozen(env)).toBe(true);
  });
});

describe('flatten', () => {
  it('joins nested object keys with the separator', () => {
    expect(flatten({ call: { id: 'c1', cost: { total: 0.45 } }, ok: true }, '_')).toEqual({ call_id: 'c1', call_cost_total: 0.45, ok: true });
    expect(flatten({ a: { b: 1 } }, '.')).toEqual({ 'a.b': 1 });
  });

  it('joins arrays of scalars into one string, objects inside as JSON', () => {
    expect(flatten({ tags: ['vip', 'enterprise'] })).toEqual({ tags: 'vip,enterprise' });
    expect(flatten({ tags: ['vip', 'enterprise'] }, '_', ', ')).toEqual({ tags: 'vip, enterprise' });
    expect(flatten({ mixed: [1, null, true, { a: 1 }, [2]] })).toEqual({ mixed: '1,,true,{"a":1},[2]' });
    expect(flatten({ none: [] })).toEqual({ none: '' });
  });

  it('keeps arrays of objects as line items, each flattened', () => {
    expect(flatten({ lines: [{ sku: 'a', price: { amount: 1 } }, { sku: 'b', tags: ['x', 'y'] }] })).toEqual({
      lines: [{ sku: 'a', price_amount: 1 }, { sku: 'b', tags: 'x,y' }],
    });
  });

  it('keeps scalars and null, drops empty objects, and passes undefined through', () => {
    expect(flatten({ a: null, b: 0, c: '', d: {} })).toEqual({ a: null, b: 0, c: '' });
    expect(flatten(undefined)).toBeUndefined();
  });

  it('lets a later path win when two flatten to the same name', () => {
    expect(flatten({ a_b: 1, a: { b: 2 } })).toEqual({ a_b: 2 });
  });

  it('stores a "__proto__" key as data, never as a prototype', () => {
    const out = flatten(JSON.parse('{"__proto__": {"polluted": 1}, "x": 1}'))!;
    expect(Object.keys(out).sort()).toEqual(['__proto___polluted', 'x']);
    const own = flatten(JSON.parse('{"__proto__": 5}'))!;
    expect(Object.getPrototypeOf(own)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(own, '__proto__')?.value).toBe(5);
  });

  it('is callable from templates as $flatten', async () => {
    const template = compileTemplate('$flatten({"data": data}, "_")');
    const output = await evaluateTemplate(template, { data: { call: { id: 'c1' }, tags: ['a', 'b'], lines: [{ n: { x: 1 } }] } }, {}, ROOMY_LIMITS);
    expect(output).toEqual({ data_call_id: 'c1', data_tags: 'a,b', data_lines: [{ n_x: 1 }] });
  });
});

describe('template helpers: edges', () => {
  it('truncate cuts a long text at the limit without splitting a grapheme past the segmented window', () => {
    const text = `${'a'.repeat(100)}👍🏽${'b'.repeat(100)}`;
    expect(truncate(text, 102)).toBe(`${'a'.repeat(100)}…`);
    expect(truncate(text, 103)).toBe(`${'a'.repeat(100)}👍🏽…`);
    expect(truncate('x'.repeat(300), 200)).toBe(`${'x'.repeat(199)}…`);
    expect(Array.from(truncate('é'.repeat(500), 257)!)).toHaveLength(257);
  });

  it('truncate cuts hard when the suffix fills the whole limit, and refuses a fractional limit', () => {
    expect(truncate('abcdef', 3, '...')).toBe('abc');
    expect(truncate('abcdef', 4, '...')).toBe('a...');
    expect(truncate('abc', 1)).toBe('a');
    expect(truncate('abc', 0)).toBe('');
    expect(truncate('abc', 3)).toBe('abc');
    expect(() => truncate('abc', 2.5)).toThrow('$truncate: the maximum length must be a whole number >= 0, got 2.5');
  });

  it('slackEscape escapes every occurrence, and passes undefined through', () => {
    expect(slackEscape('a&&b<<c>>')).toBe('a&amp;&amp;b&lt;&lt;c&gt;&gt;');
    expect(slackEscape(undefined)).toBeUndefined();
  });

  it('isoToUnixMs takes dates, times with or without seconds, fractions and zones, in any case', () => {
    expect(isoToUnixMs('2026-03-15')).toBe(Date.UTC(2026, 2, 15));
    expect(isoToUnixMs('2026-03-15 14:30Z')).toBe(Date.UTC(2026, 2, 15, 14, 30));
    expect(isoToUnixMs('2026-03-15t14:30:00z')).toBe(Date.UTC(2026, 2, 15, 14, 30));
    expect(isoToUnixMs('2026-03-15T16:30+0200')).toBe(Date.UTC(2026, 2, 15, 14, 30));
    expect(isoToUnixMs('2026-03-15T14:30:00.123456Z')).toBe(Date.UTC(2026, 2, 15, 14, 30, 0, 123));
    expect(isoToUnixMs(undefined)).toBeUndefined();
    for (const bad of ['2026-03-15T14:30:00Z!', 'x2026-03-15', '2026-3-15', '26-03-15', '2026-03-15T14', '']) {
      expect(() => isoToUnixMs(bad), bad).toThrow(`$isoToUnixMs: ${JSON.stringify(bad)} is not an ISO 8601 timestamp`);
    }
  });

  it('formatDurationSeconds passes undefined through; pickTemplateEnv keeps set empty values', () => {
    expect(formatDurationSeconds(undefined)).toBeUndefined();
    expect(formatDurationSeconds(0.25)).toBe('250ms');
    expect(pickTemplateEnv(['EMPTY'], { EMPTY: '' })).toEqual({ EMPTY: '' });
    expect(pickTemplateEnv([], { REGION: 'eu' })).toEqual({});
  });

  it('flatten skips functions and undefined values, and uses _ and , by default', () => {
    expect(flatten({ f: () => 1, u: undefined, a: { b: [1, 2] } })).toEqual({ a_b: '1,2' });
    expect(flatten({ list: [{}, { x: 1 }] })).toEqual({ list: [{}, { x: 1 }] });
    expect(flatten({ list: [{ x: 1 }, 2] })).toEqual({ list: '{"x":1},2' });
  });

  it('registers each helper under its $name with a signature jsonata checks', async () => {
    expect(TEMPLATE_HELPERS.map((h) => [h.name, h.signature])).toEqual([
      ['flatten', '<o-s?s?:o>'],
      ['formatDuration', '<n-:s>'],
      ['truncate', '<s-ns?:s>'],
      ['slackEscape', '<s-:s>'],
      ['isoToUnixMs', '<s-:n>'],
    ]);
    const out = await evaluateTemplate(
      compileTemplate('{"d": $formatDuration(data.s), "t": $truncate(data.t, 4), "e": $slackEscape(data.e), "i": $isoToUnixMs(data.i), "m": $truncate(data.missing, 3)}'),
      { data: { s: 90, t: 'abcdef', e: '<b>', i: '2026-03-15' } }, {}, ROOMY_LIMITS);
    expect(out).toEqual({ d: '1m 30s', t: 'abc…', e: '&lt;b&gt;', i: Date.UTC(2026, 2, 15) });
    await expect(evaluateTemplate(compileTemplate('$formatDuration(data.s)'), { data: { s: 'soon' } }, {}, ROOMY_LIMITS)).rejects.toThrow();
  });
});

describe('template helpers: edges', () => {
  it('isoToUnixMs refuses text before or after the timestamp, and reads a time without a zone as local', () => {
    // V8's Date.parse alone would read "on 2026-03-15" as a date.
    expect(() => isoToUnixMs('on 2026-03-15')).toThrow(/ISO 8601/);
    expect(() => isoToUnixMs('2026-03-15 14:30 GMT+5')).toThrow(/ISO 8601/);
    expect(isoToUnixMs('2026-03-15T14:30')).toBe(new Date(2026, 2, 15, 14, 30).getTime());
    expect(isoToUnixMs('2026-03-15T14:30:05.250')).toBe(new Date(2026, 2, 15, 14, 30, 5, 250).getTime());
  });

  it('flatten leaves out undefined values, writes list items that are undefined as empty, and returns ordinary properties', () => {
    const out = flatten({ gone: undefined, keep: 1, list: [1, undefined, null, 'x'] })!;
    expect(Object.keys(out)).toEqual(['keep', 'list']);
    expect(out.list).toBe('1,,,x');
    expect(Object.getOwnPropertyDescriptor(out, 'keep')).toEqual({ value: 1, writable: true, enumerable: true, configurable: true });
    expect(Object.getOwnPropertyDescriptor(flatten({ ['__proto__']: { a: 1 } } as Record<string, unknown>)!, '__proto___a')).toEqual({ value: 1, writable: true, enumerable: true, configurable: true });
  });
});
