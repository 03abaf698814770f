import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';
import { SqliteThreadStorage } from '../../src/storage/sqlite/thread-storage.ts';
import { tempDir } from '../support/gateway.ts';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.ts';
import { SQLITE_MIGRATIONS } from '../../src/storage/sqlite/migrations.ts';
import { POSTGRES_MIGRATIONS } from '../../src/storage/postgres/migrations.ts';
import type { AttemptCompletion, AttemptRecord, DeliveryRecord, EventRecord, IngestItem, Storage, SubscriptionRecord } from '../../src/storage/types.ts';
import { ConflictError } from '../../src/errors.ts';
import { requestHash } from '../../src/core/request-hash.ts';
import { newId } from '../../src/core/ids.ts';
import { createTestDatabase, createTestSchema, type TestDatabase } from '../support/postgres.ts';
import pg from 'pg';
import { clientConfig } from '../../src/storage/postgres/connection.ts';

/**
 * One storage contract, two engines: a behaviour exists when both pass the same test (SQLite
 * twice: directly, as the CLI opens it, and through the storage thread, as the gateway does). Each
 * PostgreSQL test gets a fresh schema in this file's own database, dropped afterwards.
 */
let database: TestDatabase | undefined;
beforeAll(async () => {
  database = await createTestDatabase('conformance');
});
afterAll(async () => {
  await database?.drop();
});

const T0 = 1_750_000_000_000;

interface Engine {
  name: 'sqlite' | 'sqlite, storage thread' | 'postgres';
  open(): Promise<Storage>;
  migrations: number;
}

const engines: Engine[] = [
  { name: 'sqlite', open: async () => new SqliteStorage(':memory:'), migrations: SQLITE_MIGRATIONS.length },
  // As the gateway runs it: every call crosses to the storage thread and back (arguments, results
  // and errors through structured clone), with the checkpointer thread running beside it.
  {
    name: 'sqlite, storage thread',
    open: async () => new SqliteThreadStorage(path.join(tempDir('sluice-conformance-'), 'sluice.db'), { onFatal: (err) => { throw err; } }),
    migrations: SQLITE_MIGRATIONS.length,
  },
  {
    name: 'postgres',
    open: async () => new PostgresStorage({ url: await createTestSchema(database!), poolSize: 4, instanceId: 'conformance' }),
    migrations: POSTGRES_MIGRATIONS.length,
  },
];

function subscription(overrides: Partial<SubscriptionRecord> = {}): SubscriptionRecord {
  return {
    id: newId('sub', T0),
    name: null,
    url: 'https://example.com/hook',
    events: ['order.*'],
    description: 'orders',
    enabled: true,
    disabled_reason: null,
    headers: { 'x-team': 'blue', 'x-b': '1', 'x-a': '2' },
    headers_sealed: null,
    auth_sealed: null,
    filter: null,
    mapping: null,
    connector: 'webhook',
    connector_options: { nested: { z: 1, a: [1, 2] } },
    connector_secrets_sealed: null,
    retry: { schedule: ['1s', 5], max_attempts: 3 },
    ordering: null,
    timeout_seconds: 2.5,
    rate_limit: null,
    secret_sealed: 'sealed-secret',
    secret_prefix: 'whsec_ab',
    previous_secret_sealed: null,
    previous_secret_expires_at: null,
    source: 'api',
    created_at: T0,
    updated_at: T0,
    last_delivery_at: null,
    last_delivery_status: null,
    last_success_at: null,
    failing_since: null,
    deleted_at: null,
    ...overrides,
  };
}

function event(overrides: Partial<EventRecord> = {}): EventRecord {
  return {
    id: newId('evt', T0),
    event: 'order.created',
    timestamp: new Date(T0).toISOString(),
    // Key order is part of the payload: it must come back as posted.
    data: { zeta: 1, alpha: { b: 2, a: 1 }, list: [3, 1, 2] },
    received_at: T0,
    idempotency_key: null,
    test: false,
    ...overrides,
  };
}

/** An event as read back: both engines also return the hash of what was posted (none here). */
const asStored = (ev: EventRecord) => ({ ...ev, request_hash: null });

function delivery(ev: EventRecord, sub: SubscriptionRecord, overrides: Partial<DeliveryRecord> = {}): DeliveryRecord {
  return {
    id: newId('dlv', T0),
    event_id: ev.id,
    subscription_id: sub.id,
    event: ev.event,
    msg_id: newId('msg', T0),
    status: 'pending',
    attempts: 0,
    chain: 1,
    next_attempt_at: T0,
    lease_until: null,
    created_at: T0,
    updated_at: T0,
    last_attempt_at: null,
    last_status_code: null,
    last_error: null,
    ...overrides,
  };
}

function attempt(d: DeliveryRecord, overrides: Partial<AttemptRecord> = {}): AttemptRecord {
  return {
    id: newId('att', T0),
    delivery_id: d.id,
    chain: d.chain,
    number: d.attempts + 1,
    started_at: T0 + 10,
    outcome: 'success',
    method: 'POST',
    url: 'https://example.com/hook',
    request_headers: { 'content-type': 'application/json' },
    request_body: '{"a":1}',
    response_status: 200,
    response_headers: { server: 'x' },
    response_body: 'ok',
    latency_ms: 12.5,
    error: null,
    steps: null,
    ...overrides,
  };
}

function completion(d: DeliveryRecord, status: AttemptCompletion['status'], overrides: Partial<AttemptCompletion> = {}): AttemptCompletion {
  return {
    attempt: attempt(d, { outcome: status === 'delivered' ? 'success' : status === 'pending' ? 'retry' : 'fail', response_status: status === 'delivered' ? 200 : 500 }),
    delivery_id: d.id,
    status,
    next_attempt_at: status === 'pending' ? T0 + 60_000 : null,
    subscription_id: d.subscription_id,
    disable_subscription_reason: null,
    delete_subscription: false,
    ...overrides,
  };
}

