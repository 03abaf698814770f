import { describe, expect, it } from 'vitest';
import { BATCH_LIMITS, BATCH_TARGET_MS, bareEventCutoff, nextBatchSize, pauseAfterBatch, pruneCutoffs, SHORT_RETENTION_MS, shortRetentions } from '../../src/core/retention.ts';

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

  it('calls a retention short below one hour, for each variable on its own', () => {
    expect(SHORT_RETENTION_MS).toBe(3_600_000);
    expect(shortRetentions({ retentionMs: DAY, deadLetterRetentionMs: 5_000 })).toEqual(['SLUICE_DEAD_LETTER_RETENTION']);
    expect(shortRetentions({ retentionMs: 1, deadLetterRetentionMs: 1 })).toEqual(['SLUICE_RETENTION', 'SLUICE_DEAD_LETTER_RETENTION']);
    expect(shortRetentions({ retentionMs: SHORT_RETENTION_MS, deadLetterRetentionMs: SHORT_RETENTION_MS })).toEqual([]);
    expect(shortRetentions({ retentionMs: SHORT_RETENTION_MS - 1, deadLetterRetentionMs: SHORT_RETENTION_MS - 1 })).toEqual([
      'SLUICE_RETENTION',
      'SLUICE_DEAD_LETTER_RETENTION',
    ]);
  });

  it('keeps the batch size for batches between half the target and the target, edges included', () => {
    expect(BATCH_TARGET_MS).toBe(4);
    expect(BATCH_LIMITS).toEqual({ min: 50, max: 2_000, initial: 200 });
    expect(nextBatchSize(200, BATCH_TARGET_MS)).toBe(200);
    expect(nextBatchSize(200, BATCH_TARGET_MS + 0.01)).toBe(100);
    expect(nextBatchSize(200, BATCH_TARGET_MS / 2)).toBe(200);
    expect(nextBatchSize(200, BATCH_TARGET_MS / 2 - 0.01)).toBe(300);
  });

  it('rounds the next size and clamps it to the limits', () => {
    expect(nextBatchSize(75, 1)).toBe(113);
    expect(nextBatchSize(151, 10)).toBe(76);
    expect(nextBatchSize(60, 10)).toBe(50);
    expect(nextBatchSize(1_900, 0)).toBe(2_000);
    expect(nextBatchSize(10, 3)).toBe(50);
    expect(nextBatchSize(5_000, 3)).toBe(2_000);
  });

  it('rests at least a millisecond, and whole milliseconds rounded up', () => {
    expect(pauseAfterBatch(0)).toBe(1);
    expect(pauseAfterBatch(1)).toBe(1);
    expect(pauseAfterBatch(1.01)).toBe(2);
    expect(pauseAfterBatch(12)).toBe(12);
  });
});
