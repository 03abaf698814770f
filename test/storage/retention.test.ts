import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';
import { Pruner } from '../../src/services/pruner.ts';
import { newId } from '../../src/core/ids.ts';
import type { DeliveryRecord, DeliveryStatus } from '../../src/storage/types.ts';
import { tempDir } from '../support/gateway.ts';

const S = 1_000;
const DAY = 86_400_000;
const open: SqliteStorage[] = [];

async function store(): Promise<SqliteStorage> {
  const storage = new SqliteStorage(path.join(tempDir(), 'sluice.db'));
  await storage.migrate();
  open.push(storage);
  return storage;
}

afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

const BODY = 'x'.repeat(800);

/**
 * Stores `events` events (one transaction) with one delivery per status given, all finished
 * (updated) at `at`, each with one attempt carrying request and response bodies.
 */
async function seedMany(storage: SqliteStorage, at: number, statuses: DeliveryStatus[], events: number): Promise<{ eventId: string; deliveryIds: string[] }[]> {
  const items = Array.from({ length: events }, () => {
    const eventId = newId('evt', at);
    const deliveries: DeliveryRecord[] = statuses.map((status) => ({
      id: newId('dlv', at), event_id: eventId, subscription_id: 'sub_1', event: 'call.ended', msg_id: newId('msg', at), status,
      attempts: 1, chain: 0, next_attempt_at: at, lease_until: status === 'delivering' ? at + 60 * S : null, created_at: at, updated_at: at,
      last_attempt_at: at, last_status_code: null, last_error: null,
    }));
    return { event: { id: eventId, event: 'call.ended', timestamp: new Date(at).toISOString(), data: { body: BODY }, received_at: at, idempotency_key: null, test: false }, deliveries };
  });
  await storage.ingest(items);
  const attempt = storage.db.prepare(`INSERT INTO attempts (id, delivery_id, chain, number, started_at, outcome, method, url, request_headers, request_body, response_status, response_headers, response_body, latency_ms, error, steps)
    VALUES (?, ?, 0, 1, ?, 'success', 'POST', 'https://example.com', '{}', ?, 200, '{}', ?, 1, NULL, NULL)`);
  storage.db.transaction(() => {
    for (const { deliveries } of items) for (const d of deliveries) attempt.run(newId('att', at), d.id, at, BODY, BODY);
  })();
  return items.map((i) => ({ eventId: i.event.id, deliveryIds: i.deliveries.map((d) => d.id) }));
}

async function seed(storage: SqliteStorage, at: number, statuses: DeliveryStatus[]): Promise<{ eventId: string; deliveryIds: string[] }> {
  return (await seedMany(storage, at, statuses, 1))[0];
}

