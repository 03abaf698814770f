/**
 * The ingest quota's token bucket: `rate` tokens per second flow into a bucket that holds at
 * most `burst`; an event takes one. Pure: the caller keeps the bucket and passes the time.
 */
export interface Bucket {
  tokens: number;
  /** When `tokens` was last computed, epoch ms. */
  at: number;
}

export type TakeResult =
  | { allowed: true; bucket: Bucket }
  /** `retryAfterMs` is Infinity when `count` exceeds the burst: it can never pass at once. */
  | { allowed: false; bucket: Bucket; retryAfterMs: number };

/** A key without an explicit burst may send one second's worth at once (at least one event). */
export function defaultBurst(rate: number): number {
  return Math.max(1, Math.ceil(rate));
}

/** Takes `count` tokens if the bucket (full when new) holds them by `now`; else says when it will. */
export function takeTokens(bucket: Bucket | undefined, now: number, count: number, rate: number, burst: number): TakeResult {
  const elapsed = bucket ? Math.max(0, now - bucket.at) : 0;
  const tokens = bucket ? Math.min(burst, bucket.tokens + (elapsed * rate) / 1000) : burst;
  if (count <= tokens) return { allowed: true, bucket: { tokens: tokens - count, at: now } };
  const retryAfterMs = count > burst ? Infinity : Math.ceil(((count - tokens) / rate) * 1000);
  return { allowed: false, bucket: { tokens, at: now }, retryAfterMs };
}
