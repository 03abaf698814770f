/**
 * Retention policy: what a prune pass may delete, and how it paces itself. Pure decisions; the
 * queries live in each storage engine (Storage.pruneDeliveries, Storage.sweepEvents) and the
 * loop in services/pruner.ts.
 */
import type { PruneCutoffs } from '../storage/types.ts';

export interface RetentionPolicy {
  /** How long `delivered` and `cancelled` deliveries (and their attempts) are kept once finished. */
  retentionMs: number;
  /** How long `failed` deliveries are kept once finished: people still replay them. */
  deadLetterRetentionMs: number;
}

/** Retentions below this are for tests and demos; the gateway says so in its log at start. */
export const SHORT_RETENTION_MS = 3_600_000;

export function pruneCutoffs(now: number, policy: RetentionPolicy): PruneCutoffs {
  return { finishedBefore: now - policy.retentionMs, failedBefore: now - policy.deadLetterRetentionMs };
}

/**
 * Events without any delivery (none matched, or every one was pruned) go once older than the
 * shorter retention: nothing refers to them any more.
 */
export function bareEventCutoff(now: number, policy: RetentionPolicy): number {
  return now - Math.min(policy.retentionMs, policy.deadLetterRetentionMs);
}

/** Variable names of the retentions short enough to deserve a warning. */
export function shortRetentions(policy: RetentionPolicy): string[] {
  const out: string[] = [];
  if (policy.retentionMs < SHORT_RETENTION_MS) out.push('SLUICE_RETENTION');
  if (policy.deadLetterRetentionMs < SHORT_RETENTION_MS) out.push('SLUICE_DEAD_LETTER_RETENTION');
  return out;
}

/**
 * Batches are sized by time, not rows: a batch holds the database (and, on SQLite, the event
 * loop) for its whole transaction, so each aims at a few milliseconds whatever a row costs.
 */
export const BATCH_TARGET_MS = 4;
// The floor keeps the per-transaction cost from dominating when the machine is slow.
export const BATCH_LIMITS = { min: 50, max: 2_000, initial: 200 } as const;

/** The next batch size after one of `size` rows took `tookMs`: halve when slow, grow when quick. */
export function nextBatchSize(size: number, tookMs: number): number {
  const next = tookMs > BATCH_TARGET_MS ? size / 2 : tookMs < BATCH_TARGET_MS / 2 ? size * 1.5 : size;
  return Math.round(Math.min(BATCH_LIMITS.max, Math.max(BATCH_LIMITS.min, next)));
}

/**
 * The rest after a batch: as long as the batch took (at least a millisecond), so pruning uses at
 * most about half of the time and ingest requests queued meanwhile run in between.
 */
export function pauseAfterBatch(tookMs: number): number {
  return Math.max(1, Math.ceil(tookMs));
}
