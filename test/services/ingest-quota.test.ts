import { describe, expect, it } from 'vitest';
import { IngestQuota } from '../../src/services/ingest-quota.ts';
import type { ApiKeyRecord } from '../../src/storage/types.ts';

const key = (rate_limit: number | null, rate_burst: number | null = null) => ({ id: 'key_1', rate_limit, rate_burst }) as ApiKeyRecord;

describe('IngestQuota', () => {
  it('lets a key without a limit through, and holds a limited key to its burst until tokens flow back', () => {
    let now = 1_000_000;
    const quota = new IngestQuota(() => now);
    expect(quota.take(key(null), 10_000)).toEqual({ allowed: true });
    expect(quota.take(key(2, 3), 3)).toEqual({ allowed: true });
    expect(quota.take(key(2, 3), 1)).toEqual({ allowed: false, retryAfterMs: 500, rate: 2, burst: 3 });
    now += 500;
    expect(quota.take(key(2, 3), 1)).toEqual({ allowed: true });
  });

  it('starts a fresh, full bucket when the key\'s rate or burst changes', () => {
    const now = 1_000_000;
    const quota = new IngestQuota(() => now);
    expect(quota.take(key(2, 3), 3)).toEqual({ allowed: true });
    expect(quota.take(key(2, 3), 1).allowed).toBe(false);
    // A new rate: full again at once, though no time passed.
    expect(quota.take(key(5, 3), 3)).toEqual({ allowed: true });
    expect(quota.take(key(5, 3), 1).allowed).toBe(false);
    // A new burst alone: the same.
    expect(quota.take(key(5, 4), 4)).toEqual({ allowed: true });
    expect(quota.take(key(5, 4), 1).allowed).toBe(false);
  });
});
