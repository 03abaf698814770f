import { describe, expect, it } from 'vitest';
import { defaultBurst, takeTokens } from '../../src/core/token-bucket.ts';

describe('defaultBurst', () => {
  it('is one second of the rate, rounded up, and at least one event', () => {
    expect(defaultBurst(5)).toBe(5);
    expect(defaultBurst(2.1)).toBe(3);
    expect(defaultBurst(0.5)).toBe(1);
    expect(defaultBurst(0)).toBe(1);
  });
});

describe('takeTokens', () => {
  it('starts a new bucket full: a whole burst passes at once and empties it', () => {
    expect(takeTokens(undefined, 1_000, 3, 2, 3)).toEqual({ allowed: true, bucket: { tokens: 0, at: 1_000 } });
    expect(takeTokens(undefined, 1_000, 1, 2, 3)).toEqual({ allowed: true, bucket: { tokens: 2, at: 1_000 } });
  });

  it('refills at rate tokens per second, and says how long the missing tokens take', () => {
    const empty = { tokens: 0, at: 1_000 };
    // Half a second at 2/s: exactly one token.
    expect(takeTokens(empty, 1_500, 1, 2, 3)).toEqual({ allowed: true, bucket: { tokens: 0, at: 1_500 } });
    // A quarter second: half a token; the other half takes 250 ms more.
    expect(takeTokens(empty, 1_250, 1, 2, 3)).toEqual({ allowed: false, bucket: { tokens: 0.5, at: 1_250 }, retryAfterMs: 250 });
    // Two missing tokens at 3/s: 666.7 ms, rounded up.
    expect(takeTokens(empty, 1_000, 2, 3, 5)).toEqual({ allowed: false, bucket: { tokens: 0, at: 1_000 }, retryAfterMs: 667 });
  });

  it('never holds more than the burst, however long the bucket sat', () => {
    const idle = { tokens: 1, at: 0 };
    expect(takeTokens(idle, 3_600_000, 3, 2, 3)).toEqual({ allowed: true, bucket: { tokens: 0, at: 3_600_000 } });
    expect(takeTokens(idle, 3_600_000, 1, 2, 3)).toEqual({ allowed: true, bucket: { tokens: 2, at: 3_600_000 } });
  });

  it('refuses more than the burst for ever (retryAfterMs Infinity), but exactly the burst only for a while', () => {
    expect(takeTokens(undefined, 0, 4, 2, 3)).toEqual({ allowed: false, bucket: { tokens: 3, at: 0 }, retryAfterMs: Infinity });
    expect(takeTokens({ tokens: 2, at: 0 }, 0, 3, 2, 3)).toEqual({ allowed: false, bucket: { tokens: 2, at: 0 }, retryAfterMs: 500 });
  });

  it('adds nothing when the clock goes backwards', () => {
    expect(takeTokens({ tokens: 1, at: 5_000 }, 4_000, 2, 2, 3)).toEqual({ allowed: false, bucket: { tokens: 1, at: 4_000 }, retryAfterMs: 500 });
    expect(takeTokens({ tokens: 1, at: 5_000 }, 4_000, 1, 2, 3)).toEqual({ allowed: true, bucket: { tokens: 0, at: 4_000 } });
  });
});
