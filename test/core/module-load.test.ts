import { describe, expect, it } from 'vitest';

/**
 * What core modules compute when they load: the default retry curve, the SSRF module's IPv6
 * global-unicast range and empty allowlist, the grapheme segmenter of the template helpers.
 * Each module is imported inside its test, not at the top of the file: a broken constant makes
 * the import throw, and only a failure inside a test counts as one (a test file that cannot load
 * reports no failed test, so a mutation run would count such a mutant as surviving).
 */
describe('core modules at load time', () => {
  it('backoff: the default curve is 0s, 30s, 2m, 10m, 30m, 1h, 2h, 4h, 8h, 8h', async () => {
    const { DEFAULT_SCHEDULE, resolveSchedule } = await import('../../src/core/backoff.ts');
    const minute = 60_000;
    const hour = 60 * minute;
    expect(DEFAULT_SCHEDULE).toEqual(['0s', '30s', '2m', '10m', '30m', '1h', '2h', '4h', '8h', '8h']);
    expect(resolveSchedule()).toEqual([0, 30_000, 2 * minute, 10 * minute, 30 * minute, hour, 2 * hour, 4 * hour, 8 * hour, 8 * hour]);
  });

  it('ssrf: IPv6 outside 2000::/3 is reserved, and the empty allowlist holds nothing', async () => {
    const { EMPTY_ALLOWLIST, isForbiddenAddress } = await import('../../src/core/ssrf.ts');
    expect(isForbiddenAddress('4000::1')).toEqual({ forbidden: true, range: 'reserved' });
    expect(isForbiddenAddress('2606:4700:4700::1111')).toEqual({ forbidden: false });
    expect(EMPTY_ALLOWLIST).toEqual({ cidrs: [], hostnames: new Set(), suffixes: [] });
  });

  it('template helpers: truncation segments graphemes', async () => {
    const { truncate } = await import('../../src/core/template-helpers.ts');
    expect(truncate('👍🏽👍🏽👍🏽', 4)).toBe('👍🏽…');
  });
});

describe('service modules at load time', () => {
  it('subscription input: its validators compile (the schemas carry `errorMessage`, which strict mode refuses) and report every problem at once', async () => {
    const { checkSubscriptionShape } = await import('../../src/services/subscription-input.ts');
    const paths = checkSubscriptionShape({ url: 5, events: 'call.ended', colour: 'blue' }, 'create').map((d) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['$.url', '$.events', '$.colour']));
  });
});
