import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteThreadStorage } from '../../src/storage/sqlite/thread-storage.ts';
import { SQLITE_THREAD_PROBE, startGateway, type TestGateway } from '../support/gateway.ts';
import type { Observation } from '../support/sqlite-thread-probe.ts';
import { startReceiver } from '../support/receiver.ts';
import { durabilityWorkload } from './durability-workload.ts';

/**
 * "A 202 means the event is on disk": SQLite's `synchronous = FULL` (an fsync per commit) must be
 * in effect at EVERY commit of an event, a delivery or an API write, including those that come
 * after the worker's claims and attempt records, which run under `synchronous = NORMAL` and must
 * switch back. A SIGKILL test cannot see a missing fsync, so this one watches the setting at
 * each storage call and inside each transaction of a real gateway doing real work: in its
 * storage thread, where the connection lives (the probe wraps the SqliteStorage served there).
 */

/**
 * Worker bookkeeping that may commit without an fsync (see SqliteStorage#relaxed); waking ordered
 * deliveries whose key is free is one more such step (lost to a power cut, the next sweep does it again).
 */
const RELAXED = new Set(['claimDue', 'claimByIds', 'releaseLeases', 'renewLeases', 'completeAttempts', 'wakeFreeKeys']);
const FULL = 2;

describe('synchronous = FULL at every durable commit of a running gateway', { timeout: 30_000 }, () => {
  let gw: TestGateway;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let storage: SqliteThreadStorage;

  beforeAll(async () => {
    // Every third request fails: retries keep the worker claiming and recording between ingests.
    receiver = await startReceiver((_req, index) => ({ status: index % 3 === 0 ? 500 : 200 }));
    gw = await startGateway({}, { sqliteThreadPreload: SQLITE_THREAD_PROBE });
    expect(gw.sluice.storage).toBeInstanceOf(SqliteThreadStorage);
    storage = gw.sluice.storage as SqliteThreadStorage;
    expect(await storage.call('probeMethods', [])).toEqual(expect.arrayContaining(['ingest', 'claimDue', 'completeAttempts', 'insertSubscription']));
  });
  afterAll(async () => {
    await gw?.stop();
    await receiver?.close();
  });

  it('ingest, API writes and replays commit with FULL, before and after the worker claimed and recorded attempts', async () => {
    await durabilityWorkload(gw, receiver.url, 4);

    // The scenario did what it claims: worker bookkeeping ran, and durable writes came after it.
    const seen = await storage.call<Observation[]>('probeObservations', []);
    const firstClaim = seen.findIndex((o) => o.method === 'claimDue' || o.method === 'claimByIds' || o.method === 'completeAttempts');
    expect(firstClaim).toBeGreaterThanOrEqual(0);
    const laterIngests = seen.slice(firstClaim).filter((o) => o.method === 'ingest' && o.at === 'tx');
    expect(laterIngests.length).toBeGreaterThanOrEqual(3);
    expect(seen.some((o) => o.method === 'replayDeliveries' && o.at === 'tx')).toBe(true);

    const durable = seen.filter((o) => !RELAXED.has(o.method));
    expect(durable.filter((o) => o.synchronous !== FULL)).toEqual([]);
    // The worker's relaxed commits switch back at once.
    const relaxedExits = seen.filter((o) => RELAXED.has(o.method) && o.at === 'exit');
    expect(relaxedExits.length).toBeGreaterThan(0);
    expect(relaxedExits.filter((o) => o.synchronous !== FULL)).toEqual([]);
    expect(await storage.call('probePragma', ['synchronous'])).toBe(FULL);
    // No checkpoint runs inside a commit (they are the checkpointer thread's).
    expect(await storage.call('probePragma', ['wal_autocheckpoint'])).toBe(0);
  });
});
