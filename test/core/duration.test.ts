import { describe, expect, it } from 'vitest';
import { describeSpan, formatDuration, parseDuration } from '../../src/core/duration.ts';

describe('parseDuration', () => {
  it.each([
    [0, 0],
    [30, 30_000],
    [1.5, 1_500],
    ['0s', 0],
    ['30s', 30_000],
    ['1m', 60_000],
    ['1.5h', 5_400_000],
    ['2m30s', 150_000],
    ['2m 30s', 150_000],
    ['1h30m', 5_400_000],
    ['1d', 86_400_000],
    ['250ms', 250],
    ['1s500ms', 1_500],
    ['.5s', 500],
    ['  45S ', 45_000],
    ['30', 30_000],
    ['1h 5m', 3_900_000],
    ['1.25h', 4_500_000],
    ['.25s', 250],
    ['1.25', 1_250],
    ['2.125', 2_125],
  ] as const)('%j -> %d ms', (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it.each(['', '   ', 'abc', '5x', '1h30', 'm', '-5s', '1..5s', '5 s s', '1h,30m', '1e3s', 'Infinity'])(
    'rejects %j with a clear message',
    (input) => {
      expect(() => parseDuration(input)).toThrow(/invalid duration .*units ms, s, m, h, d/);
    },
  );

  it('says why: empty, or too large to be a number', () => {
    expect(() => parseDuration(' ')).toThrow(/^invalid duration " ": empty; use a number of seconds/);
    expect(() => parseDuration(`${'9'.repeat(400)}s`)).toThrow(/: too large; use a number/);
    // A bare number of seconds too: it was Infinity, which a schedule or a setting then carried.
    expect(() => parseDuration('9'.repeat(400))).toThrow(/: too large; use a number/);
  });

  it('names the unexpected part', () => {
    expect(() => parseDuration('1h30x')).toThrow(/unexpected "30x"/);
  });

  it('rejects negative and non-finite numbers', () => {
    expect(() => parseDuration(-1)).toThrow(/must not be negative/);
    expect(() => parseDuration(Number.NaN)).toThrow(/not a finite number/);
    expect(() => parseDuration(Number.POSITIVE_INFINITY)).toThrow(/not a finite number/);
  });

  it('rejects values that are neither numbers nor strings', () => {
    expect(() => parseDuration(null as unknown as string)).toThrow(/not a number or a string/);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [45_000, '45s'],
    [150_000, '2m 30s'],
    [3_900_000, '1h 5m'],
    [3_600_000, '1h'],
    [90_061_000, '1d 1h 1m 1s'],
    [250, '250ms'],
    [1_400, '1s'],
    [999.7, '1s'],
    [0.2, '0s'],
    [-30_000, '-30s'],
  ])('%d ms -> %s', (ms, expected) => {
    expect(formatDuration(ms)).toBe(expected);
  });

  it('round-trips through parseDuration', () => {
    for (const ms of [0, 1_000, 59_000, 61_000, 3_600_000, 5_430_000, 86_400_000 + 7_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });

  it('throws on non-finite input', () => {
    expect(() => formatDuration(Number.NaN)).toThrow(/finite/);
  });
});

describe('describeSpan', () => {
  it.each([
    [5 * 86_400_000, '5 days'],
    [86_400_000, '1 day'],
    [1.25 * 86_400_000, '1.3 days'],
    [86_400_000 - 1, '24 hours'],
    [6 * 3_600_000, '6 hours'],
    [3_600_000, '1 hour'],
    [3_600_000 - 1, '3600 seconds'],
    [900, '0.9 seconds'],
    [1_000, '1 second'],
    [0, '0 seconds'],
  ])('%s ms reads "%s"', (ms, expected) => {
    expect(describeSpan(ms)).toBe(expected);
  });
});
