import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';
import { SQLITE_MIGRATIONS } from '../../src/storage/sqlite/migrations.ts';
import { PAGERDUTY_DEDUP_KEY_EXPRESSION } from '../../connectors/pagerduty/dedup-key-expression.ts';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.ts';
import type { AttemptCompletion, DeliveryRecord, EventRecord, Storage, SubscriptionRecord } from '../../src/storage/types.ts';
import { newId } from '../../src/core/ids.ts';
import { tempDir } from '../support/gateway.ts';
import { createTestDatabase, createTestSchema, type TestDatabase } from '../support/postgres.ts';

/**
 * The storage engines in the test process (issue #19: what the conformance suite left unchecked,
 * found by mutation testing). The storage-level cases hold for every engine and run on SQLite and
 * PostgreSQL; the upgrades and the file on disk are SQLite's own.
 */
const T0 = 1_750_000_000_000;
const open: Storage[] = [];

async function store(file = ':memory:'): Promise<SqliteStorage> {
  const storage = new SqliteStorage(file);
  open.push(storage);
  await storage.migrate();
  return storage;
}

let database: TestDatabase | undefined;
beforeAll(async () => {
  database = await createTestDatabase('engine_cases');
});
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});
afterAll(async () => {
  await database?.drop();
});

/** A fresh PostgreSQL store: a schema of its own in this file's database. */
async function postgresStore(): Promise<Storage> {
  const storage = new PostgresStorage({ url: await createTestSchema(database!), poolSize: 2, instanceId: 'engine-cases' });
  open.push(storage);
  await storage.migrate();
  return storage;
}

const ENGINES: { name: string; store: () => Promise<Storage> }[] = [
  { name: 'SQLite', store: () => store() },
  { name: 'PostgreSQL', store: postgresStore },
];

function subscription(overrides: Partial<SubscriptionRecord> = {}): SubscriptionRecord {
  return {
    id: newId('sub', T0), name: null, url: 'https://example.com/hook', events: ['order.*'], description: null, enabled: true,
    disabled_reason: null, headers: {}, headers_sealed: null, auth_sealed: null, filter: null, mapping: null, connector: 'webhook',
    connector_options: {}, connector_secrets_sealed: null, retry: null, ordering: null, timeout_seconds: null, rate_limit: null,
    secret_sealed: 'sealed-secret', secret_prefix: 'whsec_ab', previous_secret_sealed: null, previous_secret_expires_at: null,
    source: 'api', created_at: T0, updated_at: T0, last_delivery_at: null, last_delivery_status: null, last_success_at: null,
    failing_since: null, deleted_at: null, ...overrides,
  };
}

function event(overrides: Partial<EventRecord> = {}): EventRecord {
  return { id: newId('evt', T0), event: 'order.created', timestamp: new Date(T0).toISOString(), data: { n: 1 }, received_at: T0, idempotency_key: null, test: false, ...overrides };
}

function delivery(ev: EventRecord, sub: SubscriptionRecord, overrides: Partial<DeliveryRecord> = {}): DeliveryRecord {
  return {
    id: newId('dlv', T0), event_id: ev.id, subscription_id: sub.id, event: ev.event, msg_id: newId('msg', T0), status: 'pending', attempts: 0, chain: 1,
    next_attempt_at: T0, lease_until: null, created_at: T0, updated_at: T0, last_attempt_at: null, last_status_code: null, last_error: null, ...overrides,
  };
}

/** The completion of a successful attempt on `d`; `orderingKey` names its key (left out: its wake is missed). */
function delivered(d: DeliveryRecord, at: number, orderingKey?: string): AttemptCompletion {
  return {
    attempt: {
      id: newId('att', T0), delivery_id: d.id, chain: d.chain, number: 1, started_at: at, outcome: 'success', method: 'POST', url: 'https://example.com/hook',
      request_headers: {}, request_body: '{}', response_status: 200, response_headers: {}, response_body: '', latency_ms: 1, error: null, steps: null,
    },
    delivery_id: d.id, status: 'delivered', next_attempt_at: null, subscription_id: d.subscription_id, disable_subscription_reason: null, delete_subscription: false,
    ...(orderingKey ? { ordering_key: orderingKey } : {}),
  };
}

