import { describe, expect, it } from 'vitest';
import { BATCH_LIMITS, bareEventCutoff, nextBatchSize, pauseAfterBatch, pruneCutoffs, shortRetentions } from '../../src/core/retention.ts';

const DAY = 86_400_000;

describe('retention policy', () => {
  it('cuts finished deliveries at the retention and failed ones at the dead-letter retention; bare events at the shorter', () => {
    const policy = { retentionMs: 30 * DAY, deadLetterRetentionMs: 90 * DAY };
    expect(pruneCutoffs(100 * DAY, policy)).toEqual({ finishedBefore: 70 * DAY, failedBefore: 10 * DAY });
    expect(bareEventCutoff(100 * DAY, policy)).toBe(70 * DAY);
    expect(bareEventCutoff(100 * DAY, { retentionMs: 30 * DAY, deadLetterRetentionMs: DAY })).toBe(99 * DAY);
  });

  it('names the retentions below an hour', () => {
    expect(shortRetentions({ retentionMs: 5_000, deadLetterRetentionMs: 90 * DAY })).toEqual(['SLUICE_RETENTION']);
    expect(shortRetentions({ retentionMs: DAY, deadLetterRetentionMs: DAY })).toEqual([]);
  });

  it('sizes batches by time within bounds, and rests as long as a batch took', () => {
    expect(nextBatchSize(200, 20)).toBe(100);
    expect(nextBatchSize(200, 1)).toBe(300);
    expect(nextBatchSize(200, 3)).toBe(200);
    expect(nextBatchSize(BATCH_LIMITS.min, 100)).toBe(BATCH_LIMITS.min);
    expect(nextBatchSize(BATCH_LIMITS.max, 0.1)).toBe(BATCH_LIMITS.max);
    expect(pauseAfterBatch(0.2)).toBe(1);
    expect(pauseAfterBatch(7.3)).toBe(8);
  });
});
