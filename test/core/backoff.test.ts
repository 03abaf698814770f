import { describe, expect, it } from 'vitest';
import {
  classifyStatus,
  DEFAULT_SCHEDULE,
  MAX_RETRY_AFTER_MS,
  nextAttemptDelay,
  parseRetryAfter,
  resolveSchedule,
  validateRetryPolicy,
} from '../../src/core/backoff.ts';
import { parseDuration } from '../../src/core/duration.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const fixed = (value: number) => () => value;

describe('DEFAULT_SCHEDULE', () => {
  it('is 10 attempts, the first immediate, totalling about 24 hours', () => {
    const ms = DEFAULT_SCHEDULE.map(parseDuration);
    expect(ms).toHaveLength(10);
    expect(ms[0]).toBe(0);
    const total = ms.reduce((a, b) => a + b, 0);
    expect(total).toBe(23 * HOUR + 42 * MINUTE + 30_000);
    for (let i = 1; i < ms.length; i++) expect(ms[i]).toBeGreaterThanOrEqual(ms[i - 1]);
  });
});

describe('validateRetryPolicy', () => {
  it('accepts valid policies', () => {
    expect(validateRetryPolicy({ schedule: ['0s', '30s', '2m', 600, '1h'] })).toEqual([]);
    expect(validateRetryPolicy({ schedule: [0] })).toEqual([]);
    expect(validateRetryPolicy({ max_attempts: 1 })).toEqual([]);
    expect(validateRetryPolicy({ max_attempts: 50 })).toEqual([]);
    expect(validateRetryPolicy({})).toEqual([]);
  });

  it('reports each bad schedule entry with its path', () => {
    const details = validateRetryPolicy({ schedule: ['0s', 30, 'soon', -5, true, '8d', Number.NaN] });
    expect(details.map((d) => d.path)).toEqual([
      '$.retry.schedule[2]',
      '$.retry.schedule[3]',
      '$.retry.schedule[4]',
      '$.retry.schedule[5]',
      '$.retry.schedule[6]',
    ]);
    expect(details[0].message).toMatch(/invalid duration "soon"/);
    expect(details[1].message).toMatch(/negative/);
    expect(details[3].message).toMatch(/at most 7 days/);
  });

  it('refuses unknown keys, both options at once, and non-objects', () => {
    expect(validateRetryPolicy({ schedule: ['0s'], attempts: 3 })).toEqual([
      { path: '$.retry.attempts', message: expect.stringMatching(/not a retry option/) },
    ]);
    expect(validateRetryPolicy({ schedule: ['0s'], max_attempts: 3 })).toEqual([
      { path: '$.retry', message: expect.stringMatching(/not both/) },
    ]);
    expect(validateRetryPolicy('0s,1m')).toEqual([{ path: '$.retry', message: expect.any(String) }]);
    expect(validateRetryPolicy(['0s'])).toEqual([{ path: '$.retry', message: expect.any(String) }]);
    expect(validateRetryPolicy(null)).toEqual([{ path: '$.retry', message: expect.any(String) }]);
  });

  it('refuses an empty, oversized or non-list schedule', () => {
    expect(validateRetryPolicy({ schedule: [] })).toEqual([{ path: '$.retry.schedule', message: expect.stringMatching(/at least one/) }]);
    expect(validateRetryPolicy({ schedule: Array(51).fill('1m') })).toEqual([
      { path: '$.retry.schedule', message: expect.stringMatching(/at most 50/) },
    ]);
    expect(validateRetryPolicy({ schedule: Array(50).fill('1m') })).toEqual([]);
    expect(validateRetryPolicy({ schedule: '0s' })).toEqual([{ path: '$.retry.schedule', message: expect.any(String) }]);
  });

  it.each([0, 51, 2.5, -1, '3', null])('refuses max_attempts %j', (value) => {
    expect(validateRetryPolicy({ max_attempts: value })).toEqual([
      { path: '$.retry.max_attempts', message: 'must be a whole number from 1 to 50' },
    ]);
  });

  it('explains each problem in words', () => {
    expect(validateRetryPolicy(7)).toEqual([{ path: '$.retry', message: 'must be an object with "schedule" (a list of delays) or "max_attempts" (a number)' }]);
    expect(validateRetryPolicy({ schedule: {} })).toEqual([{ path: '$.retry.schedule', message: 'must be a list of delays, e.g. ["0s", "30s", "5m", "1h"]' }]);
    expect(validateRetryPolicy({ schedule: [] })).toEqual([
      { path: '$.retry.schedule', message: 'must list at least one delay (the first is the delay before the first attempt, normally "0s")' },
    ]);
    expect(validateRetryPolicy({ schedule: Array(51).fill(1) })).toEqual([{ path: '$.retry.schedule', message: 'has 51 entries; at most 50 attempts are allowed' }]);
    expect(validateRetryPolicy({ schedule: [Number.POSITIVE_INFINITY, -1, true, null, 'soon'] })).toEqual([
      { path: '$.retry.schedule[0]', message: 'must be a finite number of seconds' },
      { path: '$.retry.schedule[1]', message: 'must not be negative' },
      { path: '$.retry.schedule[2]', message: 'must be a number of seconds or a duration string like "30s", "5m", "1h"' },
      { path: '$.retry.schedule[3]', message: 'must be a number of seconds or a duration string like "30s", "5m", "1h"' },
      { path: '$.retry.schedule[4]', message: expect.stringMatching(/^invalid duration "soon"/) },
    ]);
    expect(validateRetryPolicy({ schedule: ['0s'], max_attempts: 3, extra: 1 })).toEqual([
      { path: '$.retry.extra', message: 'is not a retry option; use "schedule" or "max_attempts"' },
      { path: '$.retry', message: 'give either "schedule" or "max_attempts", not both (max_attempts applies to the default curve)' },
    ]);
  });

  it('allows one delay of up to exactly 7 days, as a number of seconds or a string', () => {
    const week = 7 * 86_400;
    expect(validateRetryPolicy({ schedule: [week, '7d', '168h'] })).toEqual([]);
    expect(validateRetryPolicy({ schedule: [week + 1, '7d1ms', week + 0.001] })).toEqual([
      { path: '$.retry.schedule[0]', message: 'must be at most 7 days' },
      { path: '$.retry.schedule[1]', message: 'must be at most 7 days' },
      { path: '$.retry.schedule[2]', message: 'must be at most 7 days' },
    ]);
  });

  it('uses the given base path', () => {
    expect(validateRetryPolicy({ schedule: ['x'] }, '$.webhooks[0].retry')[0].path).toBe('$.webhooks[0].retry.schedule[0]');
  });
});

