import http from 'node:http';
import net from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fixture, tempDir, waitFor } from '../support/gateway.ts';
import { callApi, killGateways, launchGateway, metricValue, sharedDatabaseEnv, spawnGateway, stopGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { createTestDatabase, createTestSchema, type TestDatabase } from '../support/postgres.ts';
import { POSTGRES_MIGRATIONS } from '../../src/storage/postgres/migrations.ts';

/**
 * Several real gateway processes on one PostgreSQL database, all equal: they drain one backlog
 * without sending anything twice, survive `kill -9` of a neighbour, see each other's changes,
 * and start together on an empty database.
 */
let database: TestDatabase | undefined;
beforeAll(async () => {
  database = await createTestDatabase('instances_e2e');
});
afterAll(async () => {
  await database?.drop();
});
afterEach(killGateways);

interface Arrival {
  eventId: string;
  webhookId: string;
  at: number;
}

/** A receiver that answers after `delayMs` and records each arrival. */
async function receiver(delayMs: number) {
  const arrivals: Arrival[] = [];
  let inFlight = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      arrivals.push({ eventId: body.id, webhookId: String(req.headers['webhook-id']), at: Date.now() });
      inFlight++;
      setTimeout(() => {
        inFlight--;
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/hook`,
    arrivals,
    get inFlight() {
      return inFlight;
    },
    unique: () => new Set(arrivals.map((a) => a.webhookId)),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const template = fixture('call.ended');
let seq = 0;
const newEvent = () => ({ ...template, id: `evt_multi_${process.pid}_${Date.now().toString(36)}_${++seq}` });

async function postBatches(gw: GatewayProcess, batches: number, size: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < batches; i++) {
    const res = await callApi(gw, 'POST', '/api/v1/events/batch', { events: Array.from({ length: size }, newEvent) });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    ids.push(...res.body.data.map((a: { id: string }) => a.id));
  }
  return ids;
}

async function startInstances(count: number, env: Record<string, string> = {}): Promise<{ url: string; gateways: GatewayProcess[] }> {
  const url = await createTestSchema(database!);
  const gateways: GatewayProcess[] = [];
  for (let i = 0; i < count; i++) gateways.push(await spawnGateway(tempDir('sluice-multi-'), sharedDatabaseEnv(url, env), 30_000));
  return { url, gateways };
}

const successes = (gw: GatewayProcess) => metricValue(gw, 'sluice_delivery_attempts_total', 'outcome="success"');

describe('several gateway instances on one PostgreSQL database', () => {
  it('drain one backlog together without sending any delivery twice', async () => {
    const destination = await receiver(15);
    try {
      // Small worker pools, so the ingesting instance cannot take the whole backlog itself.
      const { gateways: [a, b] } = await startInstances(2, { SLUICE_DELIVERY_CONCURRENCY: '8', SLUICE_DESTINATION_CONCURRENCY: '8' });
      const sub = await callApi(a, 'POST', '/api/v1/webhooks', { url: destination.url, events: ['call.ended'] });
      expect(sub.status).toBe(201);
      await waitFor(async () => (await callApi(b, 'GET', `/api/v1/webhooks/${sub.body.id}`)).status === 200, 5_000, 'the subscription on b');
      const accepted = await postBatches(a, 6, 50);
      await waitFor(() => destination.unique().size >= 300, 30_000, `all 300 deliveries (have ${destination.unique().size})`);
      expect(destination.arrivals.length, 'no delivery was sent twice').toBe(300);
      expect(new Set(destination.arrivals.map((x) => x.eventId))).toEqual(new Set(accepted));
      // The last answers are still being recorded when the receiver has seen everything.
      await waitFor(async () => (await successes(a)) + (await successes(b)) === 300, 10_000, 'every attempt recorded');
      const byB = await successes(b);
      expect(byB, 'the instance that did not ingest took part').toBeGreaterThan(0);
    } finally {
      await destination.close();
    }
  }, 60_000);

  it('lose nothing when one is killed with kill -9 under load: the other delivers what it had accepted or leased', async () => {
    const destination = await receiver(40);
    try {
      const { gateways: [a, b] } = await startInstances(2, { SLUICE_LEASE_SECONDS: '2', SLUICE_DESTINATION_CONCURRENCY: '8' });
      const sub = await callApi(a, 'POST', '/api/v1/webhooks', { url: destination.url, events: ['call.ended'] });
      expect(sub.status).toBe(201);
      await waitFor(async () => (await callApi(b, 'GET', `/api/v1/webhooks/${sub.body.id}`)).status === 200, 5_000, 'the subscription on b');
      const accepted = [...(await postBatches(a, 4, 50)), ...(await postBatches(b, 2, 50))];
      await waitFor(() => destination.arrivals.length >= 20 && destination.inFlight > 0, 15_000, 'deliveries in flight');
      a.child.kill('SIGKILL');
      expect((await a.exited).signal).toBe('SIGKILL');
      expect(destination.unique().size, 'the kill came before everything was delivered').toBeLessThan(300);
      await waitFor(() => new Set(destination.arrivals.map((x) => x.eventId)).size >= 300, 40_000, `every accepted event (have ${destination.unique().size})`);
      expect(new Set(destination.arrivals.map((x) => x.eventId))).toEqual(new Set(accepted));
      // The log on the survivor settles: nothing pending, in flight or failed.
      await waitFor(async () => {
        let left = 0;
        for (const status of ['pending', 'delivering', 'failed']) left += (await callApi(b, 'GET', `/api/v1/webhooks/${sub.body.id}/deliveries?status=${status}&limit=100`)).body.data.length;
        return left === 0;
      }, 15_000, 'the delivery log to settle');
      await stopGateway(b);
    } finally {
      await destination.close();
    }
  }, 90_000);

  it('serve the API interchangeably: what one changes, the other honours', async () => {
    const destination = await receiver(0);
    try {
      const { gateways: [a, b] } = await startInstances(2);
      const created = Date.now();
      const sub = await callApi(a, 'POST', '/api/v1/webhooks', { url: destination.url, events: ['call.ended'] });
      expect(sub.status).toBe(201);
      // Created on a, honoured by b within a second.
      const first = await waitFor(async () => {
        const res = await callApi(b, 'POST', '/api/v1/events', newEvent());
        expect(res.status).toBe(202);
        return res.body.deliveries.length ? res.body : undefined;
      }, 5_000, 'b to fan out to the new subscription');
      expect(Date.now() - created).toBeLessThan(1_000 + 500);
      await waitFor(() => destination.arrivals.some((x) => x.eventId === first.id), 5_000, 'the delivery');
      // The log reads the same on either instance.
      const onA = await callApi(a, 'GET', `/api/v1/deliveries/${first.deliveries[0].id}`);
      expect(onA.status).toBe(200);
      await waitFor(async () => (await callApi(a, 'GET', `/api/v1/deliveries/${first.deliveries[0].id}`)).body.status === 'delivered', 5_000, 'delivered, seen from a');

      // Disabled on a: b stops fanning out to it within a second.
      expect((await callApi(a, 'PATCH', `/api/v1/webhooks/${sub.body.id}`, { enabled: false })).status).toBe(200);
      const disabledAt = Date.now();
      await waitFor(async () => (await callApi(b, 'POST', '/api/v1/events', newEvent())).body.deliveries.length === 0, 5_000, 'b to see the disable');
      expect(Date.now() - disabledAt).toBeLessThan(1_500);

      // A key revoked on a stops working on b within five seconds.
      const key = await callApi(a, 'POST', '/api/v1/keys', { role: 'read' });
      expect(key.status).toBe(201);
      expect((await callApi(b, 'GET', '/api/v1/webhooks', undefined, key.body.key)).status).toBe(200);
      expect((await callApi(a, 'DELETE', `/api/v1/keys/${key.body.id}`)).status).toBeLessThan(300);
      const revokedAt = Date.now();
      await waitFor(async () => (await callApi(b, 'GET', '/api/v1/webhooks', undefined, key.body.key)).status === 401, 6_000, 'b to refuse the revoked key');
      expect(Date.now() - revokedAt).toBeLessThan(5_000);

      // Deleted on a: gone on b.
      expect((await callApi(a, 'DELETE', `/api/v1/webhooks/${sub.body.id}`)).status).toBeLessThan(300);
      await waitFor(async () => (await callApi(b, 'GET', `/api/v1/webhooks/${sub.body.id}`)).status === 404, 2_000, 'b to see the delete');
    } finally {
      await destination.close();
    }
  }, 60_000);

  it('hold a rate_limit in total, not per instance', async () => {
    const destination = await receiver(0);
    try {
      const { gateways: [a, b] } = await startInstances(2);
      const sub = await callApi(a, 'POST', '/api/v1/webhooks', { url: destination.url, events: ['call.ended'], rate_limit: 4 });
      expect(sub.status, JSON.stringify(sub.body)).toBe(201);
      await waitFor(async () => (await callApi(b, 'GET', `/api/v1/webhooks/${sub.body.id}`)).status === 200, 5_000, 'the subscription on b');
      // Both instances take part: each ingests half and starts its own share at once.
      await Promise.all([postBatches(a, 1, 6), postBatches(b, 1, 6)]);
      await waitFor(() => destination.unique().size >= 12, 20_000, `all 12 deliveries (have ${destination.unique().size})`);
      const times = destination.arrivals.map((x) => x.at).sort((x, y) => x - y);
      // 4/s: slots 250 ms apart. A start may come late (a busy machine's timers) and the next one
      // on time, so one gap can shrink; any three starts still span two intervals, less that
      // lateness, and the twelve span eleven. Paced per instance they would come in pairs.
      const gaps = times.slice(1).map((t, i) => t - times[i]);
      const spans = times.slice(2).map((t, i) => t - times[i]);
      expect(Math.min(...spans), `gaps ${gaps.join(', ')}`).toBeGreaterThanOrEqual(300);
      expect(times.at(-1)! - times[0], `gaps ${gaps.join(', ')}`).toBeGreaterThanOrEqual(11 * 250 - 150);
      const [byA, byB] = [await successes(a), await successes(b)];
      expect(byA, 'both instances sent').toBeGreaterThan(0);
      expect(byB, 'both instances sent').toBeGreaterThan(0);
    } finally {
      await destination.close();
    }
  }, 60_000);

  it('ride out a lost database: /readyz is 503 meanwhile, nothing is accepted that is not stored, and work resumes', async () => {
    const destination = await receiver(0);
    const admin = new pg.Client({ connectionString: database!.url.replace(/\/[^/?]+(\?|$)/, '/postgres$1') });
    await admin.connect();
    try {
      const { gateways: [a] } = await startInstances(1);
      const sub = await callApi(a, 'POST', '/api/v1/webhooks', { url: destination.url, events: ['call.ended'] });
      expect(sub.status).toBe(201);
      // The database goes away: no new connections, and the gateway's are cut.
      await admin.query(`ALTER DATABASE ${database!.name} ALLOW_CONNECTIONS false`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database!.name]);
      await waitFor(async () => (await fetch(`${a.url}/readyz`)).status === 503, 10_000, '/readyz to turn 503');
      const refused = await callApi(a, 'POST', '/api/v1/events', newEvent());
      expect(refused.status).toBeGreaterThanOrEqual(500);
      // Back again: ready, accepting and delivering without a restart.
      await admin.query(`ALTER DATABASE ${database!.name} ALLOW_CONNECTIONS true`);
      await waitFor(async () => (await fetch(`${a.url}/readyz`)).status === 200, 20_000, '/readyz to be 200 again');
      const accepted = await waitFor(async () => {
        const res = await callApi(a, 'POST', '/api/v1/events', newEvent());
        return res.status === 202 ? res.body : undefined;
      }, 10_000, 'ingest to work again');
      await waitFor(() => destination.arrivals.some((x) => x.eventId === accepted.id), 10_000, 'the delivery after the outage');
      expect(destination.arrivals.some((x) => x.eventId === refused.body?.id)).toBe(false);
    } finally {
      await admin.query(`ALTER DATABASE ${database!.name} ALLOW_CONNECTIONS true`).catch(() => undefined);
      await admin.end();
      await destination.close();
    }
  }, 60_000);

  it('start together on an empty database: migrations run once, every instance is ready', async () => {
    const url = await createTestSchema(database!);
    const gateways = await Promise.all(Array.from({ length: 3 }, () => spawnGateway(tempDir('sluice-multi-'), sharedDatabaseEnv(url), 60_000)));
    expect(gateways).toHaveLength(3);
    const client = new pg.Client({ connectionString: new URL(url).toString().replace(/\?.*$/, ''), options: new URL(url).searchParams.get('options')! });
    await client.connect();
    try {
      // Every migration recorded exactly once, however many instances raced to run it.
      expect((await client.query('SELECT version FROM schema_migrations ORDER BY version')).rows).toEqual(POSTGRES_MIGRATIONS.map((m) => ({ version: m.version })));
      expect((await client.query("SELECT COUNT(*)::int AS n FROM api_keys WHERE role = 'admin'")).rows[0].n).toBe(1);
    } finally {
      await client.end();
    }
  }, 90_000);

  it('tell a repeat from a conflict whichever instance gets it: the request hash is the database\'s, keys in any order', async () => {
    const { gateways: [a, b] } = await startInstances(2);
    const event = newEvent();
    const first = await callApi(a, 'POST', '/api/v1/events', event);
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    // The same content with every object's keys in reverse order, sent to the other instance.
    const reversed = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(reversed);
      if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reversed(v)]));
      return value;
    };
    const repeat = await callApi(b, 'POST', '/api/v1/events', reversed(event));
    expect(repeat.status, JSON.stringify(repeat.body)).toBe(200);
    expect(repeat.body).toMatchObject({ id: event.id, duplicate: true });
    // Other content under the same id: refused on either instance, and the first event stays.
    const forged = await callApi(b, 'POST', '/api/v1/events', { ...event, data: { ...event.data, forged: true } });
    expect(forged.status, JSON.stringify(forged.body)).toBe(409);
    expect(forged.body.error.code).toBe('event_id_conflict');
    expect((await callApi(a, 'POST', '/api/v1/events', { ...event, timestamp: new Date(0).toISOString() })).status).toBe(409);
    expect((await callApi(a, 'POST', '/api/v1/events', event)).status).toBe(200);
  }, 60_000);

  it('refuse to start an instance whose master key cannot open the secrets already stored', async () => {
    const { url } = await startInstances(1);
    const wrong = launchGateway(tempDir('sluice-multi-'), sharedDatabaseEnv(url, { SLUICE_MASTER_KEY: '7c'.repeat(32) }));
    const { code } = await wrong.exited;
    expect(code).toBe(2);
    expect(wrong.output()).toMatch(/^sluice: configuration error: the master key cannot decrypt the secrets stored in this database: every instance sharing it must run with the same SLUICE_MASTER_KEY/m);
    expect(wrong.output().trim().split('\n')).toHaveLength(1);
  }, 30_000);
});
