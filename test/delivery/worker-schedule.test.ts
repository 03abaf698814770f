import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeliveryWorker, type WorkerOptions } from '../../src/delivery/worker.ts';
import { WorkerCapacity } from '../../src/delivery/worker-capacity.ts';
import type { Logger } from '../../src/logger.ts';
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

interface Script {
  capacity?: WorkerCapacity;
  /** Worker options to change (undefined: the worker's default). */
  options?: Partial<WorkerOptions>;
  /** What the start-up reclaim finds. */
  reclaimed?: number;
}

/**
 * A worker over a queue whose next due time is `due()`, not started; the log shows each claim and
 * question, in ms from the start, and what the worker logged; `reclaims` each lease reclaim's bound.
 */
function build(due: () => number | null, script: Script = {}) {
  const t0 = Date.now();
  const log: string[] = [];
  const reclaims: number[] = [];
  const capacity = script.capacity ?? new WorkerCapacity(2);
  const storage = {
    reclaimExpiredLeases: async (before: number) => {
      reclaims.push(before - t0);
      return script.reclaimed ?? 0;
    },
    renewLeases: async () => undefined,
    wakeFreeKeys: async () => [],
    claimDue: async (now: number) => {
      log.push(`claim at ${now - t0}`);
      return [];
    },
    claimByIds: async (ids: string[]) => {
      log.push(`claim ${ids.join(',')}`);
      return [];
    },
    nextDueAt: async () => {
      const at = due();
      log.push(`next due asked at ${Date.now() - t0}`);
      return at === null ? null : t0 + at;
    },
  } as unknown as Storage;
  const logger = { info: (fields: object, message: string) => void log.push(`info ${JSON.stringify(fields)} ${message}`), error: () => undefined, warn: () => undefined, debug: () => undefined } as unknown as Logger;
  worker = new DeliveryWorker(
    { storage, dispatch: {} as DispatchDeps, subscription: async () => undefined, connector: () => undefined, invalidateSubscriptions: () => undefined, logger, capacity },
    { concurrency: capacity.concurrency, perDestinationConcurrency: 1, leaseMs: 30_000, disableAfterMs: 86_400_000, shutdownGraceMs: 10, maxIdleMs: MAX_IDLE_MS, ...script.options },
  );
  return { worker, log, reclaims };
}

/** The same, started, with its first poll done. */
async function start(due: () => number | null, capacity = new WorkerCapacity(2)) {
  const { worker: started, log } = build(due, { capacity });
  await started.start();
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

describe('DeliveryWorker: start, and what it does before', () => {
  it('takes back at start every lease in a database of its own (a dead process\'s), only expired ones in a shared one, and says how many', async () => {
    const own = build(() => null, { reclaimed: 3 });
    await own.worker.start();
    // Every lease, however far off its expiry: up to two lease periods ahead.
    expect(own.reclaims[0]).toBe(60_000);
    expect(own.log[0]).toBe('info {"reclaimed":3} reclaimed deliveries leased by a stopped process');
    await own.worker.stop();

    // exclusiveStorage given as undefined: the default, a database of its own.
    const unset = build(() => null, { options: { exclusiveStorage: undefined } });
    await unset.worker.start();
    expect(unset.reclaims[0]).toBe(60_000);
    await unset.worker.stop();

    const shared = build(() => null, { options: { exclusiveStorage: false } });
    await shared.worker.start();
    expect(shared.reclaims[0]).toBe(0);
    // Nothing reclaimed, nothing said.
    await vi.advanceTimersByTimeAsync(0);
    expect(shared.log.filter((line) => line.startsWith('info'))).toEqual([]);
  });

  it('does nothing before it is started: a notify or a poke claims nothing', async () => {
    const { worker: idle, log } = build(() => 10);
    idle.notify(['dlv_early']);
    idle.poke();
    await vi.advanceTimersByTimeAsync(MAX_IDLE_MS * 2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(log).toEqual([]);
  });

  it('claims exactly the deliveries it was told about', async () => {
    const { worker: started, log } = build(() => null);
    await started.start();
    await vi.advanceTimersByTimeAsync(0);
    started.notify(['dlv_1', 'dlv_2']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(log.filter((line) => line.startsWith('claim dlv'))).toEqual(['claim dlv_1,dlv_2']);
  });

  it('without maxIdleMs, polls at least three times per lease period, and at least every second', async () => {
    const short = build(() => null, { options: { leaseMs: 1_500, maxIdleMs: undefined } });
    await short.worker.start();
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(499);
    expect(short.log.filter((line) => line.startsWith('claim at'))).toEqual(['claim at 0']);
    await vi.advanceTimersByTimeAsync(1);
    expect(short.log.filter((line) => line.startsWith('claim at'))).toEqual(['claim at 0', 'claim at 500']);
    await short.worker.stop();

    const long = build(() => null, { options: { leaseMs: 30_000, maxIdleMs: undefined } });
    await long.worker.start();
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(long.log.filter((line) => line.startsWith('claim at'))).toEqual(['claim at 0', 'claim at 1000']);
  });
});