describe.each(ENGINES)('$name engine: subscriptions', ({ store }) => {
  it('a disabled subscription reads back disabled with its reason, and its sealed secrets exactly as stored, after insert and update', async () => {
    const storage = await store();
    const sealed = {
      secret_sealed: 'v1.sealed-signing-secret', previous_secret_sealed: 'v1.sealed-previous-secret', previous_secret_expires_at: T0 + 86_400_000,
      auth_sealed: 'v1.sealed-auth', headers_sealed: 'v1.sealed-headers', connector_secrets_sealed: 'v1.sealed-connector-secrets',
    };
    const sub = subscription({ enabled: false, disabled_reason: 'disabled by an admin', ...sealed });
    await storage.insertSubscription(sub);
    expect(await storage.getSubscription(sub.id)).toEqual(sub);
    expect(await storage.listSubscriptions()).toEqual([sub]);
    // Kept as given: the engine never sees a secret in clear, and never drops a sealed one.
    if (storage instanceof SqliteStorage) expect(storage.db.prepare('SELECT enabled, secret_sealed, headers_sealed, auth_sealed FROM subscriptions WHERE id = ?').get(sub.id))
      .toEqual({ enabled: 0, secret_sealed: sealed.secret_sealed, headers_sealed: sealed.headers_sealed, auth_sealed: sealed.auth_sealed });

    const enabled = { ...sub, enabled: true, disabled_reason: null, headers_sealed: null, updated_at: T0 + 1 };
    await storage.updateSubscription(enabled);
    expect(await storage.getSubscription(sub.id)).toEqual(enabled);
    const disabledAgain = { ...enabled, enabled: false, disabled_reason: 'no successful delivery for 5 days', updated_at: T0 + 2 };
    await storage.updateSubscription(disabledAgain);
    expect(await storage.getSubscription(sub.id)).toEqual(disabledAgain);
  });

  it('a subscription written without headers_sealed or ordering (records made before they existed) stores null for both', async () => {
    const storage = await store();
    const { headers_sealed: _h, ordering: _o, ...old } = subscription();
    await storage.insertSubscription(old as SubscriptionRecord);
    expect(await storage.getSubscription(old.id)).toMatchObject({ headers_sealed: null, ordering: null });
  });

  it('updating a subscription that does not exist (deleted meanwhile) changes nothing and does not fail', async () => {
    const storage = await store();
    const sub = subscription();
    await storage.insertSubscription(sub);
    await storage.updateSubscription(subscription({ url: 'https://example.com/ghost' }));
    expect(await storage.listSubscriptions()).toEqual([sub]);
  });
});

describe.each(ENGINES)('$name engine: API keys', ({ store }) => {
  it('a key created with an ingest quota keeps it; only its hash and a short prefix are stored', async () => {
    const storage = await store();
    const key = { id: 'key_q', name: 'partner', role: 'ingest' as const, prefix: 'sk_ingest_ab12', hash: 'ef'.repeat(32), created_at: T0, revoked_at: null, rate_limit: 5, rate_burst: 20 };
    await storage.insertApiKey(key);
    expect(await storage.findApiKeyByHash(key.hash)).toEqual(key);
    if (storage instanceof SqliteStorage) expect(Object.keys(storage.db.prepare('SELECT * FROM api_keys').get() as object).sort()).toEqual(['created_at', 'hash', 'id', 'name', 'prefix', 'rate_burst', 'rate_limit', 'revoked_at', 'role']);
  });
});

