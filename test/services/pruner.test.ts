import { describe, expect, it, vi } from 'vitest';
import { Pruner, type PruneReport } from '../../src/services/pruner.ts';
import type { Logger } from '../../src/logger.ts';
import type { EventSweepQuery, EventSweepResult, PruneCounts, PruneCutoffs, Storage } from '../../src/storage/types.ts';

/**
 * The prune loop itself (services/pruner.ts), over a scripted storage: which batches it asks for,
 * when it pauses, stops and repeats, and what it reports. test/storage/retention.test.ts runs it
 * over a real SQLite file.
 */

const DAY = 86_400_000;
const POLICY = { retentionMs: 30 * DAY, deadLetterRetentionMs: 90 * DAY };
const NOW = 1_000 * DAY;

interface Script {
  /** Batches of deliveries: each answers that many full batches (deliveries = limit), then one short one. */
  fullDeliveryBatches?: number;
  /** The short batch's counts. */
  lastDeliveries?: PruneCounts;
  /** Connector state statements that delete a full batch before the one that does not. */
  fullConnectorBatches?: number;
  /** Sweep batches that scan a full page before the short one. */
  fullSweeps?: number;
  /** Events each sweep batch deletes. */
  sweptPerBatch?: number;
  /** Called at each storage call, before it answers (a test may stop the pruner there). */
  onCall?: (name: string) => void;
  /** Throws on this pass number (1-based) of pruneDeliveries' first batch. */
  failOnPass?: number;
}

function scriptedStorage(script: Script = {}) {
  const calls: { name: string; args: unknown[] }[] = [];
  let deliveryCalls = 0;
  let connectorCalls = 0;
  let sweeps = 0;
  let passes = 0;
  const storage = {
    async pruneDeliveries(cutoffs: PruneCutoffs, limit: number): Promise<PruneCounts> {
      calls.push({ name: 'pruneDeliveries', args: [cutoffs, limit] });
      if (deliveryCalls === 0) {
        passes += 1;
        if (script.failOnPass === passes) throw new Error('database is locked');
      }
      script.onCall?.('pruneDeliveries');
      deliveryCalls += 1;
      if (deliveryCalls <= (script.fullDeliveryBatches ?? 0)) return { deliveries: limit, attempts: 2 * limit, events: 1 };
      deliveryCalls = 0;
      return script.lastDeliveries ?? { deliveries: 0, attempts: 0, events: 0 };
    },
    async pruneConnectorState(before: number, limit: number): Promise<number> {
      calls.push({ name: 'pruneConnectorState', args: [before, limit] });
      script.onCall?.('pruneConnectorState');
      connectorCalls += 1;
      if (connectorCalls <= (script.fullConnectorBatches ?? 0)) return limit;
      connectorCalls = 0;
      return 0;
    },
    async sweepEvents(query: EventSweepQuery): Promise<EventSweepResult> {
      calls.push({ name: 'sweepEvents', args: [{ ...query }] });
      script.onCall?.('sweepEvents');
      sweeps += 1;
      const deleted = script.sweptPerBatch ?? 0;
      if (sweeps <= (script.fullSweeps ?? 0)) return { scanned: query.limit, deleted, last: { received_at: sweeps, id: `evt_${sweeps}` } };
      sweeps = 0;
      return { scanned: 0, deleted, last: undefined };
    },
  };
  return { storage: storage as unknown as Storage, calls, names: () => calls.map((c) => c.name) };
}

function recordingLogger() {
  const info: { obj: unknown; msg: string }[] = [];
  const error: { obj: unknown; msg: string }[] = [];
  const logger = { info: (obj: unknown, msg: string) => info.push({ obj, msg }), error: (obj: unknown, msg: string) => error.push({ obj, msg }) };
  return { logger: logger as unknown as Logger, info, error };
}

/** Resolves once `check` holds, looking again after each event-loop turn (a positive signal, no sleep). */
function until(check: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const poll = () => (check() ? resolve() : setImmediate(poll));
    poll();
  });
}

