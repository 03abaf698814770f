import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Database from 'better-sqlite3';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';
import { startGateway, waitFor, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';
import { createSubscription, eventFrom } from '../delivery/delivery-helpers.ts';

/**
 * "A 202 means the event is on disk": SQLite's `synchronous = FULL` (an fsync per commit) must be
 * in effect at EVERY commit of an event, a delivery or an API write, including those that come
 * after the worker's claims and attempt records, which run under `synchronous = NORMAL` and must
 * switch back. A SIGKILL test cannot see a missing fsync, so this one watches the setting at
 * each storage call and inside each transaction of a real gateway doing real work.
 */

/**
 * Worker bookkeeping that may commit without an fsync (see SqliteStorage#relaxed); waking ordered
 * deliveries whose key is free is one more such step (lost to a power cut, the next sweep does it again).
 */
const RELAXED = new Set(['claimDue', 'claimByIds', 'releaseLeases', 'renewLeases', 'completeAttempts', 'wakeFreeKeys']);
const FULL = 2;

interface Observation {
  method: string;
  /** entry: when the call starts; tx: inside one of its transactions; exit: when its synchronous part returned. */
  at: 'entry' | 'tx' | 'exit';
  synchronous: number;
}

/** Wraps every method of the gateway's storage, and db.transaction, to record the fsync setting. */
function watchSynchronous(storage: SqliteStorage): Observation[] {
  const seen: Observation[] = [];
  const db = storage.db;
  const mode = () => db.pragma('synchronous', { simple: true }) as number;
  const record = (method: string, at: Observation['at']) => {
    if (db.open) seen.push({ method, at, synchronous: mode() });
  };
  let current = 'outside a storage call';
  const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(storage)).filter((name) => name !== 'constructor' && typeof (storage as any)[name] === 'function');
  expect(methods).toEqual(expect.arrayContaining(['ingest', 'claimDue', 'completeAttempts', 'insertSubscription']));
  for (const name of methods) {
    const original = (storage as any)[name].bind(storage);
    (storage as any)[name] = (...args: unknown[]) => {
      const outer = current;
      current = name;
      record(name, 'entry');
      try {
        return original(...args);
      } finally {
        // Storage calls do their SQLite work synchronously: this is after their commits.
        record(name, 'exit');
        current = outer;
      }
    };
  }
  const transaction = db.transaction.bind(db);
  (db as { transaction: Database.Database['transaction'] }).transaction = ((fn: (...args: any[]) => unknown) =>
    transaction((...args: any[]) => {
      record(current, 'tx');
      return fn(...args);
    })) as Database.Database['transaction'];
  return seen;
}

describe('synchronous = FULL at every durable commit of a running gateway', { timeout: 30_000 }, () => {
  let gw: TestGateway;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let seen: Observation[];

  beforeAll(async () => {
    // Every third request fails: retries keep the worker claiming and recording between ingests.
    receiver = await startReceiver((_req, index) => ({ status: index % 3 === 0 ? 500 : 200 }));
    gw = await startGateway();
    expect(gw.sluice.storage).toBeInstanceOf(SqliteStorage);
    seen = watchSynchronous(gw.sluice.storage as SqliteStorage);
  });
  afterAll(async () => {
    await gw?.stop();
    await receiver?.close();
  });

  it('ingest, API writes and replays commit with FULL, before and after the worker claimed and recorded attempts', async () => {
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.*'], retry: { schedule: ['0s', '20ms', '20ms', '20ms'] } });
    const delivered = new Set<string>();
    for (let round = 0; round < 4; round++) {
      // Wait for the worker's claim and attempt records of the previous round (a positive
      // signal), so this round's ingest commits after them.
      const accepted = await Promise.all([0, 1, 2].map(() => gw.api('POST', '/api/v1/events', eventFrom('call.ended'))));
      for (const a of accepted) expect(a.status).toBe(202);
      const ids = accepted.map((a) => a.body.deliveries[0].id as string);
      await waitFor(async () => {
        for (const id of ids) if ((await gw.api('GET', `/api/v1/deliveries/${id}`)).body.status === 'delivered') delivered.add(id);
        return ids.every((id) => delivered.has(id));
      }, 15_000, `round ${round} delivered`);
      expect((await gw.api('PATCH', `/api/v1/webhooks/${sub.id}`, { description: `round ${round}` })).status).toBe(200);
      expect((await gw.api('POST', `/api/v1/deliveries/${ids[0]}/replay`)).status).toBeLessThan(300);
      expect((await gw.api('POST', '/api/v1/keys', { role: 'read', name: `k${round}` })).status).toBe(201);
    }

    // The scenario did what it claims: worker bookkeeping ran, and durable writes came after it.
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
    expect((gw.sluice.storage as SqliteStorage).db.pragma('synchronous', { simple: true })).toBe(FULL);
  });
});