describe.each(engines)('storage conformance: $name', (engine) => {
  let storage: Storage;
  let sub: SubscriptionRecord;

  beforeEach(async () => {
    storage = await engine.open();
    await storage.migrate();
    sub = subscription();
    await storage.insertSubscription(sub);
  });
  afterEach(async () => {
    await storage.close();
  });

  /** One event with `count` deliveries to `sub`, stored; returns them. */
  async function stored(count = 1, overrides: Partial<DeliveryRecord> = {}, to = sub): Promise<{ ev: EventRecord; deliveries: DeliveryRecord[] }> {
    const ev = event();
    const deliveries = Array.from({ length: count }, () => delivery(ev, to, overrides));
    await storage.ingest([{ event: ev, deliveries }]);
    return { ev, deliveries };
  }

  describe('migrations', () => {
    it('a second run applies nothing and keeps the data', async () => {
      const fresh = await engine.open();
      try {
        expect(await fresh.migrate()).toBe(engine.migrations);
        await fresh.insertApiKey({ id: 'key_1', name: null, role: 'read', prefix: 'sk_read_abcd', hash: 'cd'.repeat(32), created_at: T0, revoked_at: null });
        expect(await fresh.migrate()).toBe(0);
        expect((await fresh.listApiKeys()).map((k) => k.id)).toEqual(['key_1']);
      } finally {
        await fresh.close();
      }
    });
  });

  describe('API keys', () => {
    it('are found by hash, listed in creation order, revoked once, and admin keys counted', async () => {
      const admin = { id: 'key_a', name: 'ops', role: 'admin' as const, prefix: 'sk_admin_abcd', hash: 'aa'.repeat(32), created_at: T0, revoked_at: null };
      const reader = { id: 'key_b', name: null, role: 'read' as const, prefix: 'sk_read_abcd', hash: 'bb'.repeat(32), created_at: T0 + 1, revoked_at: null };
      await storage.insertApiKey(reader);
      await storage.insertApiKey(admin);
      // No ingest quota unless one is set.
      expect(await storage.findApiKeyByHash('aa'.repeat(32))).toEqual({ ...admin, rate_limit: null, rate_burst: null });
      expect(await storage.findApiKeyByHash('ff'.repeat(32))).toBeUndefined();
      expect(await storage.setApiKeyQuota('key_b', 5, 10)).toBe(true);
      expect(await storage.findApiKeyByHash('bb'.repeat(32))).toMatchObject({ rate_limit: 5, rate_burst: 10 });
      expect(await storage.setApiKeyQuota('key_missing', 5, 10)).toBe(false);
      expect((await storage.listApiKeys()).map((k) => k.id)).toEqual(['key_a', 'key_b']);
      expect(await storage.countActiveAdminKeys()).toBe(1);
      expect(await storage.revokeApiKey('key_a', T0 + 5)).toBe(true);
      expect(await storage.revokeApiKey('key_a', T0 + 6)).toBe(false);
      expect(await storage.revokeApiKey('key_missing', T0 + 6)).toBe(false);
      expect((await storage.findApiKeyByHash('aa'.repeat(32)))?.revoked_at).toBe(T0 + 5);
      expect(await storage.countActiveAdminKeys()).toBe(0);
    });
  });

  describe('subscriptions', () => {
    it('round-trip every field, JSON key order included', async () => {
      const got = await storage.getSubscription(sub.id);
      expect(got).toEqual(sub);
      expect(Object.keys(got!.headers)).toEqual(['x-team', 'x-b', 'x-a']);
      expect(await storage.listSubscriptions()).toEqual([sub]);
    });

    it('are updated, and a name is unique among live subscriptions only', async () => {
      const named = subscription({ name: 'billing', rate_limit: 2, headers_sealed: 'sealed-headers', created_at: T0 + 1 });
      await storage.insertSubscription(named);
      await expect(storage.insertSubscription(subscription({ name: 'billing' }))).rejects.toThrow();
      const edited = { ...named, url: 'https://example.com/other', description: null, retry: null, updated_at: T0 + 1 };
      await storage.updateSubscription(edited);
      expect(await storage.getSubscription(named.id)).toEqual(edited);
      expect(await storage.deleteSubscription(named.id, T0 + 2)).toBe(true);
      expect(await storage.deleteSubscription(named.id, T0 + 3)).toBe(false);
      expect(await storage.getSubscription(named.id)).toBeUndefined();
      await storage.insertSubscription(subscription({ name: 'billing', created_at: T0 + 1 }));
      expect((await storage.listSubscriptions()).map((s) => s.name)).toEqual([null, 'billing']);
    });

    it('disabling pauses waiting deliveries, enabling resumes them, deleting cancels them', async () => {
      const { deliveries: [d] } = await stored();
      await storage.updateSubscription({ ...sub, enabled: false, updated_at: T0 + 1 });
      expect((await storage.getDelivery(d.id))?.status).toBe('paused');
      expect(await storage.claimDue(T0 + 10, 10, T0 + 1000)).toEqual([]);
      expect((await storage.listDeliveries({ status: 'pending', limit: 10 })).map((x) => x.id)).toEqual([d.id]);
      await storage.updateSubscription({ ...sub, enabled: true, updated_at: T0 + 2 });
      expect((await storage.getDelivery(d.id))?.status).toBe('pending');
      expect(await storage.deleteSubscription(sub.id, T0 + 3)).toBe(true);
      expect(await storage.getDelivery(d.id)).toMatchObject({ status: 'cancelled', last_error: 'subscription deleted' });
    });
  });

  describe('ingest and idempotency', () => {
    it('stores events with their deliveries; the data comes back as posted', async () => {
      const { ev, deliveries } = await stored(2);
      expect(await storage.getEvent(ev.id)).toEqual(asStored(ev));
      expect(Object.keys((await storage.getEvent(ev.id))!.data as object)).toEqual(['zeta', 'alpha', 'list']);
      expect(await storage.getDelivery(deliveries[0].id)).toMatchObject({ ...deliveries[0], unfinished_claims: 0 });
      expect(await storage.getEvent('evt_missing')).toBeUndefined();
    });

    it('a repeated id or idempotency key is a duplicate answered with the first deliveries, in order', async () => {
      const ev = event({ idempotency_key: 'key-1' });
      const subs = [sub, subscription(), subscription()];
      for (const s of subs.slice(1)) await storage.insertSubscription(s);
      const first = subs.map((s) => delivery(ev, s));
      const [original] = await storage.ingest([{ event: ev, deliveries: first, request_hash: 'h1' }]);
      expect(original).toEqual({ event_id: ev.id, event: ev.event, deliveries: first.map((d) => ({ id: d.id, subscription_id: d.subscription_id })), duplicate: false });

      const sameId = { event: { ...ev, idempotency_key: null }, deliveries: [delivery(ev, sub)], request_hash: 'h1' };
      const sameKey = { event: event({ idempotency_key: 'key-1' }), deliveries: [delivery(ev, sub)], request_hash: null };
      const results = await storage.ingest([sameId, sameKey]);
      for (const r of results) expect(r).toEqual({ ...original, duplicate: true });
      expect((await storage.listDeliveries({ limit: 10 })).length).toBe(3);
    });

    it('a repeat with other content is a conflict, and nothing of its batch is stored', async () => {
      const ev = event({ idempotency_key: 'key-2' });
      await storage.ingest([{ event: ev, deliveries: [delivery(ev, sub)], request_hash: 'h1' }]);
      const innocent = event();
      const batch: IngestItem[] = [
        { event: innocent, deliveries: [delivery(innocent, sub)], request_hash: 'h3' },
        { event: { ...ev, idempotency_key: null }, deliveries: [], request_hash: 'h2' },
      ];
      await expect(storage.ingest(batch)).rejects.toBeInstanceOf(ConflictError);
      await expect(storage.ingest([{ event: event({ idempotency_key: 'key-2' }), deliveries: [], request_hash: 'h2' }])).rejects.toThrow(/Idempotency-Key/);
      expect(await storage.getEvent(innocent.id)).toBeUndefined();
    });

    it('a conflict says which: the id (with the event id) or the Idempotency-Key, and where', async () => {
      const ev = event({ idempotency_key: 'key-3' });
      await storage.ingest([{ event: ev, deliveries: [], request_hash: 'h1' }]);
      const byId = await storage.ingest([{ event: { ...ev, idempotency_key: null }, deliveries: [], request_hash: 'h2' }]).catch((err) => err);
      expect(byId).toBeInstanceOf(ConflictError);
      expect(byId).toMatchObject({
        code: 'event_id_conflict',
        message: `An event with id "${ev.id}" was already accepted with different content; give this event its own id.`,
        details: [{ path: '$.id', message: 'was already used for a different event', id: ev.id }],
      });
      const byKey = await storage.ingest([{ event: event({ idempotency_key: 'key-3' }), deliveries: [], request_hash: 'h2' }]).catch((err) => err);
      expect(byKey).toBeInstanceOf(ConflictError);
      expect(byKey).toMatchObject({
        code: 'idempotency_key_conflict',
        details: [{ path: 'header:Idempotency-Key', message: 'was already used with a different body' }],
      });
    });

    it('hashes what was posted itself: keys in another order repeat, other data conflicts, a hash stored before still matches', async () => {
      const ev = event({ data: { b: 1, a: [1, { d: 2, c: 3 }] } });
      await storage.ingest([{ event: ev, deliveries: [delivery(ev, sub)], posted: { id: true, timestamp: false } }]);
      const reordered = { ...ev, data: { a: [1, { c: 3, d: 2 }], b: 1 } };
      const [repeat] = await storage.ingest([{ event: reordered, deliveries: [delivery(ev, sub)], posted: { id: true, timestamp: false } }]);
      expect(repeat.duplicate).toBe(true);
      // The hash the gateway computed before the engines did (kept in rows written by then).
      const before = requestHash(ev, { id: true, timestamp: false });
      expect((await storage.ingest([{ event: ev, deliveries: [], request_hash: before }]))[0].duplicate).toBe(true);
      await expect(storage.ingest([{ event: { ...ev, data: { b: 2 } }, deliveries: [], posted: { id: true, timestamp: false } }])).rejects.toBeInstanceOf(ConflictError);
    });

    it('a repeat is a duplicate when either side has no hash to compare (rows stored before hashes were kept)', async () => {
      const unhashed = event();
      await storage.ingest([{ event: unhashed, deliveries: [delivery(unhashed, sub)], request_hash: null }]);
      const [later] = await storage.ingest([{ event: { ...unhashed, data: { other: true } }, deliveries: [delivery(unhashed, sub)], request_hash: 'h-new' }]);
      expect(later.duplicate).toBe(true);
      const hashed = event();
      await storage.ingest([{ event: hashed, deliveries: [delivery(hashed, sub)], request_hash: 'h-old' }]);
      const [repeat] = await storage.ingest([{ event: { ...hashed, data: { other: true } }, deliveries: [delivery(hashed, sub)], request_hash: null }]);
      expect(repeat.duplicate).toBe(true);
      expect(await storage.getEvent(hashed.id)).toMatchObject({ request_hash: 'h-old' });
    });

    it('a delivery given no ordering key (null) or no sequence is stored unordered', async () => {
      const ev = event();
      const nullKey = { ...delivery(ev, sub), ordering_key: null };
      const noKey = delivery(ev, sub);
      const noKeyNullSequence = { ...delivery(ev, sub), sequence: null };
      await storage.ingest([{ event: ev, deliveries: [nullKey, noKey, noKeyNullSequence] }]);
      for (const d of [nullKey, noKey, noKeyNullSequence]) expect(await storage.getDelivery(d.id)).toMatchObject({ ordering_key: null, sequence: null });
    });

    it('a duplicate inside one batch resolves to the first occurrence', async () => {
      const ev = event();
      const d = delivery(ev, sub);
      const results = await storage.ingest([{ event: ev, deliveries: [d] }, { event: ev, deliveries: [delivery(ev, sub)] }]);
      expect(results.map((r) => r.duplicate)).toEqual([false, true]);
      expect(results[1].deliveries).toEqual([{ id: d.id, subscription_id: sub.id }]);
    });

    it('two events with one Idempotency-Key in one batch: the second is a duplicate of the first, answered with its deliveries', async () => {
      const first = event({ idempotency_key: 'key-batch' });
      const second = event({ idempotency_key: 'key-batch' });
      const d = delivery(first, sub);
      const results = await storage.ingest([{ event: first, deliveries: [d] }, { event: second, deliveries: [delivery(second, sub)] }]);
      expect(results).toEqual([
        { event_id: first.id, event: first.event, deliveries: [{ id: d.id, subscription_id: sub.id }], duplicate: false },
        { event_id: first.id, event: first.event, deliveries: [{ id: d.id, subscription_id: sub.id }], duplicate: true },
      ]);
      expect(await storage.getEvent(second.id)).toBeUndefined();
      expect((await storage.listDeliveries({ limit: 10 })).map((x) => x.id)).toEqual([d.id]);
    });

    it('a repeat of an event stored without deliveries is a duplicate answered with none', async () => {
      const bare = event();
      await storage.ingest([{ event: bare, deliveries: [] }]);
      expect(await storage.ingest([{ event: bare, deliveries: [] }])).toEqual([{ event_id: bare.id, event: bare.event, deliveries: [], duplicate: true }]);
    });

    it('a delivery stored already leased starts with its claim counted, and its lease expires like any other', async () => {
      const { deliveries: [d] } = await stored(1, { status: 'delivering', lease_until: T0 + 1000 });
      expect(await storage.getDelivery(d.id)).toMatchObject({ status: 'delivering', lease_until: T0 + 1000, unfinished_claims: 1 });
      expect(await storage.reclaimExpiredLeases(T0 + 1000)).toBe(0);
      expect(await storage.reclaimExpiredLeases(T0 + 1001)).toBe(1);
      expect(await storage.getDelivery(d.id)).toMatchObject({ status: 'pending', lease_until: null });
    });

    it('a delivery is stored with every field it was given: its attempts, times and last outcome', async () => {
      const given = {
        status: 'failed' as const, attempts: 2, chain: 3, next_attempt_at: T0 + 50, created_at: T0 - 10, updated_at: T0 + 20,
        last_attempt_at: T0 + 15, last_status_code: 503, last_error: 'upstream unavailable',
      };
      const { deliveries: [d] } = await stored(1, given);
      expect(await storage.getDelivery(d.id)).toEqual({
        ...d, lease_until: null, unfinished_claims: 0, last_latency_ms: null, ordering_key: null, sequence: null, blocks_key: false, replay_of: null,
      });
    });

    it('recent events are the newest real ones of a type', async () => {
      const older = event({ received_at: T0 });
      const newer = event({ received_at: T0 + 5 });
      const test = event({ received_at: T0 + 9, test: true });
      await storage.ingest([older, newer, test, event({ event: 'other.thing' })].map((e) => ({ event: e, deliveries: [] })));
      expect((await storage.recentEvents('order.created', 10)).map((e) => e.id)).toEqual([newer.id, older.id]);
      expect(await storage.recentEvents('order.created', 1)).toEqual([asStored(newer)]);
    });
  });

  describe('data lifecycle', () => {
    it('prune finished deliveries past their cutoffs with their attempts and bare events, never pending work', async () => {
      const done = await stored(2, { status: 'delivered', updated_at: T0 });
      const dead = await stored(1, { status: 'failed', updated_at: T0 });
      const waiting = await stored(1, { status: 'pending', updated_at: T0 });
      const fresh = await stored(1, { status: 'delivered', updated_at: T0 + 10_000 });
      // Failed ones are kept longer (the dead-letter retention): only the finished ones go now.
      expect(await storage.pruneDeliveries({ finishedBefore: T0 + 1, failedBefore: T0 }, 100)).toEqual({ deliveries: 2, attempts: 0, events: 1 });
      expect(await storage.getDelivery(done.deliveries[0].id)).toBeUndefined();
      expect(await storage.getEvent(done.ev.id)).toBeUndefined();
      expect(await storage.getDelivery(dead.deliveries[0].id)).toBeDefined();
      expect(await storage.pruneDeliveries({ finishedBefore: T0 + 1, failedBefore: T0 + 1 }, 100)).toEqual({ deliveries: 1, attempts: 0, events: 1 });
      expect(await storage.getDelivery(waiting.deliveries[0].id)).toBeDefined();
      expect(await storage.getDelivery(fresh.deliveries[0].id)).toBeDefined();
      expect(await storage.pruneDeliveries({ finishedBefore: T0 + 1, failedBefore: T0 + 1 }, 100)).toEqual({ deliveries: 0, attempts: 0, events: 0 });
    });

    it('a prune batch stops at its limit, finished deliveries before dead letters, and takes their attempts along', async () => {
      const { deliveries: [done, dead] } = await stored(2);
      await storage.claimByIds([done.id, dead.id], T0, T0 + 1000);
      await storage.completeAttempts([completion(done, 'delivered'), completion(dead, 'failed')], T0 + 20);
      const cutoffs = { finishedBefore: T0 + 100, failedBefore: T0 + 100 };
      expect(await storage.pruneDeliveries(cutoffs, 1)).toEqual({ deliveries: 1, attempts: 1, events: 0 });
      expect(await storage.getDelivery(done.id)).toBeUndefined();
      expect(await storage.listAttempts(done.id)).toEqual([]);
      expect(await storage.listAttempts(dead.id)).toHaveLength(1);
      expect(await storage.pruneDeliveries(cutoffs, 1)).toEqual({ deliveries: 1, attempts: 1, events: 1 });
      expect(await storage.getDelivery(dead.id)).toBeUndefined();
      expect(await storage.getEvent(dead.event_id)).toBeUndefined();
    });

    it('erase an event with its deliveries in one go, refuse while one is in flight, and answer not_found after', async () => {
      const { ev, deliveries } = await stored(2);
      await storage.claimByIds([deliveries[0].id], T0 + 10, T0 + 1000);
      expect(await storage.eraseEvent(ev.id)).toEqual({ outcome: 'in_flight', delivery_ids: [deliveries[0].id] });
      expect(await storage.getEvent(ev.id)).toBeDefined();
      await storage.releaseLeases([deliveries[0].id], T0 + 20);
      expect(await storage.eraseEvent(ev.id)).toEqual({ outcome: 'erased', deliveries: 2, attempts: 0, cancelled: 2 });
      expect(await storage.getEvent(ev.id)).toBeUndefined();
      expect(await storage.getDelivery(deliveries[1].id)).toBeUndefined();
      expect(await storage.eraseEvent(ev.id)).toEqual({ outcome: 'not_found' });
    });

    it('report the database size', async () => {
      expect((await storage.databaseSize()).bytes).toBeGreaterThan(0);
    });
  });

  describe('claims and leases', () => {
    it('claim due deliveries once, oldest first, with their events, counting the claim', async () => {
      const late = await stored(1, { next_attempt_at: T0 + 5 });
      const early = await stored(1, { next_attempt_at: T0 + 1 });
      const future = await stored(1, { next_attempt_at: T0 + 60_000 });
      const claimed = await storage.claimDue(T0 + 10, 10, T0 + 1000);
      expect(claimed.map((c) => c.delivery.id)).toEqual([early.deliveries[0].id, late.deliveries[0].id]);
      expect(claimed[0].event).toEqual(asStored(early.ev));
      expect(claimed[0].delivery).toMatchObject({ status: 'delivering', lease_until: T0 + 1000, unfinished_claims: 1 });
      expect(await storage.claimDue(T0 + 10, 10, T0 + 1000)).toEqual([]);
      expect(await storage.nextDueAt()).toBe(future.deliveries[0].next_attempt_at);
    });

    it('a claim of many answers in due order, whatever order they were stored in', async () => {
      const due: string[] = [];
      for (let n = 12; n >= 1; n--) due.unshift((await stored(1, { next_attempt_at: T0 + n })).deliveries[0].id);
      expect((await storage.claimDue(T0 + 20, 6, T0 + 1000)).map((c) => c.delivery.id)).toEqual(due.slice(0, 6));
      expect((await storage.claimDue(T0 + 20, 20, T0 + 1000, new Set(['sub_saturated']))).map((c) => c.delivery.id)).toEqual(due.slice(6));
    });

    it('pass over the subscriptions they are told to skip (a saturated destination), and claim the rest', async () => {
      const other = subscription();
      await storage.insertSubscription(other);
      const busy = await stored(3, { next_attempt_at: T0 + 1 });
      const free = await stored(2, { next_attempt_at: T0 + 2 }, other);
      const claimed = await storage.claimDue(T0 + 10, 10, T0 + 1000, new Set([sub.id]));
      expect(claimed.map((c) => c.delivery.id).sort()).toEqual(free.deliveries.map((d) => d.id).sort());
      expect((await storage.claimDue(T0 + 10, 10, T0 + 1000)).map((c) => c.delivery.id).sort()).toEqual(busy.deliveries.map((d) => d.id).sort());
    });

    it('honour the limit and claim by id only what is pending and due', async () => {
      const { deliveries } = await stored(3);
      const future = await stored(1, { next_attempt_at: T0 + 60_000 });
      expect((await storage.claimDue(T0, 2, T0 + 1000)).length).toBe(2);
      const ids = [...deliveries.map((d) => d.id), future.deliveries[0].id, 'dlv_missing'];
      const byId = await storage.claimByIds(ids, T0, T0 + 1000);
      expect(byId.length).toBe(1);
      expect(await storage.claimByIds([], T0, T0 + 1000)).toEqual([]);
    });

    it('a release makes the delivery wait again, at a new time if given, and finishes its claim', async () => {
      const { deliveries: [d] } = await stored();
      await storage.claimDue(T0, 10, T0 + 1000);
      await storage.releaseLeases([d.id], T0 + 1, T0 + 500);
      expect(await storage.getDelivery(d.id)).toMatchObject({ status: 'pending', lease_until: null, next_attempt_at: T0 + 500, unfinished_claims: 0 });
      expect(await storage.claimDue(T0 + 499, 10, T0 + 1000)).toEqual([]);
      expect((await storage.claimDue(T0 + 500, 10, T0 + 2000)).length).toBe(1);
      // Released while its subscription is disabled: paused, not pending.
      await storage.updateSubscription({ ...sub, enabled: false, updated_at: T0 + 2 });
      await storage.releaseLeases([d.id], T0 + 3);
      expect((await storage.getDelivery(d.id))?.status).toBe('paused');
    });

    it('renewed leases last longer; only expired leases are reclaimed', async () => {
      const { deliveries: [a, b] } = await stored(2);
      await storage.claimDue(T0, 10, T0 + 1000);
      await storage.renewLeases([a.id], T0 + 5000);
      expect((await storage.getDelivery(a.id))?.lease_until).toBe(T0 + 5000);
      expect(await storage.reclaimExpiredLeases(T0 + 2000)).toBe(1);
      expect(await storage.getDelivery(b.id)).toMatchObject({ status: 'pending', lease_until: null, unfinished_claims: 1 });
      expect((await storage.getDelivery(a.id))?.status).toBe('delivering');
      // The next claim counts one more unfinished claim: the first holder never finished.
      const [again] = await storage.claimByIds([b.id], T0 + 2000, T0 + 3000);
      expect(again.delivery.unfinished_claims).toBe(2);
    });
  });

  describe('completions', () => {
    it('record the attempt, the outcome and the subscription health; only held deliveries change', async () => {
      const { deliveries: [ok, retry, failed] } = await stored(3);
      const notHeld = (await stored()).deliveries[0];
      await storage.claimByIds([ok.id, retry.id, failed.id], T0, T0 + 1000);
      const okCompletion = completion(ok, 'delivered');
      const result = await storage.completeAttempts([
        okCompletion,
        completion(retry, 'pending'),
        completion(failed, 'failed'),
        completion(notHeld, 'delivered'),
      ], T0 + 20);
      expect(result.applied.sort()).toEqual([ok.id, retry.id, failed.id].sort());
      expect(result.disabledBy).toEqual([]);
      expect(result.woken ?? []).toEqual([]);
      expect(await storage.getDelivery(ok.id)).toMatchObject({ status: 'delivered', attempts: 1, lease_until: null, unfinished_claims: 0, last_status_code: 200, last_latency_ms: 12.5, last_attempt_at: T0 + 10 });
      expect(await storage.getDelivery(retry.id)).toMatchObject({ status: 'pending', attempts: 1, next_attempt_at: T0 + 60_000 });
      expect((await storage.getDelivery(failed.id))?.status).toBe('failed');
      expect((await storage.getDelivery(notHeld.id))?.status).toBe('pending');
      const [recorded] = await storage.listAttempts(ok.id);
      expect(recorded).toEqual(okCompletion.attempt);
      expect(await storage.getSubscription(sub.id)).toMatchObject({ last_delivery_at: T0 + 20, last_delivery_status: 'delivered', last_success_at: T0 + 20 });
    });

    it('a failed attempt is recorded as it went: its error and steps, no response; the delivery shows its last error', async () => {
      const { deliveries: [d] } = await stored();
      await storage.claimByIds([d.id], T0, T0 + 1000);
      const step = {
        name: 'token', method: 'POST', url: 'https://example.com/token', request_headers: { accept: 'application/json' }, request_body: 'grant_type=x',
        response_status: null, response_headers: null, response_body: null, latency_ms: 2.5, error: 'connect ECONNREFUSED',
      };
      const failed = attempt(d, { outcome: 'fail', response_status: null, response_headers: null, response_body: null, latency_ms: 3.25, error: 'connect ECONNREFUSED', steps: [step] });
      await storage.completeAttempts([completion(d, 'failed', { attempt: failed })], T0 + 20);
      expect(await storage.listAttempts(d.id)).toEqual([failed]);
      expect(await storage.getDelivery(d.id)).toMatchObject({
        status: 'failed', attempts: 1, last_attempt_at: failed.started_at, last_status_code: null, last_error: 'connect ECONNREFUSED', last_latency_ms: 3.25, updated_at: T0 + 20,
      });
    });

    it('an empty batch of completions applies nothing and answers with empty lists', async () => {
      expect(await storage.completeAttempts([], T0)).toEqual({ applied: [], disabledBy: [], woken: [] });
    });

    it('a disabling outcome disables once and pauses what waits; a deleting one cancels it', async () => {
      const { deliveries: [a, b, waiting] } = await stored(3);
      await storage.claimByIds([a.id, b.id], T0, T0 + 1000);
      const disable = { disable_subscription_reason: 'gone', status: 'failed' as const };
      const result = await storage.completeAttempts([completion(a, 'failed', disable), completion(b, 'failed', disable)], T0 + 20);
      expect(result.disabledBy).toEqual([a.id]);
      expect(await storage.getSubscription(sub.id)).toMatchObject({ enabled: false, disabled_reason: 'gone' });
      expect((await storage.getDelivery(waiting.id))?.status).toBe('paused');

      const other = subscription();
      await storage.insertSubscription(other);
      const { deliveries: [c, rest] } = await stored(2, {}, other);
      await storage.claimByIds([c.id], T0, T0 + 1000);
      const deleted = await storage.completeAttempts([completion(c, 'failed', { disable_subscription_reason: 'unsubscribed', delete_subscription: true })], T0 + 30);
      expect(deleted.disabledBy).toEqual([c.id]);
      expect(await storage.getSubscription(other.id)).toBeUndefined();
      expect(await storage.getDelivery(rest.id)).toMatchObject({ status: 'cancelled', last_error: 'unsubscribed' });
    });

    it('two deleting outcomes in one batch delete the subscription once, and each cancels what waits', async () => {
      const { deliveries: [a, b, rest] } = await stored(3);
      await storage.claimByIds([a.id, b.id], T0, T0 + 1000);
      const gone = { disable_subscription_reason: 'unsubscribed', delete_subscription: true };
      const result = await storage.completeAttempts([completion(a, 'failed', gone), completion(b, 'failed', gone)], T0 + 20);
      expect(result.disabledBy).toEqual([a.id]);
      expect(await storage.getSubscription(sub.id)).toBeUndefined();
      expect(await storage.getDelivery(rest.id)).toMatchObject({ status: 'cancelled', last_error: 'unsubscribed' });
      // The deleting outcome's own delivery keeps the outcome it was given.
      expect((await storage.getDelivery(a.id))?.status).toBe('failed');
    });

    it('failures start the failure clock and a success resets it', async () => {
      const { deliveries: [a, b] } = await stored(2);
      await storage.claimByIds([a.id], T0, T0 + 1000);
      await storage.completeAttempts([completion(a, 'failed')], T0 + 20);
      expect((await storage.getSubscription(sub.id))?.failing_since).toBe(T0 + 20);
      await storage.claimByIds([b.id], T0, T0 + 1000);
      await storage.completeAttempts([completion(b, 'delivered')], T0 + 30);
      expect(await storage.getSubscription(sub.id)).toMatchObject({ failing_since: null, last_success_at: T0 + 30 });
    });
  });

  describe('replay', () => {
    it('starts a new chain for finished deliveries, not for those in flight', async () => {
      const { deliveries: [done, inFlight] } = await stored(2);
      await storage.claimByIds([done.id, inFlight.id], T0, T0 + 1000);
      await storage.completeAttempts([completion(done, 'failed')], T0 + 20);
      expect(await storage.replayDeliveries([done.id, inFlight.id, 'dlv_missing'], T0 + 100)).toEqual([{ id: done.id, queued: done.id }]);
      expect(await storage.getDelivery(done.id)).toMatchObject({ status: 'pending', attempts: 0, chain: 2, next_attempt_at: T0 + 100, unfinished_claims: 0 });
      expect(await storage.replayDeliveries([], T0)).toEqual([]);
    });

    it('finds deliveries by subscription, status, event, time and position', async () => {
      const first = await stored(2);
      const later = await stored(1, { created_at: T0 + 1000 });
      const ids = [...first.deliveries, ...later.deliveries].map((d) => d.id).sort();
      expect(await storage.findDeliveriesForReplay({ subscription_id: sub.id, limit: 10 })).toEqual(ids);
      expect(await storage.findDeliveriesForReplay({ subscription_id: sub.id, limit: 2 })).toEqual(ids.slice(0, 2));
      expect(await storage.findDeliveriesForReplay({ subscription_id: sub.id, limit: 10, after: ids[0] })).toEqual(ids.slice(1));
      expect(await storage.findDeliveriesForReplay({ subscription_id: sub.id, limit: 10, since: T0 + 500 })).toEqual([later.deliveries[0].id]);
      expect(await storage.findDeliveriesForReplay({ subscription_id: sub.id, limit: 10, until: T0 + 500 })).toEqual(first.deliveries.map((d) => d.id).sort());
      expect(await storage.findDeliveriesForReplay({ subscription_id: sub.id, limit: 10, status: 'failed' })).toEqual([]);
      expect(await storage.findDeliveriesForReplay({ subscription_id: sub.id, limit: 10, event: 'order.created', status: 'pending' })).toEqual(ids);
    });
  });

  describe('delivery log', () => {
    it('pages newest first by id, with filters', async () => {
      const other = subscription();
      await storage.insertSubscription(other);
      const mine = (await stored(5)).deliveries.map((d) => d.id).sort().reverse();
      await stored(2, {}, other);
      const page1 = await storage.listDeliveries({ subscription_id: sub.id, limit: 2 });
      expect(page1.map((d) => d.id)).toEqual(mine.slice(0, 2));
      const page2 = await storage.listDeliveries({ subscription_id: sub.id, limit: 2, cursor: page1[1].id });
      expect(page2.map((d) => d.id)).toEqual(mine.slice(2, 4));
      expect((await storage.listDeliveries({ limit: 100 })).length).toBe(7);
      expect((await storage.listDeliveries({ limit: 100, event: 'nothing.here' })).length).toBe(0);
      expect((await storage.listDeliveries({ limit: 100, status: 'delivered' })).length).toBe(0);
      expect(page1[0]).toEqual(await storage.getDelivery(page1[0].id));
      expect(Object.keys(page1[0]).sort()).toEqual([
        'attempts', 'blocks_key', 'chain', 'created_at', 'event', 'event_id', 'id', 'last_attempt_at', 'last_error', 'last_latency_ms', 'last_status_code', 'lease_until',
        'msg_id', 'next_attempt_at', 'ordering_key', 'replay_of', 'sequence', 'status', 'subscription_id', 'unfinished_claims', 'updated_at',
      ]);
    });
  });

  describe('ordered delivery', () => {
    /** One event per key, accepted in this order, each with one delivery to `to`; null keys are unordered. */
    async function accepted(keys: (string | null)[], to = sub, overrides: Partial<DeliveryRecord> = {}): Promise<DeliveryRecord[]> {
      const out: DeliveryRecord[] = [];
      for (const key of keys) {
        const { deliveries: [d] } = await stored(1, { ordering_key: key, ...overrides }, to);
        out.push((await storage.getDelivery(d.id))!);
      }
      return out;
    }
    const finish = (d: DeliveryRecord, status: AttemptCompletion['status'], overrides: Partial<AttemptCompletion> = {}) => completion(d, status, { ordering_key: d.ordering_key, ...overrides });
    const statusOf = async (d: DeliveryRecord) => (await storage.getDelivery(d.id))?.status;
    const ids = (claimed: { delivery: DeliveryRecord }[]) => claimed.map((c) => c.delivery.id).sort();

    it('claim one delivery of a key at a time, in acceptance order, other keys and unordered ones alongside', async () => {
      const [a1, b1, a2, b2, a3, u] = await accepted(['a', 'b', 'a', 'b', 'a', null]);
      expect(a1.sequence! < a2.sequence! && a2.sequence! < a3.sequence!).toBe(true);
      expect(u).toMatchObject({ ordering_key: null, sequence: null });
      expect(ids(await storage.claimDue(T0 + 10, 10, T0 + 1000))).toEqual([a1.id, b1.id, u.id].sort());
      // Set aside until the one ahead finishes: not pending, not claimed, shown as pending by the API.
      for (const d of [a2, b2, a3]) expect(await statusOf(d)).toBe('waiting');
      expect(await storage.claimDue(T0 + 10, 10, T0 + 1000)).toEqual([]);
      expect((await storage.listDeliveries({ status: 'pending', limit: 10 })).map((d) => d.id).sort()).toEqual([a2.id, b2.id, a3.id].sort());
      expect(await storage.deliveryStats(sub.id, T0 - 1000)).toMatchObject({ pending: 6 });

      // a1 delivered: a2 is woken (and only a2); b1 retried later keeps b2 waiting.
      const result = await storage.completeAttempts([finish(a1, 'delivered'), finish(b1, 'pending')], T0 + 20);
      expect(result.woken).toEqual([a2.id]);
      expect(await statusOf(a2)).toBe('pending');
      expect(await statusOf(a3)).toBe('waiting');
      expect(await statusOf(b2)).toBe('waiting');
      expect(ids(await storage.claimByIds([a2.id, a3.id, b2.id], T0 + 30, T0 + 1000))).toEqual([a2.id]);
      // b1's retry comes due: b1 goes, not b2.
      expect(ids(await storage.claimDue(T0 + 60_000, 10, T0 + 61_000))).toEqual([b1.id]);
    });

    it('a delivery in flight holds its key even after its lease expired, until it is reclaimed; then it goes first again', async () => {
      const [a1, a2] = await accepted(['a', 'a']);
      expect(ids(await storage.claimDue(T0, 10, T0 + 1000))).toEqual([a1.id]);
      // The holder died: its lease ran out, but nobody reclaimed it yet. a2 must not overtake it.
      expect(await storage.claimDue(T0 + 5000, 10, T0 + 6000)).toEqual([]);
      expect(await storage.claimByIds([a2.id], T0 + 5000, T0 + 6000)).toEqual([]);
      expect(await storage.reclaimExpiredLeases(T0 + 5000)).toBe(1);
      expect(ids(await storage.claimDue(T0 + 5000, 10, T0 + 6000))).toEqual([a1.id]);
      expect(await statusOf(a2)).toBe('waiting');
      expect((await storage.orderingBlockers([a2.id])).get(a2.id)).toEqual({ delivery_id: a1.id, status: 'delivering', blocks_key: false });
    });

    it('one subscription-wide order with the key "*"; two subscriptions never share a key', async () => {
      const other = subscription();
      await storage.insertSubscription(other);
      const [s1, s2] = await accepted(['*', '*']);
      const [o1] = await accepted(['*'], other);
      expect(ids(await storage.claimDue(T0, 10, T0 + 1000))).toEqual([s1.id, o1.id].sort());
      expect(await statusOf(s2)).toBe('waiting');
    });

    it('on_failure block: a failed delivery stops its key, is listed, and a skip lets the next one go', async () => {
      const [a1, a2, a3, b1] = await accepted(['a', 'a', 'a', 'b']);
      await storage.claimDue(T0, 10, T0 + 1000);
      const result = await storage.completeAttempts([finish(a1, 'failed', { block_key: true })], T0 + 20);
      expect(result.woken).toEqual([]);
      expect(await storage.getDelivery(a1.id)).toMatchObject({ status: 'failed', blocks_key: true });
      expect(await storage.claimDue(T0 + 30, 10, T0 + 1000)).toEqual([]);
      expect((await storage.orderingBlockers([a2.id, a3.id, b1.id])).get(a2.id)).toEqual({ delivery_id: a1.id, status: 'failed', blocks_key: true });
      const blocked = await storage.listBlockedKeys(sub.id, 10);
      expect(blocked).toHaveLength(1);
      expect(blocked[0]).toMatchObject({ ordering_key: 'a', waiting: 2, delivery: { id: a1.id, status: 'failed', blocks_key: true } });
      // Retention keeps it: pruning it would let its key go on unseen.
      expect(await storage.pruneDeliveries({ finishedBefore: T0 + 100_000, failedBefore: T0 + 100_000 }, 100)).toMatchObject({ deliveries: 0 });

      expect(await storage.skipBlocked(a1.id, T0 + 40)).toEqual({ skipped: true, woken: [a2.id] });
      expect(await storage.getDelivery(a1.id)).toMatchObject({ status: 'failed', blocks_key: false });
      expect(await storage.skipBlocked(a1.id, T0 + 41)).toEqual({ skipped: false, woken: [] });
      expect(await storage.skipBlocked(b1.id, T0 + 41)).toEqual({ skipped: false, woken: [] });
      expect(await storage.listBlockedKeys(sub.id, 10)).toEqual([]);
      expect(ids(await storage.claimDue(T0 + 50, 10, T0 + 1000))).toEqual([a2.id]);
    });

    it('only a failed delivery with an ordering key blocks: a retried one and an unordered one never do', async () => {
      const [a1, u] = await accepted(['a', null]);
      await storage.claimDue(T0, 10, T0 + 1000);
      await storage.completeAttempts([finish(a1, 'pending', { block_key: true }), finish(u, 'failed', { block_key: true })], T0 + 20);
      expect(await storage.getDelivery(a1.id)).toMatchObject({ status: 'pending', blocks_key: false });
      expect(await storage.getDelivery(u.id)).toMatchObject({ status: 'failed', blocks_key: false });
      // Not blocking, so retention may prune the unordered dead letter.
      expect(await storage.pruneDeliveries({ finishedBefore: T0, failedBefore: T0 + 100_000 }, 100)).toMatchObject({ deliveries: 1 });
      expect(await storage.getDelivery(u.id)).toBeUndefined();
    });

    it('on_failure continue: a failed delivery goes to the dead letters and wakes the next one', async () => {
      const [a1, a2] = await accepted(['a', 'a']);
      await storage.claimDue(T0, 10, T0 + 1000);
      expect((await storage.completeAttempts([finish(a1, 'failed')], T0 + 20)).woken).toEqual([a2.id]);
      expect(await storage.getDelivery(a1.id)).toMatchObject({ status: 'failed', blocks_key: false });
    });

    it('replay: the blocking delivery in its place, an earlier finished one as a new delivery at the end of its key', async () => {
      const [a1, a2] = await accepted(['a', 'a']);
      await storage.claimDue(T0, 10, T0 + 1000);
      await storage.completeAttempts([finish(a1, 'failed', { block_key: true })], T0 + 20);
      expect(await storage.replayDeliveries([a1.id], T0 + 30)).toEqual([{ id: a1.id, queued: a1.id }]);
      expect(await storage.getDelivery(a1.id)).toMatchObject({ status: 'pending', blocks_key: false, chain: 2, sequence: a1.sequence });
      expect(ids(await storage.claimDue(T0 + 30, 10, T0 + 1000))).toEqual([a1.id]);
      const a1Again = (await storage.getDelivery(a1.id))!;
      expect((await storage.completeAttempts([finish(a1Again, 'delivered')], T0 + 40)).woken).toEqual([a2.id]);
      await storage.claimByIds([a2.id], T0 + 50, T0 + 1000);
      await storage.completeAttempts([finish(a2, 'delivered')], T0 + 60);

      const [a3] = await accepted(['a']);
      const [replayed] = await storage.replayDeliveries([a1.id], T0 + 70);
      expect(replayed.id).toBe(a1.id);
      expect(replayed.queued).not.toBe(a1.id);
      expect(replayed.queued).toMatch(/^dlv_[0-9A-Z]{26}$/);
      const copy = (await storage.getDelivery(replayed.queued))!;
      expect(copy).toMatchObject({ status: 'pending', event_id: a1.event_id, msg_id: a1.msg_id, ordering_key: 'a', replay_of: a1.id, chain: 1, attempts: 0, next_attempt_at: T0 + 70 });
      expect(copy.sequence!).toBeGreaterThan(a3.sequence!);
      expect((await storage.getDelivery(a1.id))?.status).toBe('delivered');
      // a3 first: it was accepted before the replay was asked for.
      expect(ids(await storage.claimDue(T0 + 80, 10, T0 + 1000))).toEqual([a3.id]);
      expect(await statusOf(copy)).toBe('waiting');
      // A repeat of a1's event answers with its first deliveries, not the replay's.
      const ev = (await storage.getEvent(a1.event_id))!;
      const [again] = await storage.ingest([{ event: { ...ev }, deliveries: [] }]);
      expect(again.deliveries).toEqual([{ id: a1.id, subscription_id: sub.id }]);
    });

    it('replay: a failed delivery of a key that does not block goes to the end of its key too, behind what was accepted since', async () => {
      // on_failure continue: the failure went to the dead letters and let the next one go.
      const [a1, a2] = await accepted(['a', 'a']);
      await storage.claimDue(T0, 10, T0 + 1000);
      expect((await storage.completeAttempts([finish(a1, 'failed')], T0 + 20)).woken).toEqual([a2.id]);
      const [replayed] = await storage.replayDeliveries([a1.id], T0 + 30);
      expect(replayed.queued).not.toBe(a1.id);
      expect(await storage.getDelivery(a1.id)).toMatchObject({ status: 'failed', sequence: a1.sequence });
      const copy = (await storage.getDelivery(replayed.queued))!;
      expect(copy).toMatchObject({ ordering_key: 'a', replay_of: a1.id, msg_id: a1.msg_id });
      expect(copy.sequence!).toBeGreaterThan(a2.sequence!);
      // a2, accepted before the replay was asked for, goes first; the copy waits for it.
      expect(ids(await storage.claimDue(T0 + 40, 10, T0 + 1000))).toEqual([a2.id]);
      expect(await statusOf(copy)).toBe('waiting');
    });

    it('a policy that no longer blocks lets the blocked keys go', async () => {
      const blocking = { ...sub, ordering: { key: 'data.k', on_failure: 'block' as const } };
      await storage.updateSubscription(blocking);
      expect((await storage.getSubscription(sub.id))?.ordering).toEqual(blocking.ordering);
      const [a1, a2] = await accepted(['a', 'a']);
      await storage.claimDue(T0, 10, T0 + 1000);
      await storage.completeAttempts([finish(a1, 'failed', { block_key: true })], T0 + 20);
      await storage.updateSubscription({ ...blocking, updated_at: T0 + 30 });
      expect((await storage.getDelivery(a1.id))?.blocks_key).toBe(true);
      await storage.updateSubscription({ ...blocking, ordering: { key: 'data.k', on_failure: 'continue' }, updated_at: T0 + 40 });
      expect((await storage.getDelivery(a1.id))?.blocks_key).toBe(false);
      expect(ids(await storage.claimDue(T0 + 50, 10, T0 + 1000))).toEqual([a2.id]);
    });

    it('erasing an event frees the key it held; a missed wake is caught by wakeFreeKeys', async () => {
      const [a1, a2, a3] = await accepted(['a', 'a', 'a']);
      await storage.claimDue(T0, 10, T0 + 1000);
      await storage.releaseLeases([a1.id], T0 + 1);
      expect(await storage.eraseEvent(a1.event_id)).toMatchObject({ outcome: 'erased', cancelled: 1 });
      expect(await statusOf(a2)).toBe('pending');
      await storage.claimDue(T0 + 10, 10, T0 + 1000);
      expect(await statusOf(a3)).toBe('waiting');
      // A completion that did not say its key (a wake that never happened): the safety net wakes a3.
      await storage.completeAttempts([completion(a2, 'delivered')], T0 + 20);
      expect(await statusOf(a3)).toBe('waiting');
      expect(await storage.wakeFreeKeys(T0 + 30)).toEqual([a3.id]);
      expect(await storage.wakeFreeKeys(T0 + 31)).toEqual([]);
    });

    it('disabling pauses what waits its turn no less than the rest; deleting cancels it and forgets the key state', async () => {
      const [a1, a2] = await accepted(['a', 'a']);
      await storage.claimDue(T0, 10, T0 + 1000);
      await storage.setConnectorState(sub.id, 'a', { ts: '1.2' }, T0);
      await storage.updateSubscription({ ...sub, enabled: false, updated_at: T0 + 1 });
      expect(await storage.claimDue(T0 + 10, 10, T0 + 1000)).toEqual([]);
      // a1 finishes while disabled: a2 is woken into paused, not pending.
      expect((await storage.completeAttempts([finish(a1, 'delivered')], T0 + 20)).woken).toEqual([]);
      expect(await statusOf(a2)).toBe('paused');
      expect(await storage.deleteSubscription(sub.id, T0 + 30)).toBe(true);
      expect(await statusOf(a2)).toBe('cancelled');
      expect(await storage.getConnectorState(sub.id, 'a')).toBeUndefined();
    });

    it('keep a connector state per key: stored, replaced, forgotten, and pruned once untouched long enough', async () => {
      expect(await storage.getConnectorState(sub.id, 'conv_1')).toBeUndefined();
      await storage.setConnectorState(sub.id, 'conv_1', { ts: '1700000000.000100', channel: 'C1' }, T0);
      await storage.setConnectorState(sub.id, 'conv_2', { ts: '1700000000.000200', channel: 'C1' }, T0 + 10);
      expect(await storage.getConnectorState(sub.id, 'conv_1')).toEqual({ ts: '1700000000.000100', channel: 'C1' });
      await storage.setConnectorState(sub.id, 'conv_1', { ts: '1700000000.000300', channel: 'C2' }, T0 + 20);
      expect(await storage.getConnectorState(sub.id, 'conv_1')).toEqual({ ts: '1700000000.000300', channel: 'C2' });
      expect(await storage.pruneConnectorState(T0 + 15, 100)).toBe(1);
      expect(await storage.getConnectorState(sub.id, 'conv_2')).toBeUndefined();
      await storage.setConnectorState(sub.id, 'conv_1', null, T0 + 30);
      expect(await storage.getConnectorState(sub.id, 'conv_1')).toBeUndefined();
    });
  });

  describe('stats', () => {
    it('count delivered, failed and waiting deliveries since a time', async () => {
      const { deliveries: [a, b] } = await stored(4);
      await storage.claimByIds([a.id, b.id], T0, T0 + 1000);
      await storage.completeAttempts([completion(a, 'delivered'), completion(b, 'failed')], T0 + 20);
      expect(await storage.deliveryStats(sub.id, T0 - 1000)).toEqual({ delivered: 1, failed: 1, pending: 2 });
      expect(await storage.deliveryStats(sub.id, T0 + 60_000)).toEqual({ delivered: 0, failed: 0, pending: 0 });
      expect(await storage.deliveryStats('sub_none', T0 - 1000)).toEqual({ delivered: 0, failed: 0, pending: 0 });
    });
  });
});

