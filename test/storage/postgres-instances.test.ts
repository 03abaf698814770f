import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.ts';
import { POSTGRES_MIGRATIONS } from '../../src/storage/postgres/migrations.ts';
import type { ClaimedDelivery, DeliveryRecord, EventRecord, StorageChange, SubscriptionRecord } from '../../src/storage/types.ts';
import { newId } from '../../src/core/ids.ts';
import { waitFor } from '../support/gateway.ts';
import { createTestDatabase, createTestSchema, type TestDatabase } from '../support/postgres.ts';

/** What only a shared database has: several storages (instances) on one schema at once. */
let database: TestDatabase | undefined;
beforeAll(async () => {
  database = await createTestDatabase('instances');
});
afterAll(async () => {
  await database?.drop();
});

const open: PostgresStorage[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

const T0 = 1_750_000_000_000;

async function instances(count: number, url?: string): Promise<PostgresStorage[]> {
  const schemaUrl = url ?? (await createTestSchema(database!));
  const list = Array.from({ length: count }, (_, i) => new PostgresStorage({ url: schemaUrl, poolSize: 4, instanceId: `instance-${i}` }));
  open.push(...list);
  return list;
}

function subscription(): SubscriptionRecord {
  return {
    id: newId('sub', T0), name: null, url: 'https://example.com/hook', events: ['*'], description: null, enabled: true, disabled_reason: null,
    headers: {}, headers_sealed: null, auth_sealed: null, filter: null, mapping: null, connector: 'webhook', connector_options: {},
    connector_secrets_sealed: null, retry: null, timeout_seconds: null, rate_limit: null, secret_sealed: 's', secret_prefix: 'p',
    previous_secret_sealed: null, previous_secret_expires_at: null, source: 'api', created_at: T0, updated_at: T0, last_delivery_at: null,
    last_delivery_status: null, last_success_at: null, failing_since: null, deleted_at: null,
  };
}

function eventWithDeliveries(sub: SubscriptionRecord, count: number, idempotencyKey: string | null = null): { event: EventRecord; deliveries: DeliveryRecord[] } {
  const event: EventRecord = { id: newId('evt', T0), event: 'order.created', timestamp: new Date(T0).toISOString(), data: { n: 1 }, received_at: T0, idempotency_key: idempotencyKey, test: false };
  const deliveries = Array.from({ length: count }, (): DeliveryRecord => ({
    id: newId('dlv', T0), event_id: event.id, subscription_id: sub.id, event: event.event, msg_id: newId('msg', T0), status: 'pending', attempts: 0, chain: 1,
    next_attempt_at: T0, lease_until: null, created_at: T0, updated_at: T0, last_attempt_at: null, last_status_code: null, last_error: null,
  }));
  return { event, deliveries };
}

/** Two instances on one fresh schema, the second listening to the changes the first announces. */
async function watching(): Promise<{ a: PostgresStorage; b: PostgresStorage; heard: StorageChange[] }> {
  const [a, b] = await instances(2);
  await a.migrate();
  const heard: StorageChange[] = [];
  await b.watch((change) => heard.push(change));
  return { a, b, heard };
}

describe('PostgreSQL shared by several instances', () => {
  it('migrations started at the same moment run once', async () => {
    const list = await instances(4);
    const applied = await Promise.all(list.map((s) => s.migrate()));
    expect(applied.sort()).toEqual([0, 0, 0, POSTGRES_MIGRATIONS.length]);
  });

  it('a database written before ordered delivery is brought up to date: work goes on unordered, PagerDuty subscriptions get ordered', async () => {
    const [storage] = await instances(1);
    const client = await storage.pool.connect();
    try {
      await client.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
      for (const m of POSTGRES_MIGRATIONS.filter((m) => m.version <= 2)) {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations VALUES ($1, $2, 0)', [m.version, m.name]);
      }
      const columns = 'id, url, events, enabled, headers, connector, connector_options, secret_sealed, secret_prefix, source, created_at, updated_at';
      await client.query(`INSERT INTO subscriptions (${columns}) VALUES ('sub_pd', '', '["signal.*"]', true, '{}', 'pagerduty', '{}', 's', 'p', 'api', 1, 1), ('sub_hook', 'https://example.com', '["*"]', true, '{}', 'webhook', '{}', 's', 'p', 'api', 1, 1)`);
      await client.query("INSERT INTO events (id, event, timestamp, data, received_at) VALUES ('evt_1', 'call.ended', 't', '{}', 1)");
      await client.query(`INSERT INTO deliveries (id, event_id, subscription_id, event, msg_id, status, attempts, chain, next_attempt_at, created_at, updated_at)
        VALUES ('dlv_1', 'evt_1', 'sub_hook', 'call.ended', 'msg_1', 'pending', 0, 1, 1, 1, 1)`);
    } finally {
      client.release();
    }
    expect(await storage.migrate()).toBe(POSTGRES_MIGRATIONS.length - 2);
    expect((await storage.getSubscription('sub_pd'))?.ordering).toEqual({ key: expect.stringContaining('signal.resolved'), on_failure: 'continue' });
    expect((await storage.getSubscription('sub_hook'))?.ordering).toBeNull();
    const [claimed] = await storage.claimDue(10, 10, 1_000);
    expect(claimed.delivery).toMatchObject({ id: 'dlv_1', ordering_key: null, sequence: null, blocks_key: false, replay_of: null });
  });

  it('concurrent claims never lease one delivery twice, and together take everything', async () => {
    const [a, b] = await instances(2);
    await a.migrate();
    const sub = subscription();
    await a.insertSubscription(sub);
    const items = Array.from({ length: 30 }, () => eventWithDeliveries(sub, 10));
    await a.ingest(items);
    const taken: Record<string, string[]> = { a: [], b: [] };
    const drain = async (storage: PostgresStorage, name: string) => {
      for (;;) {
        const claimed = await storage.claimDue(T0 + 1, 7, T0 + 60_000);
        if (!claimed.length) return;
        taken[name].push(...claimed.map((c) => c.delivery.id));
      }
    };
    await Promise.all([drain(a, 'a'), drain(b, 'b'), drain(a, 'a'), drain(b, 'b')]);
    const all = [...taken.a, ...taken.b];
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(300);
  });

  it('ordered keys under two instances hammering claims: never two deliveries of one key in flight, each key in acceptance order', async () => {
    const [a, b] = await instances(2);
    await a.migrate();
    const sub = subscription();
    await a.insertSubscription(sub);
    const keys = Array.from({ length: 6 }, (_, i) => `key-${i}`);
    const perKey = 15;
    // Both instances accept events of every key at the same moment (each one after another), with
    // unordered ones beside them; claims race them from the first event on. Two events of one key
    // accepted at once on two instances have no order between them, but each instance's own do.
    const accepted = new Map<string, string[]>();
    const ingestOn = async (storage: PostgresStorage, name: string) => {
      for (let n = 0; n < perKey; n++) {
        for (const key of keys) {
          const item = eventWithDeliveries(sub, 2);
          item.deliveries[0].ordering_key = key;
          await storage.ingest([item]);
          accepted.set(`${name}/${key}`, [...(accepted.get(`${name}/${key}`) ?? []), item.deliveries[0].id]);
        }
      }
    };
    const inFlight = new Map<string, string>();
    const started = new Map<string, string[]>(keys.map((k) => [k, []]));
    const violations: string[] = [];
    const missedWakes: string[] = [];
    let done = 0;
    const total = keys.length * perKey * 2 * 2;
    let ingesting = true;
    let clock = T0;
    const run = async (storage: PostgresStorage, claimed: ClaimedDelivery[]): Promise<void> => {
      await Promise.all(claimed.map(async ({ delivery }) => {
        const key = delivery.ordering_key;
        if (key) {
          if (inFlight.has(key)) violations.push(`${delivery.id} started while ${inFlight.get(key)} of ${key} was in flight`);
          inFlight.set(key, delivery.id);
          started.get(key)!.push(delivery.id);
        }
        await new Promise((r) => setTimeout(r, Math.random() * 4));
        if (key) inFlight.delete(key);
        const now = ++clock;
        const attempt = {
          id: newId('att', now), delivery_id: delivery.id, chain: delivery.chain, number: 1, started_at: now, outcome: 'success' as const, method: 'POST', url: 'u',
          request_headers: {}, request_body: null, response_status: 200, response_headers: null, response_body: null, latency_ms: 1, error: null, steps: null,
        };
        const result = await storage.completeAttempts([{ attempt, delivery_id: delivery.id, status: 'delivered', next_attempt_at: null, subscription_id: sub.id, disable_subscription_reason: null, delete_subscription: false, ordering_key: key }], now);
        done += result.applied.length;
        // What a finish woke is claimed by id at once, as the worker does.
        if (result.woken?.length) await run(storage, await storage.claimByIds(result.woken, now, now + 60_000));
      }));
    };
    const work = async (storage: PostgresStorage) => {
      while (done < total) {
        const now = ++clock;
        const claimed = await storage.claimDue(now, 5, now + 60_000);
        if (claimed.length) {
          await run(storage, claimed);
          continue;
        }
        // Every finish wakes its successor itself: the safety net must find nothing to do.
        if (!ingesting) missedWakes.push(...(await storage.wakeFreeKeys(now)));
        await new Promise((r) => setTimeout(r, 2));
      }
    };
    const workers = Promise.all([work(a), work(b), work(a), work(b)]);
    await Promise.all([ingestOn(a, 'a'), ingestOn(b, 'b')]);
    ingesting = false;
    await workers;
    expect(violations).toEqual([]);
    expect(missedWakes).toEqual([]);
    for (const key of keys) {
      for (const name of ['a', 'b']) {
        const own = new Set(accepted.get(`${name}/${key}`));
        expect(started.get(key)!.filter((id) => own.has(id)), `${key} accepted on ${name}`).toEqual(accepted.get(`${name}/${key}`));
      }
    }
  }, 60_000);

  it('an event of a key committed after a later-numbered one already went out waits for it (instances accepting one key at once)', async () => {
    const [a, b] = await instances(2);
    await a.migrate();
    const sub = subscription();
    await a.insertSubscription(sub);
    // Instance a's transaction takes the lower sequence number but commits last.
    const first = eventWithDeliveries(sub, 1);
    first.deliveries[0].ordering_key = 'k';
    const second = eventWithDeliveries(sub, 1);
    second.deliveries[0].ordering_key = 'k';
    const client = await a.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query("INSERT INTO events (id, event, timestamp, data, received_at) VALUES ($1, 'order.created', 't', '{}', $2)", [first.event.id, T0]);
      await client.query(`INSERT INTO deliveries (id, event_id, subscription_id, event, msg_id, status, attempts, chain, next_attempt_at, created_at, updated_at, ordering_key, sequence)
        VALUES ($1, $2, $3, 'order.created', 'msg_1', 'pending', 0, 1, $4, $4, $4, 'k', nextval('delivery_sequence'))`, [first.deliveries[0].id, first.event.id, sub.id, T0]);
      await b.ingest([second]);
      const [out] = await b.claimDue(T0 + 1, 10, T0 + 60_000);
      expect(out.delivery.id).toBe(second.deliveries[0].id);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const head = await a.getDelivery(first.deliveries[0].id);
    expect(head!.sequence!).toBeLessThan((await b.getDelivery(second.deliveries[0].id))!.sequence!);
    // Lower in sequence, but the other one is on the wire: it waits, and says for what.
    expect(await a.claimDue(T0 + 2, 10, T0 + 60_000)).toEqual([]);
    expect((await a.orderingBlockers([head!.id])).get(head!.id)).toMatchObject({ status: 'delivering' });
  });

  it('a lease is its owner\'s: others cannot renew, release or complete it, only reclaim it once expired', async () => {
    const [a, b] = await instances(2);
    await a.migrate();
    const sub = subscription();
    await a.insertSubscription(sub);
    const item = eventWithDeliveries(sub, 1);
    await a.ingest([item]);
    const [claimed] = await a.claimDue(T0, 10, T0 + 1000);
    const id = claimed.delivery.id;
    await b.releaseLeases([id], T0 + 1);
    await b.renewLeases([id], T0 + 99_000);
    expect(await b.getDelivery(id)).toMatchObject({ status: 'delivering', lease_until: T0 + 1000 });
    const attempt = {
      id: 'att_x', delivery_id: id, chain: 1, number: 1, started_at: T0, outcome: 'success' as const, method: 'POST', url: 'u', request_headers: {}, request_body: null,
      response_status: 200, response_headers: null, response_body: null, latency_ms: 1, error: null, steps: null,
    };
    const completion = { attempt, delivery_id: id, status: 'delivered' as const, next_attempt_at: null, subscription_id: sub.id, disable_subscription_reason: null, delete_subscription: false };
    expect((await b.completeAttempts([completion], T0 + 2)).applied).toEqual([]);
    expect(await b.reclaimExpiredLeases(T0 + 999)).toBe(0);
    expect(await b.reclaimExpiredLeases(T0 + 1001)).toBe(1);
    const [again] = await b.claimDue(T0 + 1001, 10, T0 + 5000);
    expect(again.delivery.unfinished_claims).toBe(2);
    // The first holder's late completion no longer counts; the new holder's does.
    expect((await a.completeAttempts([{ ...completion, attempt: { ...attempt, id: 'att_y' } }], T0 + 3)).applied).toEqual([]);
    expect((await b.completeAttempts([{ ...completion, attempt: { ...attempt, id: 'att_z' } }], T0 + 4)).applied).toEqual([id]);
  });

  it('a claim passing over saturated subscriptions does not lease a delivery another instance leased while it waited for the row', async () => {
    const [a] = await instances(1);
    await a.migrate();
    const sub = subscription();
    await a.insertSubscription(sub);
    const item = eventWithDeliveries(sub, 1);
    await a.ingest([item]);
    const id = item.deliveries[0].id;
    // Another instance's claim, caught between its update and its commit: the row is locked.
    const other = await a.pool.connect();
    try {
      await other.query('BEGIN');
      await other.query("UPDATE deliveries SET status = 'delivering', lease_until = $2, lease_owner = 'instance-other', unfinished_claims = unfinished_claims + 1 WHERE id = $1", [id, T0 + 1000]);
      // The skip list makes the claim pick from a subquery, which cannot lock what it picks.
      const claim = a.claimDue(T0, 10, T0 + 1000, new Set(['sub_saturated']));
      await waitFor(async () => (await a.pool.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'WITH picked AS%'")).rows.length, 5_000, 'the claim to wait for the row');
      await other.query('COMMIT');
      expect(await claim).toEqual([]);
    } finally {
      other.release();
    }
    expect(await a.getDelivery(id)).toMatchObject({ status: 'delivering', unfinished_claims: 1 });
    expect((await a.pool.query('SELECT lease_owner FROM deliveries WHERE id = $1', [id])).rows[0].lease_owner).toBe('instance-other');
  });

  it('the same idempotency key posted to two instances at once is stored once', async () => {
    const [a, b] = await instances(2);
    await a.migrate();
    const sub = subscription();
    await a.insertSubscription(sub);
    for (let i = 0; i < 5; i++) {
      const key = `key-${i}`;
      const results = await Promise.all([a.ingest([eventWithDeliveries(sub, 1, key)]), b.ingest([eventWithDeliveries(sub, 1, key)])]);
      const flat = results.flat();
      expect(flat.filter((r) => !r.duplicate).length).toBe(1);
      expect(flat[0].event_id).toBe(flat[1].event_id);
      expect(flat[0].deliveries).toEqual(flat[1].deliveries);
    }
  });

  it('an ingest that loses the race for an idempotency key to another instance answers with that instance\'s event', async () => {
    const [a, b] = await instances(2);
    await a.migrate();
    const sub = subscription();
    await a.insertSubscription(sub);
    const first = eventWithDeliveries(sub, 1, 'race-key');
    const second = eventWithDeliveries(sub, 1, 'race-key');
    // Instance a's ingest of the key, caught between its insert and its commit: b's check finds
    // nothing, and b's insert waits on the key's unique index until a commits, then fails (23505).
    const other = await a.pool.connect();
    let result: Awaited<ReturnType<PostgresStorage['ingest']>>;
    try {
      await other.query('BEGIN');
      await other.query("INSERT INTO events (id, event, timestamp, data, received_at, idempotency_key) VALUES ($1, 'order.created', 't', '{}', $2, 'race-key')", [first.event.id, T0]);
      await other.query(`INSERT INTO deliveries (id, event_id, subscription_id, event, msg_id, status, attempts, chain, next_attempt_at, created_at, updated_at)
        VALUES ($1, $2, $3, 'order.created', 'msg_1', 'pending', 0, 1, $4, $4, $4)`, [first.deliveries[0].id, first.event.id, sub.id, T0]);
      const ingest = b.ingest([second]);
      await waitFor(async () => (await a.pool.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO events%'")).rows.length, 5_000, 'the insert to wait for the key');
      await other.query('COMMIT');
      result = await ingest;
    } finally {
      other.release();
    }
    expect(result).toEqual([{ event_id: first.event.id, event: 'order.created', deliveries: [{ id: first.deliveries[0].id, subscription_id: sub.id }], duplicate: true }]);
    expect(await b.getEvent(second.event.id)).toBeUndefined();
    expect(await b.getDelivery(second.deliveries[0].id)).toBeUndefined();
  });

  it('changes on one instance are heard by the others', async () => {
    const { a, b, heard } = await watching();
    const sub = subscription();
    await a.insertSubscription(sub);
    await waitFor(() => heard.includes('subscriptions'), 5_000, 'a subscription change');
    await a.ingest([eventWithDeliveries(sub, 1)]);
    await waitFor(() => heard.includes('work'), 5_000, 'new work');
    await a.insertApiKey({ id: 'key_1', name: null, role: 'read', prefix: 'sk_read_x', hash: 'ab'.repeat(32), created_at: T0, revoked_at: null });
    await a.revokeApiKey('key_1', T0 + 1);
    await waitFor(() => heard.includes('keys'), 5_000, 'a key change');
    expect(b.isAvailable()).toBe(true);
  });

  it('work is announced when something becomes claimable, and only then; subscription changes when an outcome disables or deletes', async () => {
    const { a, b, heard } = await watching();
    const sub = subscription();
    const other = subscription();
    await a.insertSubscription(sub);
    await a.insertSubscription(other);
    await a.insertApiKey({ id: 'key_fence', name: null, role: 'read', prefix: 'sk_read_f', hash: 'fe'.repeat(32), created_at: T0, revoked_at: null });
    // What one call announced: notifications arrive in commit order, so a key change committed
    // before it and one after it (each always notifies) mark where the call's own ones begin and
    // end (an earlier write's notification may still be on its way when the call starts).
    const fence = async () => {
      const from = heard.length;
      await a.setApiKeyQuota('key_fence', 1, 1);
      await waitFor(() => heard.length > from && heard.at(-1) === 'keys', 5_000, 'the fence');
    };
    const announced = async (call: () => Promise<unknown>): Promise<StorageChange[]> => {
      await waitFor(() => heard.includes('subscriptions'), 5_000, 'the set-up');
      await fence();
      const from = heard.length;
      await call();
      await fence();
      return heard.slice(from, -1);
    };
    const finished = (d: DeliveryRecord, status: 'delivered' | 'failed' | 'pending', extra: { ordering_key?: string; disable_subscription_reason?: string; delete_subscription?: boolean } = {}) => ({
      attempt: {
        id: newId('att', T0), delivery_id: d.id, chain: 1, number: 1, started_at: T0, outcome: status === 'delivered' ? ('success' as const) : ('fail' as const), method: 'POST', url: 'u',
        request_headers: {}, request_body: null, response_status: status === 'delivered' ? 200 : 500, response_headers: null, response_body: null, latency_ms: 1, error: null, steps: null,
      },
      delivery_id: d.id, status, next_attempt_at: status === 'pending' ? T0 + 60_000 : null, subscription_id: d.subscription_id,
      disable_subscription_reason: extra.disable_subscription_reason ?? null, delete_subscription: extra.delete_subscription ?? false, ordering_key: extra.ordering_key,
    });

    // Ingest: deliveries stored pending are work; stored already leased (preclaimed) they are this instance's.
    const preclaimed = eventWithDeliveries(sub, 1);
    preclaimed.deliveries[0] = { ...preclaimed.deliveries[0], status: 'delivering', lease_until: T0 + 1000 };
    expect(await announced(() => a.ingest([preclaimed]))).toEqual([]);
    const plain = eventWithDeliveries(sub, 3);
    const [p1, p2, p3] = plain.deliveries;
    expect(await announced(() => a.ingest([plain]))).toEqual(['work']);
    const mixed = eventWithDeliveries(sub, 2);
    mixed.deliveries[0] = { ...mixed.deliveries[0], status: 'delivering', lease_until: T0 + 1000 };
    expect(await announced(() => a.ingest([mixed]))).toEqual(['work']);
    await a.claimByIds([p1.id, p2.id, p3.id], T0, T0 + 1000);

    // A release by its owner gives work back; one that releases nothing does not.
    expect(await announced(() => b.releaseLeases([p1.id], T0 + 1))).toEqual([]);
    expect(await announced(() => a.releaseLeases([p1.id], T0 + 1))).toEqual(['work']);
    // Reclaiming: only when a lease had expired.
    expect(await announced(() => a.reclaimExpiredLeases(T0 + 999))).toEqual([]);
    expect(await announced(() => a.reclaimExpiredLeases(T0 + 1001))).toEqual(['work']);
    expect((await a.getDelivery(preclaimed.deliveries[0].id))?.status).toBe('pending');

    // Completions: a retry is work, a plain delivery is not, a finish that wakes the next of its key is.
    await a.claimByIds([p2.id, p3.id], T0 + 2, T0 + 1000);
    expect(await announced(() => a.completeAttempts([finished(p2, 'delivered')], T0 + 3))).toEqual([]);
    expect(await announced(() => a.completeAttempts([finished(p3, 'pending')], T0 + 3))).toEqual(['work']);
    // One retry in a batch of finishes is enough.
    const [m1, m2] = mixed.deliveries;
    expect((await a.claimByIds([m1.id, m2.id], T0 + 2, T0 + 1000)).length).toBe(2);
    expect(await announced(() => a.completeAttempts([finished(m1, 'delivered'), finished(m2, 'pending')], T0 + 3))).toEqual(['work']);
    const k1 = eventWithDeliveries(sub, 1);
    const k2 = eventWithDeliveries(sub, 1);
    k1.deliveries[0].ordering_key = 'k';
    k2.deliveries[0].ordering_key = 'k';
    await a.ingest([k1, k2]);
    expect((await a.claimDue(T0 + 4, 10, T0 + 1000)).map((c) => c.delivery.id)).toContain(k1.deliveries[0].id);
    expect(await announced(() => a.completeAttempts([finished(k1.deliveries[0], 'delivered', { ordering_key: 'k' })], T0 + 5))).toEqual(['work']);

    // Replay: work when something was queued again, nothing when nothing was.
    expect((await a.claimByIds([k2.deliveries[0].id], T0 + 6, T0 + 1000)).length).toBe(1);
    expect(await announced(() => a.replayDeliveries([k2.deliveries[0].id, 'dlv_missing'], T0 + 6))).toEqual([]);
    expect(await announced(() => a.replayDeliveries([p2.id], T0 + 6))).toEqual(['work']);
    // A finished delivery of a key is queued again as a new delivery: work too.
    expect(await announced(() => a.replayDeliveries([k1.deliveries[0].id], T0 + 6))).toEqual(['work']);

    // An outcome that disables or deletes its subscription changes the subscriptions.
    const [x, y] = eventWithDeliveries(other, 2).deliveries;
    const items = eventWithDeliveries(other, 0);
    await a.ingest([{ event: items.event, deliveries: [{ ...x, event_id: items.event.id }, { ...y, event_id: items.event.id }] }]);
    await a.claimByIds([x.id, y.id], T0 + 7, T0 + 1000);
    expect(await announced(() => a.completeAttempts([finished(x, 'failed', { disable_subscription_reason: 'gone' })], T0 + 8))).toEqual(['subscriptions']);
    expect(await announced(() => a.completeAttempts([finished(y, 'failed', { disable_subscription_reason: 'gone', delete_subscription: true })], T0 + 8))).toEqual(['subscriptions']);
  });

  it('the master key check is stored once; every instance reads the first', async () => {
    const [a, b] = await instances(2);
    await a.migrate();
    expect(await a.masterKeyCheck('sealed-by-a')).toBe('sealed-by-a');
    expect(await b.masterKeyCheck('sealed-by-b')).toBe('sealed-by-a');
  });

  it('rate-limit slots are shared: reservations from two instances are spaced by the interval', async () => {
    const [a, b] = await instances(2);
    await a.migrate();
    const slots = await Promise.all([a, b, a, b, a, b].map((s) => s.reserveRateSlot('sub_1', T0, 500)));
    expect(slots.sort((x, y) => x - y)).toEqual([T0, T0 + 500, T0 + 1000, T0 + 1500, T0 + 2000, T0 + 2500]);
    // After a quiet spell the next slot is now, not in the past.
    expect(await a.reserveRateSlot('sub_1', T0 + 60_000, 500)).toBe(T0 + 60_000);
  });
});
