import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';
import { SQLITE_MIGRATIONS } from '../../src/storage/sqlite/migrations.ts';
import { fixture, startGateway, tempDir, waitFor, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';

const receiverPromise = startReceiver();

afterAll(async () => {
  await (await receiverPromise).close();
});

describe('migrations', () => {
  it('are numbered 1, 2, 3... without gaps', () => {
    expect(SQLITE_MIGRATIONS.map((m) => m.version)).toEqual(SQLITE_MIGRATIONS.map((_, i) => i + 1));
    for (const m of SQLITE_MIGRATIONS) expect(m.name.length).toBeGreaterThan(0);
  });

  it('run twice: the second run applies nothing and the data survives', async () => {
    const file = path.join(tempDir(), 'sluice.db');
    const storage = new SqliteStorage(file);
    try {
      expect(await storage.migrate()).toBe(SQLITE_MIGRATIONS.length);
      await storage.insertApiKey({ id: 'key_1', name: 'k', role: 'read', prefix: 'sk_read_abcdefgh', hash: 'ab'.repeat(32), created_at: 1, revoked_at: null });
      expect(await storage.migrate()).toBe(0);
      expect((await storage.listApiKeys()).map((k) => k.id)).toEqual(['key_1']);
      const recorded = storage.db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[];
      expect(recorded.map((r) => r.version)).toEqual(SQLITE_MIGRATIONS.map((m) => m.version));
    } finally {
      await storage.close();
    }

    // And again from a fresh connection, as a restart does.
    const reopened = new SqliteStorage(file);
    try {
      expect(await reopened.migrate()).toBe(0);
      expect((await reopened.listApiKeys()).map((k) => k.id)).toEqual(['key_1']);
    } finally {
      await reopened.close();
    }
  });

  it('bring a database written before ordered delivery up to date: its work goes on unordered, its PagerDuty subscriptions get ordered by dedup_key', async () => {
    const file = path.join(tempDir(), 'sluice.db');
    const old = new SqliteStorage(file);
    // The schema as version 8 left it, with a subscription of each kind and a pending delivery.
    old.db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    for (const m of SQLITE_MIGRATIONS.filter((m) => m.version <= 8)) {
      old.db.exec(m.sql);
      old.db.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(m.version, m.name);
    }
    const columns = "id, url, events, enabled, headers, connector, connector_options, secret_sealed, secret_prefix, source, created_at, updated_at";
    old.db.prepare(`INSERT INTO subscriptions (${columns}) VALUES ('sub_pd', '', '["signal.*"]', 1, '{}', 'pagerduty', '{}', 's', 'p', 'api', 1, 1)`).run();
    old.db.prepare(`INSERT INTO subscriptions (${columns}) VALUES ('sub_hook', 'https://example.com', '["*"]', 1, '{}', 'webhook', '{}', 's', 'p', 'api', 1, 1)`).run();
    old.db.prepare("INSERT INTO events (id, event, timestamp, data, received_at) VALUES ('evt_1', 'call.ended', 't', '{}', 1)").run();
    old.db.prepare(`INSERT INTO deliveries (id, event_id, subscription_id, event, msg_id, status, attempts, chain, next_attempt_at, created_at, updated_at)
      VALUES ('dlv_1', 'evt_1', 'sub_hook', 'call.ended', 'msg_1', 'pending', 0, 1, 1, 1, 1)`).run();
    await old.close();

    const storage = new SqliteStorage(file);
    try {
      expect(await storage.migrate()).toBe(SQLITE_MIGRATIONS.length - 8);
      expect((await storage.getSubscription('sub_pd'))?.ordering).toEqual({ key: expect.stringContaining('signal.resolved'), on_failure: 'continue' });
      expect((await storage.getSubscription('sub_hook'))?.ordering).toBeNull();
      const [claimed] = await storage.claimDue(10, 10, 1_000);
      expect(claimed.delivery).toMatchObject({ id: 'dlv_1', ordering_key: null, sequence: null, blocks_key: false, replay_of: null });
    } finally {
      await storage.close();
    }
  });

  it('opens the database in WAL mode with full fsync', async () => {
    const storage = new SqliteStorage(path.join(tempDir(), 'sluice.db'));
    try {
      expect(storage.db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(storage.db.pragma('synchronous', { simple: true })).toBe(2);
    } finally {
      await storage.close();
    }
  });

  it('create the data directory when it does not exist', async () => {
    const file = path.join(tempDir(), 'nested', 'deeper', 'sluice.db');
    const storage = new SqliteStorage(file);
    try {
      expect(await storage.migrate()).toBe(SQLITE_MIGRATIONS.length);
    } finally {
      await storage.close();
    }
  });
});

describe('a gateway restart', () => {
  let first: TestGateway | undefined;
  let second: TestGateway | undefined;

  afterAll(async () => {
    await first?.stop().catch(() => undefined);
    await second?.stop().catch(() => undefined);
  });

  it('answers /healthz and /readyz once started', async () => {
    const gw = await startGateway();
    try {
      for (const [route, status] of [['/healthz', 'ok'], ['/readyz', 'ready']]) {
        const res = await fetch(gw.url + route);
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual({ status });
      }
    } finally {
      await gw.stop();
    }
  });

  it('keeps keys, subscriptions, events, deliveries and attempts', async () => {
    const receiver = await receiverPromise;
    first = await startGateway();
    const gw = first;
    const readKey = (await gw.api('POST', '/api/v1/keys', { role: 'read', name: 'survivor' })).body;
    const revokedKey = (await gw.api('POST', '/api/v1/keys', { role: 'ingest' })).body;
    expect((await gw.api('DELETE', `/api/v1/keys/${revokedKey.id}`)).status).toBe(200);
    const pendingSub = (await gw.api('POST', '/api/v1/webhooks', {
      url: `${receiver.url}/later`,
      events: ['call.*'],
      description: 'waits an hour',
      headers: { 'X-Team': 'ops' },
      auth: { type: 'basic', username: 'u', password: 'restart-password' },
      retry: { schedule: ['1h'] },
    })).body;
    const liveSub = (await gw.api('POST', '/api/v1/webhooks', { url: `${receiver.url}/now`, events: ['call.ended'] })).body;
    const event = fixture('call.ended');
    const accepted = (await gw.api('POST', '/api/v1/events', event)).body;
    const pendingId = accepted.deliveries.find((d: { subscription_id: string }) => d.subscription_id === pendingSub.id).id;
    const liveId = accepted.deliveries.find((d: { subscription_id: string }) => d.subscription_id === liveSub.id).id;
    await waitFor(async () => (await gw.sluice.storage.getDelivery(liveId))?.status === 'delivered', 5_000, 'the live delivery');

    const before = {
      keys: (await gw.api('GET', '/api/v1/keys')).body,
      subs: (await gw.api('GET', '/api/v1/webhooks')).body,
      live: (await gw.api('GET', `/api/v1/deliveries/${liveId}`)).body,
      pending: (await gw.api('GET', `/api/v1/deliveries/${pendingId}`)).body,
    };
    expect(before.live.attempts).toHaveLength(1);
    await gw.stop();
    first = undefined;

    second = await startGateway({}, { dataDir: gw.dataDir });
    const after = second;
    expect((await fetch(after.url + '/readyz')).status).toBe(200);
    expect((await after.api('GET', '/api/v1/keys')).body).toEqual(before.keys);
    expect((await after.api('GET', '/api/v1/webhooks')).body).toEqual(before.subs);
    expect((await after.api('GET', `/api/v1/deliveries/${liveId}`)).body).toEqual(before.live);
    expect((await after.api('GET', `/api/v1/deliveries/${pendingId}`)).body).toMatchObject({ id: pendingId, status: 'pending', event_id: event.id });

    // Keys still authenticate (or stay revoked), secrets still decrypt, the event is still known.
    expect((await after.api('GET', '/api/v1/webhooks', undefined, readKey.key)).status).toBe(200);
    expect((await after.api('POST', '/api/v1/events', { ...event, id: 'evt_after_restart' }, revokedKey.key)).status).toBe(401);
    expect((await after.sluice.subscriptions.runtime(pendingSub.id))?.auth).toEqual({ type: 'basic', username: 'u', password: 'restart-password' });
    expect(await after.sluice.storage.getEvent(event.id)).toMatchObject({ id: event.id, data: event.data });
    const again = await after.api('POST', '/api/v1/events', event);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...accepted, duplicate: true });
  });
});