/**
 * PostgreSQL only: its connections default to `synchronous_commit = off` (the worker's own writes
 * need no flush each), so every write a caller is answered for must turn it on for its
 * transaction, or a 202 could be lost to a server crash. A statement trigger records the mode each
 * write ran under.
 */
describe('PostgreSQL: what a caller is answered for commits synchronously', () => {
  const TABLES = ['settings', 'api_keys', 'subscriptions', 'events', 'deliveries', 'attempts', 'connector_state'];

  it('commits every write that answers a caller with synchronous_commit on, and the worker\'s own writes without', async () => {
    const url = await createTestSchema(database!);
    const storage = new PostgresStorage({ url, poolSize: 2, instanceId: 'commit-modes' });
    const probe = new pg.Client(clientConfig(url));
    await probe.connect();
    try {
      await storage.migrate();
      await probe.query(`CREATE TABLE commit_modes (tbl text, op text, mode text);
        CREATE FUNCTION record_commit_mode() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN INSERT INTO commit_modes VALUES (TG_TABLE_NAME, TG_OP, current_setting('synchronous_commit')); RETURN NULL; END $$;
        ${TABLES.map((t) => `CREATE TRIGGER commit_mode AFTER INSERT OR UPDATE OR DELETE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION record_commit_mode();`).join('\n')}`);
      /** Runs `write` and expects each of its statements (at least one) to have run with synchronous_commit `mode`. */
      const commitsWith = (mode: 'on' | 'off') => async (name: string, write: () => Promise<unknown>) => {
        await probe.query('DELETE FROM commit_modes');
        await write();
        const modes = (await probe.query('SELECT tbl, op, mode FROM commit_modes')).rows.map((r) => `${r.tbl} ${r.op}: ${r.mode}`);
        expect(modes.length, `${name} wrote nothing`).toBeGreaterThan(0);
        expect(modes.filter((m) => !m.endsWith(`: ${mode}`)), name).toEqual([]);
      };
      const durable = commitsWith('on');
      const relaxed = commitsWith('off');

      const sub = subscription({ ordering: { key: 'data.k', on_failure: 'block' } });
      await durable('masterKeyCheck', () => storage.masterKeyCheck('sealed-check'));
      await durable('insertApiKey', () => storage.insertApiKey({ id: 'key_1', name: null, role: 'admin', prefix: 'sk_admin_ab', hash: 'ab'.repeat(32), created_at: T0, revoked_at: null }));
      await durable('setApiKeyQuota', () => storage.setApiKeyQuota('key_1', 10, 20));
      await durable('revokeApiKey', () => storage.revokeApiKey('key_1', T0));
      await durable('insertSubscription', () => storage.insertSubscription(sub));
      await durable('updateSubscription', () => storage.updateSubscription({ ...sub, enabled: false }));
      await durable('updateSubscription (enabled again)', () => storage.updateSubscription({ ...sub, enabled: true }));
      const ev = event();
      const [first, second] = [delivery(ev, sub, { ordering_key: 'k1' }), delivery(ev, sub, { ordering_key: 'k1' })];
      await durable('ingest', () => storage.ingest([{ event: ev, deliveries: [first, second] }]));
      await durable('setConnectorState', () => storage.setConnectorState(sub.id, 'k1', { ts: '1' }, T0));
      await durable('setConnectorState (forget)', () => storage.setConnectorState(sub.id, 'k1', null, T0));

      // The worker's claims and completions: relaxed, retried from the lease if lost.
      await relaxed('claimDue', () => storage.claimDue(T0 + 10, 10, T0 + 1000));
      await relaxed('completeAttempts', () => storage.completeAttempts([completion(first, 'failed')], T0 + 20));
      await relaxed('releaseLeases', () => storage.releaseLeases([second.id], T0 + 30));
      await relaxed('reclaimExpiredLeases', () => storage.reclaimExpiredLeases(T0 + 40));
      await relaxed('wakeFreeKeys', () => storage.wakeFreeKeys(T0 + 50));

      // Operators' writes: answered to a caller.
      await durable('skipBlocked', () => storage.skipBlocked(first.id, T0 + 60));
      await durable('replayDeliveries', () => storage.replayDeliveries([first.id], T0 + 70));
      await durable('eraseEvent', () => storage.eraseEvent(ev.id));
      await durable('deleteSubscription', () => storage.deleteSubscription(sub.id, T0 + 80));
    } finally {
      await probe.end();
      await storage.close();
    }
  });
});

describe('PostgreSQL: the schema and the connections', () => {
  it('refuses, before touching it, a database migrated by a newer Sluice; a closed store answers nothing more', async () => {
    const url = await createTestSchema(database!);
    const storage = new PostgresStorage({ url, poolSize: 2, instanceId: 'newer-schema' });
    await storage.migrate();
    const known = POSTGRES_MIGRATIONS.at(-1)!.version;
    const probe = new pg.Client(clientConfig(url));
    await probe.connect();
    try {
      await probe.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from the future', 0)", [known + 1]);
      const next = new PostgresStorage({ url, poolSize: 2, instanceId: 'older-instance' });
      try {
        await expect(next.migrate()).rejects.toThrow(`the database was migrated by a newer Sluice (schema ${known + 1}, this version knows ${known}); upgrade this instance instead`);
      } finally {
        await next.close();
      }
    } finally {
      await probe.end();
    }
    await storage.close();
    await expect(storage.listSubscriptions()).rejects.toThrow();
  });
});