describe('resolveSchedule', () => {
  it('is the default curve without a policy', () => {
    expect(resolveSchedule()).toEqual(DEFAULT_SCHEDULE.map(parseDuration));
    expect(resolveSchedule(null)).toEqual(DEFAULT_SCHEDULE.map(parseDuration));
    expect(resolveSchedule({})).toEqual(DEFAULT_SCHEDULE.map(parseDuration));
  });

  it('parses an explicit schedule (numbers are seconds)', () => {
    expect(resolveSchedule({ schedule: ['0s', '1m', 300, '15m', '1h'] })).toEqual([0, MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR]);
  });

  it('takes the first N delays of the default curve for max_attempts', () => {
    expect(resolveSchedule({ max_attempts: 3 })).toEqual([0, 30_000, 2 * MINUTE]);
    expect(resolveSchedule({ max_attempts: 1 })).toEqual([0]);
  });

  it('repeats the last delay when max_attempts exceeds the curve', () => {
    const schedule = resolveSchedule({ max_attempts: 13 });
    expect(schedule).toHaveLength(13);
    expect(schedule.slice(0, 10)).toEqual(DEFAULT_SCHEDULE.map(parseDuration));
    expect(schedule.slice(9)).toEqual([8 * HOUR, 8 * HOUR, 8 * HOUR, 8 * HOUR]);
  });

  it('does not let callers mutate the default curve', () => {
    resolveSchedule().push(1);
    expect(resolveSchedule()).toHaveLength(10);
  });
});