const count = (storage: SqliteStorage, table: string): number => (storage.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

function pruner(storage: SqliteStorage, now: () => number, retention = { retentionMs: 30 * DAY, deadLetterRetentionMs: 90 * DAY }): Pruner {
  return new Pruner({ storage, policy: retention, now, pause: async () => undefined });
}

describe('retention', () => {
  it('deletes finished deliveries past retention with their attempts, failed ones past dead-letter retention, and events left bare', async () => {
    const storage = await store();
    const now = 200 * DAY;
    const old = await seed(storage, now - 31 * DAY, ['delivered', 'cancelled']);
    const oldFailed = await seed(storage, now - 91 * DAY, ['failed']);
    const recentFailed = await seed(storage, now - 31 * DAY, ['failed']);
    const mixed = await seed(storage, now - 31 * DAY, ['delivered', 'failed']);
    const fresh = await seed(storage, now - 29 * DAY, ['delivered']);
    // Pending, paused and in-flight work is never pruned, however old.
    const waiting = await seed(storage, now - 365 * DAY, ['pending', 'paused', 'delivering']);
    const bareOld = await seed(storage, now - 31 * DAY, []);
    const bareNew = await seed(storage, now - DAY, []);

    const report = await pruner(storage, () => now).runOnce();
    expect(report).toMatchObject({ deliveries: 4, attempts: 4, events: 3 });
    for (const gone of [...old.deliveryIds, ...oldFailed.deliveryIds, mixed.deliveryIds[0]]) expect(await storage.getDelivery(gone)).toBeUndefined();
    for (const kept of [...recentFailed.deliveryIds, mixed.deliveryIds[1], ...fresh.deliveryIds, ...waiting.deliveryIds]) expect(await storage.getDelivery(kept)).toBeDefined();
    for (const gone of [old.eventId, oldFailed.eventId, bareOld.eventId]) expect(await storage.getEvent(gone)).toBeUndefined();
    for (const kept of [recentFailed.eventId, mixed.eventId, fresh.eventId, waiting.eventId, bareNew.eventId]) expect(await storage.getEvent(kept)).toBeDefined();
    expect(await storage.listAttempts(old.deliveryIds[0])).toEqual([]);
    expect(await storage.listAttempts(mixed.deliveryIds[1])).toHaveLength(1);

    // A second pass finds nothing more; the event of `mixed` goes with its last delivery.
    expect(await pruner(storage, () => now).runOnce()).toMatchObject({ deliveries: 0, attempts: 0, events: 0 });
    expect(await pruner(storage, () => now + 60 * DAY).runOnce()).toMatchObject({ deliveries: 3, events: 4 });
    expect(await storage.getEvent(mixed.eventId)).toBeUndefined();
    expect(count(storage, 'deliveries')).toBe(3);
  });

  it('forgets what connectors keep per ordering key once untouched longer than the retention', async () => {
    const storage = await store();
    const now = 200 * DAY;
    await storage.setConnectorState('sub_a', 'conv_old', { ts: '1.1', channel: 'C1' }, now - 31 * DAY);
    await storage.setConnectorState('sub_a', 'conv_new', { ts: '2.2', channel: 'C1' }, now - 29 * DAY);
    await pruner(storage, () => now).runOnce();
    expect(await storage.getConnectorState('sub_a', 'conv_old')).toBeUndefined();
    expect(await storage.getConnectorState('sub_a', 'conv_new')).toEqual({ ts: '2.2', channel: 'C1' });
  });

  it('works in batches: a large backlog goes in many small transactions, every row counted once', async () => {
    const storage = await store();
    const now = 100 * DAY;
    for (let i = 0; i < 3; i++) await seedMany(storage, now - 40 * DAY + i, ['delivered'], 500);
    const batches: number[] = [];
    const p = new Pruner({ storage, policy: { retentionMs: DAY, deadLetterRetentionMs: DAY }, now: () => now, pause: async () => undefined, onBatch: (c) => batches.push(c.deliveries) });
    const report = await p.runOnce();
    expect(report).toMatchObject({ deliveries: 1_500, attempts: 1_500, events: 1_500 });
    expect(batches.filter((n) => n > 0).length).toBeGreaterThan(1);
    expect(Math.max(...batches)).toBeLessThanOrEqual(2_000);
    expect(count(storage, 'events') + count(storage, 'deliveries') + count(storage, 'attempts')).toBe(0);
  });

  it('levels the database off under a steady load once retention is reached (freed pages are reused)', async () => {
    const storage = await store();
    const file = storage.db.name;
    let clock = 1_000 * DAY;
    const p = pruner(storage, () => clock, { retentionMs: 20 * S, deadLetterRetentionMs: 20 * S });
    // One simulated second: 40 events, each delivered once with ~1.6 KB of attempt bodies; then a prune pass.
    const second = async () => {
      clock += S;
      await seedMany(storage, clock, ['delivered'], 40);
      await p.runOnce();
    };
    const sizeAfter = async (seconds: number) => {
      for (let i = 0; i < seconds; i++) await second();
      storage.db.pragma('wal_checkpoint(TRUNCATE)');
      return { pages: (await storage.databaseSize()).bytes, file: fs.statSync(file).size };
    };
    const n = 60;
    const atN = await sizeAfter(n);
    const at2N = await sizeAfter(n);
    // 40 events/s kept 20 s: the same ~800 events live at N and at 2N, in the same pages.
    expect(count(storage, 'events')).toBeLessThanOrEqual(21 * 40);
    expect(at2N.pages).toBeLessThanOrEqual(atN.pages * 1.05);
    expect(at2N.file).toBeLessThanOrEqual(atN.file * 1.05);
    // Without retention the same load doubles it: the check above is not vacuous.
    const unpruned = await store();
    for (let i = 0; i < 2 * n; i++) await seedMany(unpruned, 1_000 * DAY + i * S, ['delivered'], 40);
    expect((await unpruned.databaseSize()).bytes).toBeGreaterThan(atN.pages * 3);
  });
});

describe('erasure', () => {
  it('removes the event, its finished and pending deliveries and their attempts in one go; a second call finds nothing', async () => {
    const storage = await store();
    const { eventId, deliveryIds } = await seed(storage, 5 * DAY, ['delivered', 'failed', 'pending', 'paused']);
    const other = await seed(storage, 5 * DAY, ['delivered']);
    expect(await storage.eraseEvent(eventId)).toEqual({ outcome: 'erased', deliveries: 4, attempts: 4, cancelled: 2 });
    expect(await storage.getEvent(eventId)).toBeUndefined();
    for (const id of deliveryIds) expect(await storage.getDelivery(id)).toBeUndefined();
    expect(count(storage, 'attempts')).toBe(1);
    expect(await storage.getDelivery(other.deliveryIds[0])).toBeDefined();
    expect(await storage.eraseEvent(eventId)).toEqual({ outcome: 'not_found' });
  });

  it('refuses an event with an attempt in flight and changes nothing', async () => {
    const storage = await store();
    const { eventId, deliveryIds } = await seed(storage, 5 * DAY, ['delivered', 'delivering', 'pending']);
    expect(await storage.eraseEvent(eventId)).toEqual({ outcome: 'in_flight', delivery_ids: [deliveryIds[1]] });
    for (const id of deliveryIds) expect(await storage.getDelivery(id)).toBeDefined();
    expect(count(storage, 'attempts')).toBe(3);
  });
});