describe.each(ENGINES)('$name engine: events and the delivery log', ({ store }) => {
  it('a test event reads back as a test event, by id and with its claimed delivery (test sends neither count against the rate nor disable)', async () => {
    const storage = await store();
    const sub = subscription();
    await storage.insertSubscription(sub);
    const ev = event({ test: true });
    const d = delivery(ev, sub);
    await storage.ingest([{ event: ev, deliveries: [d] }]);
    expect(await storage.getEvent(ev.id)).toMatchObject({ id: ev.id, test: true });
    const [claimed] = await storage.claimDue(T0, 10, T0 + 1_000);
    expect(claimed.event).toMatchObject({ id: ev.id, test: true });
  });

  it('a replay of an earlier ordered delivery is a new delivery id: dlv_, newest in the log, counted in the stats', async () => {
    const storage = await store();
    const sub = subscription({ ordering: { key: 'data.k', on_failure: 'continue' } });
    await storage.insertSubscription(sub);
    const ev = event();
    const first = delivery(ev, sub, { ordering_key: 'k' });
    await storage.ingest([{ event: ev, deliveries: [first] }]);
    await storage.claimDue(T0, 10, T0 + 1_000);
    await storage.completeAttempts([delivered(first, T0 + 1, 'k')], T0 + 2);
    const later = T0 + 60_000;
    const [replayed] = await storage.replayDeliveries([first.id], later);
    expect(replayed.queued).toMatch(/^dlv_[0-9A-Za-z]+$/);
    expect(replayed.queued > first.id).toBe(true);
    expect((await storage.listDeliveries({ subscription_id: sub.id, limit: 1 })).map((d) => d.id)).toEqual([replayed.queued]);
    expect(await storage.deliveryStats(sub.id, later)).toEqual({ delivered: 0, failed: 0, pending: 1 });
  });

  it('a bulk replay selects by event type: deliveries of other types are left alone', async () => {
    const storage = await store();
    const sub = subscription();
    await storage.insertSubscription(sub);
    const created = event();
    const cancelled = event({ event: 'order.cancelled' });
    const mine = delivery(created, sub);
    await storage.ingest([{ event: created, deliveries: [mine] }, { event: cancelled, deliveries: [delivery(cancelled, sub)] }]);
    expect(await storage.findDeliveriesForReplay({ subscription_id: sub.id, limit: 10, event: 'order.created' })).toEqual([mine.id]);
  });
});

describe.each(ENGINES)('$name engine: ordered keys set free', ({ store }) => {
  async function orderedPair(storage: Storage, sub: SubscriptionRecord): Promise<[DeliveryRecord, DeliveryRecord]> {
    const out: DeliveryRecord[] = [];
    for (let i = 0; i < 2; i++) {
      const ev = event();
      const d = delivery(ev, sub, { ordering_key: 'k' });
      await storage.ingest([{ event: ev, deliveries: [d] }]);
      out.push(d);
    }
    return out as [DeliveryRecord, DeliveryRecord];
  }

  it('erasing the event at the head of a key answers with the delivery it set free, to be claimed at once', async () => {
    const storage = await store();
    const sub = subscription();
    await storage.insertSubscription(sub);
    const [first, second] = await orderedPair(storage, sub);
    expect((await storage.claimDue(T0, 10, T0 + 1_000)).map((c) => c.delivery.id)).toEqual([first.id]);
    await storage.releaseLeases([first.id], T0 + 1);
    expect(await storage.eraseEvent(first.event_id)).toEqual({ outcome: 'erased', deliveries: 1, attempts: 0, cancelled: 1, woken: [second.id] });
  });

  it('a key set free while its subscription is disabled wakes into paused: nothing to claim is reported', async () => {
    const storage = await store();
    const sub = subscription();
    await storage.insertSubscription(sub);
    const [first, second] = await orderedPair(storage, sub);
    await storage.claimDue(T0, 10, T0 + 1_000);
    expect((await storage.getDelivery(second.id))?.status).toBe('waiting');
    await storage.updateSubscription({ ...sub, enabled: false, updated_at: T0 + 1 });
    // The first finishes without naming its key (the wake is missed); the safety net finds the second.
    await storage.completeAttempts([delivered(first, T0 + 2)], T0 + 3);
    expect(await storage.wakeFreeKeys(T0 + 4)).toEqual([]);
    expect((await storage.getDelivery(second.id))?.status).toBe('paused');
  });
});

