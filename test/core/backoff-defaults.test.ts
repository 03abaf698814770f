import { describe, expect, it } from 'vitest';

/**
 * The default curve, delay by delay. backoff.ts is imported inside the test, not at the top of
 * the file: a broken curve fails the module's import, and only a failure inside a test counts
 * as one for the mutation run (a file that cannot load reports no failed test).
 */
describe('the default retry curve', () => {
  it('is 0s, 30s, 2m, 10m, 30m, 1h, 2h, 4h, 8h, 8h', async () => {
    const { DEFAULT_SCHEDULE, resolveSchedule } = await import('../../src/core/backoff.ts');
    const minute = 60_000;
    const hour = 60 * minute;
    expect(DEFAULT_SCHEDULE).toEqual(['0s', '30s', '2m', '10m', '30m', '1h', '2h', '4h', '8h', '8h']);
    expect(resolveSchedule()).toEqual([0, 30_000, 2 * minute, 10 * minute, 30 * minute, hour, 2 * hour, 4 * hour, 8 * hour, 8 * hour]);
  });
});
