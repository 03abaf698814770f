import { defaultBurst, takeTokens, type Bucket } from '../core/token-bucket.ts';
import type { ApiKeyRecord } from '../storage/types.ts';

export type QuotaVerdict =
  | { allowed: true }
  | { allowed: false; retryAfterMs: number; rate: number; burst: number };

/**
 * Ingest quotas per API key (its `rate_limit` and `rate_burst`), kept in memory: a restart gives
 * every key a full bucket, which errs on the side of accepting events.
 */
export class IngestQuota {
  #buckets = new Map<string, { bucket: Bucket; rate: number; burst: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Takes `events` from the key's bucket; keys without a limit always pass. */
  take(key: ApiKeyRecord, events: number): QuotaVerdict {
    const rate = key.rate_limit ?? null;
    if (rate === null) return { allowed: true };
    const burst = key.rate_burst ?? defaultBurst(rate);
    const held = this.#buckets.get(key.id);
    // A changed limit starts a fresh bucket.
    const previous = held && held.rate === rate && held.burst === burst ? held.bucket : undefined;
    const result = takeTokens(previous, this.now(), events, rate, burst);
    this.#buckets.set(key.id, { bucket: result.bucket, rate, burst });
    return result.allowed ? { allowed: true } : { allowed: false, retryAfterMs: result.retryAfterMs, rate, burst };
  }
}
