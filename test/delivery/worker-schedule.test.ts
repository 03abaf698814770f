import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeliveryWorker } from '../../src/delivery/worker.ts';
import { WorkerCapacity } from '../../src/delivery/worker-capacity.ts';
import { createLogger } from '../../src/logger.ts';
import type { DispatchDeps } from '../../src/delivery/dispatch.ts';
import type { Storage } from '../../src/storage/types.ts';

/**
 * When the worker polls the queue (#scheduleNextPoll), on fake timers and a scripted queue: as soon
 * as the next delivery is due, at most `maxIdleMs` apart, and without asking the queue while it has
 * no room. (A commit notifies the worker directly; the poll is what sends retries on time.)
 */
const MAX_IDLE_MS = 60_000;

let worker: DeliveryWorker | undefined;
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});
afterEach(async () => {
  await worker?.stop();
  worker = undefined;
  vi.useRealTimers();
});

/** A worker over a queue whose next due time is `due()`; the log shows each claim and question, in ms from the start. */
async function start(due: () => number | null, capacity = new WorkerCapacity(2)) {
  const t0 = Date.now();
  const log: string[] = [];
  const storage = {
    reclaimExpiredLeases: async () => 0,
    renewLeases: async () => undefined,
    wakeFreeKeys: async () => [],
    claimDue: async (now: number) => {
      log.push(`claim at ${now - t0}`);
      return [];
    },
    nextDueAt: async () => {
      const at = due();
      log.push(`next due asked at ${Date.now() - t0}`);
      return at === null ? null : t0 + at;
    },
  } as unknown as Storage;
  worker = new DeliveryWorker(
    { storage, dispatch: {} as DispatchDeps, subscription: async () => undefined, connector: () => undefined, invalidateSubscriptions: () => undefined, logger: createLogger('silent'), capacity },
    { concurrency: capacity.concurrency, perDestinationConcurrency: 1, leaseMs: 30_000, disableAfterMs: 86_400_000, shutdownGraceMs: 10, maxIdleMs: MAX_IDLE_MS },
  );
  await worker.start();
  await vi.advanceTimersByTimeAsync(0);
  return log;
}

describe('DeliveryWorker: when it polls the queue', () => {
  it('polls again when the next delivery is due, not before and not a full idle period later', async () => {
    const log = await start(() => 250);
    expect(log).toEqual(['claim at 0', 'next due asked at 0']);
    await vi.advanceTimersByTimeAsync(249);
    expect(log).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(log.slice(2)).toEqual(['claim at 250', 'next due asked at 250']);
  });

  it('with nothing due, polls after maxIdleMs', async () => {
    const log = await start(() => null);
    await vi.advanceTimersByTimeAsync(MAX_IDLE_MS - 1);
    expect(log).toEqual(['claim at 0', 'next due asked at 0']);
    await vi.advanceTimersByTimeAsync(1);
    expect(log.slice(2)).toEqual([`claim at ${MAX_IDLE_MS}`, `next due asked at ${MAX_IDLE_MS}`]);
  });

  it('with no room, neither claims nor asks the queue, and looks again after maxIdleMs', async () => {
    const full = new WorkerCapacity(2);
    full.adjustActive(2);
    const log = await start(() => 10, full);
    expect(log).toEqual([]);
    await vi.advanceTimersByTimeAsync(MAX_IDLE_MS - 1);
    expect(log).toEqual([]);
    full.adjustActive(-2);
    await vi.advanceTimersByTimeAsync(1);
    expect(log).toEqual([`claim at ${MAX_IDLE_MS}`, `next due asked at ${MAX_IDLE_MS}`]);
  });
});
