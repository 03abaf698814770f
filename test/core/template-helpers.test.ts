import { describe, expect, it } from 'vitest';
import {
  formatDurationSeconds,
  isoToUnixMs,
  pickTemplateEnv,
  slackEscape,
  truncate,
} from '../../src/core/template-helpers.ts';

describe('template helpers', () => {
  it('truncate keeps the total within the limit, suffix included', () => {
    expect(truncate('abcdef', 6)).toBe('abcdef');
    expect(truncate('abcdefg', 6)).toBe('abcde…');
    expect(truncate('abcdefg', 6, '')).toBe('abcdef');
    expect(truncate('abcdefg', 2, '...')).toBe('ab'); // the suffix alone does not fit
    expect(truncate('👍🏽👍🏽', 3)).toBe('👍🏽…'); // code points, not UTF-16 units
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