describe.each(ENGINES)('$name engine: retention sweep of bare events', ({ store }) => {
  it('sweeps [receivedFrom, receivedBefore) whatever the ids look like, an event at receivedFrom included', async () => {
    const storage = await store();
    // Client-chosen ids may start with a digit or a capital letter: they sort before most strings.
    const atFrom = ['0-first', 'A-order', 'Zulu', 'evt_x'].map((id) => event({ id, received_at: T0 }));
    const before = event({ id: '1-before', received_at: T0 - 1 });
    const atBefore = event({ id: '1-at-before', received_at: T0 + 10 });
    await storage.ingest([...atFrom, before, atBefore].map((e) => ({ event: e, deliveries: [] })));
    const result = await storage.sweepEvents({ receivedFrom: T0, receivedBefore: T0 + 10, limit: 100 });
    expect(result).toEqual({ scanned: 4, deleted: 4, last: { received_at: T0, id: 'evt_x' } });
    for (const e of atFrom) expect(await storage.getEvent(e.id)).toBeUndefined();
    expect(await storage.getEvent(before.id)).toBeDefined();
    expect(await storage.getEvent(atBefore.id)).toBeDefined();
  });

  it('pages in (received_at, id) order: a batch goes on after the last one seen, and an empty one says so', async () => {
    const storage = await store();
    const sub = subscription();
    await storage.insertSubscription(sub);
    const kept = event({ id: 'B-kept', received_at: T0 });
    const bare = [event({ id: 'A-bare', received_at: T0 }), event({ id: 'C-bare', received_at: T0 }), event({ id: 'A-later', received_at: T0 + 1 })];
    await storage.ingest([{ event: kept, deliveries: [delivery(kept, sub)] }, ...bare.map((e) => ({ event: e, deliveries: [] }))]);
    const first = await storage.sweepEvents({ receivedFrom: T0, receivedBefore: T0 + 10, limit: 2 });
    expect(first).toEqual({ scanned: 2, deleted: 1, last: { received_at: T0, id: 'B-kept' } });
    const second = await storage.sweepEvents({ receivedFrom: T0, receivedBefore: T0 + 10, after: first.last, limit: 2 });
    expect(second).toEqual({ scanned: 2, deleted: 2, last: { received_at: T0 + 1, id: 'A-later' } });
    expect(await storage.sweepEvents({ receivedFrom: T0, receivedBefore: T0 + 10, after: second.last, limit: 2 })).toEqual({ scanned: 0, deleted: 0, last: undefined });
    expect(await storage.getEvent(kept.id)).toBeDefined();
  });
});

describe('SQLite engine: upgrades keep the data', () => {
  /** A database file at `version`, written as that version left it; `seed` adds rows to it. */
  async function databaseAt(version: number, seed: (storage: SqliteStorage) => void): Promise<string> {
    const file = path.join(tempDir(), 'sluice.db');
    const old = new SqliteStorage(file);
    old.db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    for (const m of SQLITE_MIGRATIONS.filter((m) => m.version <= version)) {
      old.db.exec(m.sql);
      old.db.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(m.version, m.name);
    }
    seed(old);
    await old.close();
    return file;
  }

  it('API keys stored before version 3 keep only their label and four characters as prefix (a short key was stored whole), and are still found by hash', async () => {
    const keys = [
      ['key_admin', 'admin', 'sk_admin_shortbootstrap'],
      ['key_ingest', 'ingest', 'sk_ingest_0123456789'],
      ['key_read', 'read', 'sk_read_secretpart'],
      ['key_other', 'admin', 'legacy-key-value'],
    ] as const;
    const file = await databaseAt(2, (old) => {
      for (const [id, role, prefix] of keys) {
        old.db.prepare('INSERT INTO api_keys (id, name, role, prefix, hash, created_at) VALUES (?, NULL, ?, ?, ?, 1)').run(id, role, prefix, id.padEnd(64, '0'));
      }
    });
    const storage = await store(file);
    expect((await storage.listApiKeys()).map((k) => [k.id, k.prefix])).toEqual([
      ['key_admin', 'sk_admin_shor'], ['key_ingest', 'sk_ingest_0123'], ['key_other', 'lega'], ['key_read', 'sk_read_secr'],
    ]);
    expect(await storage.findApiKeyByHash('key_read'.padEnd(64, '0'))).toMatchObject({ id: 'key_read', role: 'read', rate_limit: null, rate_burst: null });
    // The lookup by hash reads an index (a full scan per authenticated request otherwise).
    const plan = storage.db.prepare('EXPLAIN QUERY PLAN SELECT * FROM api_keys WHERE hash = ?').all('x') as { detail: string }[];
    expect(plan.map((p) => p.detail)).toEqual([expect.stringContaining('USING INDEX api_keys_hash')]);
  });

  it('PagerDuty subscriptions made before ordered delivery get exactly the connector default ordering', async () => {
    const columns = 'id, url, events, enabled, headers, connector, connector_options, secret_sealed, secret_prefix, source, created_at, updated_at';
    const file = await databaseAt(8, (old) => {
      old.db.prepare(`INSERT INTO subscriptions (${columns}) VALUES ('sub_pd', '', '["signal.*"]', 1, '{}', 'pagerduty', '{}', 's', 'p', 'api', 1, 1)`).run();
    });
    const storage = await store(file);
    expect((await storage.getSubscription('sub_pd'))?.ordering).toEqual({ key: PAGERDUTY_DEDUP_KEY_EXPRESSION, on_failure: 'continue' });
  });
});