describe('Pruner', () => {
  it('deletes deliveries in batches until a short one, pausing between full ones, then connector state, then sweeps bare events page by page', async () => {
    const { storage, calls, names } = scriptedStorage({ fullDeliveryBatches: 2, lastDeliveries: { deliveries: 3, attempts: 4, events: 5 }, fullConnectorBatches: 1, fullSweeps: 2, sweptPerBatch: 7 });
    const pauses: number[] = [];
    const batches: PruneCounts[] = [];
    const report = await new Pruner({ storage, policy: POLICY, now: () => NOW, pause: async (ms) => void pauses.push(ms), onBatch: (c) => batches.push(c) }).runOnce();
    expect(names()).toEqual(['pruneDeliveries', 'pruneDeliveries', 'pruneDeliveries', 'pruneConnectorState', 'pruneConnectorState', 'sweepEvents', 'sweepEvents', 'sweepEvents']);
    // One pause after each full batch (two of deliveries, two of the sweep), none after a short one.
    expect(pauses).toHaveLength(4);
    for (const ms of pauses) expect(ms).toBeGreaterThanOrEqual(1);
    const [first, second, third] = calls.filter((c) => c.name === 'pruneDeliveries');
    expect(first.args).toEqual([{ finishedBefore: NOW - 30 * DAY, failedBefore: NOW - 90 * DAY }, 200]);
    const limits = [first, second, third].map((c) => c.args[1] as number);
    expect(report).toMatchObject({ deliveries: limits[0] + limits[1] + 3, attempts: 2 * (limits[0] + limits[1]) + 4, events: 1 + 1 + 5 + 3 * 7, batches: 6 });
    expect(batches).toHaveLength(6);
    expect(batches[2]).toEqual({ deliveries: 3, attempts: 4, events: 5 });
    expect(batches.slice(3)).toEqual([{ deliveries: 0, attempts: 0, events: 7 }, { deliveries: 0, attempts: 0, events: 7 }, { deliveries: 0, attempts: 0, events: 7 }]);
    expect(calls.filter((c) => c.name === 'pruneConnectorState').map((c) => c.args)).toEqual([[NOW - 30 * DAY, 1_000], [NOW - 30 * DAY, 1_000]]);
    // The sweep pages on from the last event of the page before, over events older than the shorter retention.
    const sweeps = calls.filter((c) => c.name === 'sweepEvents').map((c) => c.args[0] as EventSweepQuery);
    expect(sweeps.map((q) => [q.receivedFrom, q.receivedBefore, q.after])).toEqual([
      [0, NOW - 30 * DAY, undefined],
      [0, NOW - 30 * DAY, { received_at: 1, id: 'evt_1' }],
      [0, NOW - 30 * DAY, { received_at: 2, id: 'evt_2' }],
    ]);
    expect(typeof report.duration_ms).toBe('number');
    expect(report.duration_ms).toBeGreaterThanOrEqual(0);
    expect(Math.round(report.duration_ms * 10) / 10).toBe(report.duration_ms);
  });

  it('a later pass sweeps only events received since the earlier pass swept', async () => {
    const { storage, calls } = scriptedStorage();
    let now = NOW;
    const pruner = new Pruner({ storage, policy: POLICY, now: () => now, pause: async () => undefined });
    await pruner.runOnce();
    now = NOW + DAY;
    await pruner.runOnce();
    now = NOW - DAY; // a clock set back: the earlier start stays
    await pruner.runOnce();
    const sweeps = calls.filter((c) => c.name === 'sweepEvents').map((c) => c.args[0] as EventSweepQuery);
    expect(sweeps.map((q) => [q.receivedFrom, q.receivedBefore])).toEqual([
      [0, NOW - 30 * DAY],
      [NOW - 30 * DAY, NOW - 29 * DAY],
      [NOW - 29 * DAY, NOW - 31 * DAY],
    ]);
  });

  it('a call while a pass runs gets that pass, and the next call runs a new one', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { storage, names } = scriptedStorage();
    const original = storage.pruneDeliveries.bind(storage);
    let held = false;
    storage.pruneDeliveries = async (cutoffs, limit) => {
      if (!held) {
        held = true;
        await gate;
      }
      return original(cutoffs, limit);
    };
    const passes: PruneReport[] = [];
    const pruner = new Pruner({ storage, policy: POLICY, now: () => NOW, pause: async () => undefined, onPass: (r) => passes.push(r) });
    const a = pruner.runOnce();
    const b = pruner.runOnce();
    expect(b).toBe(a);
    release();
    expect(await b).toBe(await a);
    expect(passes).toHaveLength(1);
    const c = pruner.runOnce();
    expect(c).not.toBe(a);
    await c;
    expect(passes).toHaveLength(2);
    expect(names().filter((n) => n === 'pruneDeliveries')).toHaveLength(2);
  });

  it('logs a pass that deleted something, and stays quiet about one that did not', async () => {
    const quiet = recordingLogger();
    await new Pruner({ storage: scriptedStorage().storage, policy: POLICY, now: () => NOW, pause: async () => undefined, logger: quiet.logger }).runOnce();
    expect(quiet.info).toEqual([]);

    const deliveriesOnly = recordingLogger();
    await new Pruner({ storage: scriptedStorage({ lastDeliveries: { deliveries: 2, attempts: 0, events: 0 } }).storage, policy: POLICY, now: () => NOW, pause: async () => undefined, logger: deliveriesOnly.logger }).runOnce();
    expect(deliveriesOnly.info).toHaveLength(1);
    expect(deliveriesOnly.info[0].obj).toMatchObject({ deliveries: 2, events: 0, batches: 2 });
    expect(deliveriesOnly.info[0].msg).toBe('pruned what retention no longer keeps');

    const eventsOnly = recordingLogger();
    await new Pruner({ storage: scriptedStorage({ sweptPerBatch: 1 }).storage, policy: POLICY, now: () => NOW, pause: async () => undefined, logger: eventsOnly.logger }).runOnce();
    expect(eventsOnly.info).toHaveLength(1);
    expect(eventsOnly.info[0].obj).toMatchObject({ deliveries: 0, events: 1 });
  });

  it('stop ends a pass after its current batch of deliveries', async () => {
    let pruner!: Pruner;
    const { storage, names } = scriptedStorage({ fullDeliveryBatches: 1_000_000, onCall: (name) => name === 'pruneDeliveries' && void pruner.stop() });
    const passes: PruneReport[] = [];
    pruner = new Pruner({ storage, policy: POLICY, now: () => NOW, pause: async () => undefined, onPass: (r) => passes.push(r) });
    const report = await pruner.runOnce();
    expect(names()).toEqual(['pruneDeliveries']);
    expect(report).toMatchObject({ batches: 1, deliveries: 200 });
    expect(passes).toEqual([report]);
  });

  it('stop ends a pass in its connector state and its sweep too', async () => {
    let pruner!: Pruner;
    const inConnectorState = scriptedStorage({ fullConnectorBatches: 1_000_000, onCall: (name) => name === 'pruneConnectorState' && void pruner.stop() });
    pruner = new Pruner({ storage: inConnectorState.storage, policy: POLICY, now: () => NOW, pause: async () => undefined });
    await pruner.runOnce();
    expect(inConnectorState.names()).toEqual(['pruneDeliveries', 'pruneConnectorState']);

    const inSweep = scriptedStorage({ fullSweeps: 1_000_000, sweptPerBatch: 1, onCall: (name) => name === 'sweepEvents' && void pruner.stop() });
    pruner = new Pruner({ storage: inSweep.storage, policy: POLICY, now: () => NOW, pause: async () => undefined });
    const report = await pruner.runOnce();
    expect(inSweep.names()).toEqual(['pruneDeliveries', 'pruneConnectorState', 'sweepEvents']);
    expect(report).toMatchObject({ events: 1, batches: 2 });
  });

  it('stop waits for the running pass to end', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { storage } = scriptedStorage();
    const original = storage.pruneDeliveries.bind(storage);
    let entered = false;
    storage.pruneDeliveries = async (cutoffs, limit) => {
      entered = true;
      await gate;
      return original(cutoffs, limit);
    };
    const passes: PruneReport[] = [];
    const pruner = new Pruner({ storage, policy: POLICY, now: () => NOW, pause: async () => undefined, onPass: (r) => passes.push(r) });
    void pruner.runOnce();
    await until(() => entered);
    let stopped = false;
    const stopping = pruner.stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(passes).toHaveLength(1);
  });

  it('start runs a pass every interval, goes on after a failed pass (logged), and stop ends it', async () => {
    const { storage } = scriptedStorage({ failOnPass: 2 });
    const { logger, error } = recordingLogger();
    const passes: PruneReport[] = [];
    const pruner = new Pruner({ storage, policy: POLICY, now: () => NOW, pause: async () => undefined, logger, onPass: (r) => passes.push(r) });
    pruner.start(1);
    // Pass 2 fails; passes 1 and 3 report.
    await until(() => passes.length >= 2);
    await pruner.stop();
    expect(error).toHaveLength(1);
    expect(error[0].msg).toBe('prune pass failed; retrying at the next interval');
    expect((error[0].obj as { err: Error }).err.message).toBe('database is locked');
  });

  it('stop before the first interval: no pass runs (a pruner started after it, with the same interval, runs its own)', async () => {
    const stoppedPasses: PruneReport[] = [];
    const stopped = new Pruner({ storage: scriptedStorage().storage, policy: POLICY, now: () => NOW, pause: async () => undefined, onPass: (r) => stoppedPasses.push(r) });
    stopped.start(5);
    await stopped.stop();
    // The sentinel: timers of one duration fire in the order they were set, so once the later
    // pruner has run a pass, the stopped one's timer would have fired before it.
    const sentinelPasses: PruneReport[] = [];
    const sentinel = new Pruner({ storage: scriptedStorage().storage, policy: POLICY, now: () => NOW, pause: async () => undefined, onPass: (r) => sentinelPasses.push(r) });
    sentinel.start(5);
    await until(() => sentinelPasses.length >= 1);
    await sentinel.stop();
    expect(stoppedPasses).toEqual([]);
  });

  it('a pruner stopped during a pass started by its timer schedules no other', async () => {
    let pruner!: Pruner;
    const passes: PruneReport[] = [];
    const { storage } = scriptedStorage({ onCall: (name) => name === 'pruneDeliveries' && void pruner.stop() });
    pruner = new Pruner({ storage, policy: POLICY, now: () => NOW, pause: async () => undefined, onPass: (r) => passes.push(r) });
    pruner.start(5);
    await until(() => passes.length >= 1);
    const sentinelPasses: PruneReport[] = [];
    const sentinel = new Pruner({ storage: scriptedStorage().storage, policy: POLICY, now: () => NOW, pause: async () => undefined, onPass: (r) => sentinelPasses.push(r) });
    sentinel.start(5);
    await until(() => sentinelPasses.length >= 2);
    await sentinel.stop();
    expect(passes).toHaveLength(1);
  });

  it('its timer does not keep the process alive', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const pruner = new Pruner({ storage: scriptedStorage().storage, policy: POLICY, now: () => NOW, pause: async () => undefined });
    pruner.start(60_000);
    try {
      expect(timers()).toBe(before);
    } finally {
      await pruner.stop();
    }
  });

  it('sizes and paces batches by how long each took, and reports the pass duration to a tenth of a millisecond', async () => {
    // The pruner's clock (performance.now) is the test's: each storage call takes exactly the time it adds.
    let clock = 1_000;
    const spy = vi.spyOn(performance, 'now').mockImplementation(() => clock);
    try {
      const { storage, calls } = scriptedStorage({ fullDeliveryBatches: 1, fullSweeps: 1 });
      const took = new Map([['pruneDeliveries', [1, 10]], ['sweepEvents', [3, 0.04]], ['pruneConnectorState', [0]]]);
      for (const name of took.keys()) {
        const original = (storage as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[name].bind(storage);
        (storage as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
          const durations = took.get(name)!;
          clock += durations.length > 1 ? durations.shift()! : durations[0];
          return original(...args);
        };
      }
      const pauses: number[] = [];
      const pruner = new Pruner({ storage, policy: POLICY, now: () => NOW, pause: async (ms) => void pauses.push(ms) });
      const report = await pruner.runOnce();
      // 1 ms (quick: the next batch is half as big again), then 10 ms (slow: halved for the next pass);
      // the sweep's 3 ms is on target (same size).
      expect(calls.filter((c) => c.name === 'pruneDeliveries').map((c) => c.args[1])).toEqual([200, 300]);
      expect(calls.filter((c) => c.name === 'sweepEvents').map((c) => (c.args[0] as EventSweepQuery).limit)).toEqual([200, 200]);
      expect(pauses).toEqual([1, 3]);
      // 1 + 10 + 3 + 0.04 ms.
      expect(report.duration_ms).toBe(14);
      took.set('pruneDeliveries', [0.25]);
      took.set('sweepEvents', [0]);
      const next = await pruner.runOnce();
      // The next pass starts at the halved size: 150, quick (0.25 ms), then 225.
      expect(calls.filter((c) => c.name === 'pruneDeliveries').map((c) => c.args[1])).toEqual([200, 300, 150, 225]);
      expect(pauses).toEqual([1, 3, 1, 1]);
      expect(next.duration_ms).toBe(0.5);
    } finally {
      spy.mockRestore();
    }
  });
});