describe('nextAttemptDelay', () => {
  const schedule = [0, MINUTE, 5 * MINUTE];

  it('gives the delay before the next attempt, with no jitter at random 0.5', () => {
    expect(nextAttemptDelay({ schedule, attemptsMade: 1, random: fixed(0.5) })).toBe(MINUTE);
    expect(nextAttemptDelay({ schedule, attemptsMade: 2, random: fixed(0.5) })).toBe(5 * MINUTE);
  });

  it('is null once the schedule is exhausted', () => {
    expect(nextAttemptDelay({ schedule, attemptsMade: 3, random: fixed(0.5) })).toBeNull();
    expect(nextAttemptDelay({ schedule, attemptsMade: 7, random: fixed(0.5), retryAfterMs: 1000 })).toBeNull();
  });

  it('jitters by at most ±20%', () => {
    expect(nextAttemptDelay({ schedule, attemptsMade: 1, random: fixed(0) })).toBe(48_000);
    expect(nextAttemptDelay({ schedule, attemptsMade: 1, random: fixed(0.999999) })).toBeCloseTo(72_000, -1);
    expect(nextAttemptDelay({ schedule, attemptsMade: 1, random: fixed(0.75) })).toBe(66_000);
    for (let r = 0; r < 1; r += 0.05) {
      const delay = nextAttemptDelay({ schedule, attemptsMade: 2, random: fixed(r) })!;
      expect(delay).toBeGreaterThanOrEqual(4 * MINUTE);
      expect(delay).toBeLessThanOrEqual(6 * MINUTE);
    }
  });

  it('never goes below zero and keeps a zero delay at zero', () => {
    expect(nextAttemptDelay({ schedule: [0, 0], attemptsMade: 1, random: fixed(0) })).toBe(0);
    expect(nextAttemptDelay({ schedule: [0, 0], attemptsMade: 1, random: fixed(0.99) })).toBe(0);
  });

  it('honours a Retry-After larger than the scheduled delay', () => {
    expect(nextAttemptDelay({ schedule, attemptsMade: 1, random: fixed(0.5), retryAfterMs: 10 * MINUTE })).toBe(10 * MINUTE);
  });

  it('keeps the scheduled delay when Retry-After is smaller', () => {
    expect(nextAttemptDelay({ schedule, attemptsMade: 2, random: fixed(0.5), retryAfterMs: 30_000 })).toBe(5 * MINUTE);
  });

  it('clamps Retry-After to MAX_RETRY_AFTER_MS (one hour)', () => {
    expect(MAX_RETRY_AFTER_MS).toBe(HOUR);
    expect(nextAttemptDelay({ schedule, attemptsMade: 1, random: fixed(0.5), retryAfterMs: 48 * HOUR })).toBe(HOUR);
    // A scheduled delay longer than the clamp still wins.
    expect(nextAttemptDelay({ schedule: [0, 8 * HOUR], attemptsMade: 1, random: fixed(0.5), retryAfterMs: 48 * HOUR })).toBe(8 * HOUR);
  });

  it('ignores negative or non-finite Retry-After values', () => {
    expect(nextAttemptDelay({ schedule, attemptsMade: 1, random: fixed(0.5), retryAfterMs: -5000 })).toBe(MINUTE);
    expect(nextAttemptDelay({ schedule, attemptsMade: 1, random: fixed(0.5), retryAfterMs: Number.NaN })).toBe(MINUTE);
  });
});

describe('parseRetryAfter', () => {
  const now = new Date('2025-01-15T12:00:00Z');

  it('reads delta-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
  });

  it('reads HTTP-dates in all three formats', () => {
    expect(parseRetryAfter('Wed, 15 Jan 2025 12:01:30 GMT', now)).toBe(90_000);
    expect(parseRetryAfter('Wednesday, 15-Jan-25 12:02:00 GMT', now)).toBe(120_000);
    expect(parseRetryAfter('Wed Jan 15 12:00:10 2025', now)).toBe(10_000);
  });

  it('reads an asctime date as GMT whatever the host time zone', () => {
    const zone = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      expect(parseRetryAfter('Wed Jan 15 12:00:10 2025', now)).toBe(10_000);
      expect(parseRetryAfter('wed jan 15 12:00:10 2025', now)).toBe(10_000);
      expect(parseRetryAfter('Wed, 15 Jan 2025 12:01:30 GMT', now)).toBe(90_000);
      expect(parseRetryAfter('wed, 15 jan 2025 12:01:30 gmt', now)).toBe(90_000);
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it('clamps a date in the past to 0', () => {
    expect(parseRetryAfter('Tue, 14 Jan 2025 12:00:00 GMT', now)).toBe(0);
  });

  it.each([
    undefined, '', 'soon', '-5', '1.5', '10s', '2025-01-15T12:05:00Z', 'Wed, 15 Jan 2025', 'Foo, 99 Bar 2025 99:99:99 GMT',
    // Dates with something before or after them (Date.parse alone would read several of these).
    'x Wed, 15 Jan 2025 12:01:30 GMT', 'Wed, 15 Jan 2025 12:01:30 GMT+0100',
    'x Wednesday, 15-Jan-25 12:02:00 GMT', 'Wednesday, 15-Jan-25 12:02:00 GMT+1',
    'x Wed Jan 15 12:00:10 2025', 'Wed Jan 15 12:00:10 2025 1',
  ])(
    'gives undefined for %j',
    (value) => {
      expect(parseRetryAfter(value, now)).toBeUndefined();
    },
  );
});

describe('classifyStatus', () => {
  it.each([
    [200, 'success'],
    [201, 'success'],
    [204, 'success'],
    [299, 'success'],
    [408, 'retry'],
    [429, 'retry'],
    [500, 'retry'],
    [502, 'retry'],
    [503, 'retry'],
    [599, 'retry'],
    [410, 'gone'],
    [400, 'fail'],
    [401, 'fail'],
    [403, 'fail'],
    [404, 'fail'],
    [413, 'fail'],
    [422, 'fail'],
    [100, 'fail'],
    [301, 'fail'],
    [302, 'fail'],
    [307, 'fail'],
    [304, 'fail'],
    [600, 'fail'],
  ] as const)('%d -> %s', (status, expected) => {
    expect(classifyStatus(status)).toBe(expected);
  });
});