describe('SQLite engine: the file on disk', () => {
  const mode = (file: string) => fs.statSync(file).mode & 0o777;

  it('close closes the connection, and a second close is harmless', async () => {
    const storage = new SqliteStorage(path.join(tempDir(), 'sluice.db'));
    await storage.migrate();
    await storage.close();
    expect(storage.db.open).toBe(false);
    await storage.close();
  });

  it('creates its directory 0700 and the database 0600 (sealed secrets and events are nobody else\'s business)', async () => {
    const dir = path.join(tempDir(), 'data', 'nested');
    const file = path.join(dir, 'sluice.db');
    await store(file);
    expect(mode(dir)).toBe(0o700);
    expect(mode(file)).toBe(0o600);
  });

  it('returns to synchronous = FULL after each relaxed transaction, and after one that failed', async () => {
    const storage = await store(path.join(tempDir(), 'sluice.db'));
    const FULL = 2;
    await storage.claimDue(T0, 10, T0 + 1_000);
    expect(storage.db.pragma('synchronous', { simple: true })).toBe(FULL);
    await storage.pruneDeliveries({ finishedBefore: T0, failedBefore: T0 }, 10);
    expect(storage.db.pragma('synchronous', { simple: true })).toBe(FULL);
    // A relaxed transaction that throws (a NaN limit is refused by SQLite's LIMIT) still restores it.
    await expect(storage.pruneConnectorState(T0, 'x' as unknown as number)).rejects.toThrow();
    expect(storage.db.pragma('synchronous', { simple: true })).toBe(FULL);
  });

  it('enforces foreign keys (a delivery of an unknown event is refused) and waits up to 5 s for another writer', async () => {
    const storage = await store(path.join(tempDir(), 'sluice.db'));
    expect(storage.db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(storage.db.pragma('busy_timeout', { simple: true })).toBe(5000);
    const sub = subscription();
    await storage.insertSubscription(sub);
    const ghost = event({ id: 'evt_ghost' });
    expect(() => storage.db.prepare("INSERT INTO deliveries (id, event_id, subscription_id, event, msg_id, status, attempts, chain, next_attempt_at, created_at, updated_at) VALUES ('dlv_x', ?, ?, 'e', 'm', 'pending', 0, 1, 0, 0, 0)").run(ghost.id, sub.id))
      .toThrow(/FOREIGN KEY/);
  });

  it('a backup is a private, consistent copy, and never overwrites a file', async () => {
    const storage = await store(path.join(tempDir(), 'sluice.db'));
    const sub = subscription();
    await storage.insertSubscription(sub);
    const target = path.join(tempDir(), 'copy.db');
    const { pages } = await storage.backup(target);
    expect(pages).toBeGreaterThan(1);
    expect(mode(target)).toBe(0o600);
    const copy = new SqliteStorage(target);
    open.push(copy);
    expect(await copy.migrate()).toBe(0);
    expect(await copy.getSubscription(sub.id)).toEqual(sub);
    await expect(storage.backup(target)).rejects.toThrow(/EEXIST/);
  });

  it('reports its size in bytes, and the bytes freed for reuse', async () => {
    const storage = await store(path.join(tempDir(), 'sluice.db'));
    const pageSize = storage.db.pragma('page_size', { simple: true }) as number;
    const empty = await storage.databaseSize();
    expect(empty).toEqual({ bytes: (storage.db.pragma('page_count', { simple: true }) as number) * pageSize, free_bytes: 0 });
    const events = Array.from({ length: 50 }, (_, i) => event({ id: `evt_big_${i}`, data: { body: 'x'.repeat(8_000) } }));
    await storage.ingest(events.map((e) => ({ event: e, deliveries: [] })));
    await storage.sweepEvents({ receivedFrom: 0, receivedBefore: T0 + 1, limit: 100 });
    const after = await storage.databaseSize();
    expect(after.bytes).toBeGreaterThan(50 * 8_000);
    expect(after.free_bytes).toBeGreaterThan(40 * 8_000);
    expect(after.free_bytes! % pageSize).toBe(0);
  });
});
