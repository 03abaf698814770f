import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { fixture, tempDir, waitFor } from '../support/gateway.ts';
import { callApi, killGateways, spawnGateway, type GatewayProcess } from '../support/gateway-process.ts';

/**
 * The real gateway process, killed with SIGKILL mid-delivery and stopped with SIGTERM, then
 * restarted on the same data dir: every accepted event must still arrive (at least once).
 */

interface Arrival {
  eventId: string;
  webhookId: string;
  at: number;
}

/** A receiver that answers slowly and counts requests still being answered (in flight). */
async function slowReceiver(delayMs: (index: number) => number) {
  const arrivals: Arrival[] = [];
  let inFlight = 0;
  let answered = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const index = arrivals.length;
      arrivals.push({ eventId: body.id, webhookId: String(req.headers['webhook-id']), at: Date.now() });
      inFlight += 1;
      setTimeout(() => {
        inFlight -= 1;
        answered += 1;
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      }, delayMs(index));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    arrivals,
    get inFlight() {
      return inFlight;
    },
    get answered() {
      return answered;
    },
    uniqueEvents: () => new Set(arrivals.map((a) => a.eventId)),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

afterEach(killGateways);

const api = (gw: GatewayProcess, method: string, route: string, body?: unknown) => callApi(gw, method, route, body);

const template = fixture('call.ended');
let seq = 0;
const newEvent = (label: string) => ({ ...template, id: `evt_${label}_${process.pid}_${Date.now().toString(36)}_${++seq}` });

/** Posts `singles` events one by one (a few at a time) and `batches` batches of `batchSize`; returns every accepted id. */
async function postMany(gw: GatewayProcess, label: string, singles: number, batches: number, batchSize: number): Promise<string[]> {
  const accepted: string[] = [];
  const postSingle = async () => {
    const event = newEvent(label);
    const res = await api(gw, 'POST', '/api/v1/events', event);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    accepted.push(res.body.id);
  };
  const postBatch = async () => {
    const events = Array.from({ length: batchSize }, () => newEvent(label));
    const res = await api(gw, 'POST', '/api/v1/events/batch', { events });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    accepted.push(...res.body.data.map((a: { id: string }) => a.id));
  };
  // Batches interleaved among the single posts.
  const jobs: (() => Promise<void>)[] = Array.from({ length: singles }, () => postSingle);
  for (let i = batches; i >= 1; i--) jobs.splice(Math.floor((i * singles) / (batches + 1)), 0, postBatch);
  const lanes = Array.from({ length: 8 }, async () => {
    for (let job = jobs.shift(); job; job = jobs.shift()) await job();
  });
  await Promise.all(lanes);
  return accepted;
}

async function pendingCount(gw: GatewayProcess, subscriptionId: string): Promise<number> {
  let total = 0;
  for (const status of ['pending', 'delivering', 'failed']) {
    const res = await api(gw, 'GET', `/api/v1/webhooks/${subscriptionId}/deliveries?status=${status}&limit=100`);
    expect(res.status).toBe(200);
    total += res.body.data.length;
  }
  return total;
}

describe('the gateway process', () => {
  it('loses no accepted event when killed with SIGKILL mid-delivery and restarted', async () => {
    const dataDir = tempDir('sluice-crash-');
    const receiver = await slowReceiver((i) => 20 + (i % 31));
    // Four at a time to one destination keeps a backlog in the queue when the kill comes.
    const env = { SLUICE_DESTINATION_CONCURRENCY: '4' };
    try {
      const first = await spawnGateway(dataDir, env);
      const sub = await api(first, 'POST', '/api/v1/webhooks', { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule: ['0s', '100ms', '200ms', '500ms', '1s'] } });
      expect(sub.status, JSON.stringify(sub.body)).toBe(201);

      const accepted = await postMany(first, 'crash', 100, 4, 50);
      expect(accepted).toHaveLength(300);
      expect(new Set(accepted).size).toBe(300);

      // Kill it while attempts are on the wire and most of the backlog is still queued.
      await waitFor(() => receiver.arrivals.length >= 20 && receiver.inFlight > 0, 10_000, 'deliveries in flight');
      first.child.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');
      const beforeRestart = receiver.uniqueEvents().size;
      expect(beforeRestart, 'the kill came before everything was delivered').toBeLessThan(300);

      const second = await spawnGateway(dataDir, env);
      await waitFor(() => receiver.uniqueEvents().size >= 300, 20_000, `every accepted event (have ${receiver.uniqueEvents().size})`).catch((err) => {
        throw new Error(`${err.message}; missing ${accepted.filter((id) => !receiver.uniqueEvents().has(id)).length}; gateway output:\n${second.output()}`);
      });
      expect(receiver.uniqueEvents()).toEqual(new Set(accepted));
      // Deduplicating on webhook-id gives the same answer: one message per accepted event.
      expect(new Set(receiver.arrivals.map((a) => a.webhookId)).size).toBe(300);
      // And the delivery log agrees: nothing left pending, delivering or failed.
      await waitFor(async () => (await pendingCount(second, sub.body.id)) === 0, 10_000, 'the delivery log to settle');

      second.child.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
    } finally {
      await receiver.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 30_000);

  it('on SIGTERM finishes in-flight attempts, exits 0 within the grace period, and delivers the rest after a restart', async () => {
    const dataDir = tempDir('sluice-term-');
    const receiver = await slowReceiver(() => 300);
    const env = { SLUICE_DESTINATION_CONCURRENCY: '2', SLUICE_SHUTDOWN_GRACE_SECONDS: '5' };
    try {
      const first = await spawnGateway(dataDir, env);
      const sub = await api(first, 'POST', '/api/v1/webhooks', { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule: ['0s', '100ms', '200ms'] } });
      expect(sub.status).toBe(201);
      const accepted = await postMany(first, 'term', 10, 1, 20);
      expect(accepted).toHaveLength(30);

      await waitFor(() => receiver.inFlight > 0, 10_000, 'a delivery in flight');
      const signalledAt = Date.now();
      first.child.kill('SIGTERM');
      const { code } = await first.exited;
      const tookMs = Date.now() - signalledAt;
      expect(code, first.output()).toBe(0);
      expect(tookMs).toBeLessThan(5_000 + 1_000);
      // The attempts on the wire were allowed to finish: the receiver answered every request it got.
      expect(receiver.inFlight).toBe(0);
      const deliveredBefore = receiver.uniqueEvents().size;
      expect(deliveredBefore).toBeLessThan(30);

      const second = await spawnGateway(dataDir, env);
      await waitFor(() => receiver.uniqueEvents().size >= 30, 20_000, 'every accepted event after the restart');
      expect(receiver.uniqueEvents()).toEqual(new Set(accepted));
      // A graceful stop records every finished attempt: nothing is sent twice.
      expect(receiver.arrivals).toHaveLength(30);
      await waitFor(async () => (await pendingCount(second, sub.body.id)) === 0, 10_000, 'the delivery log to settle');
      second.child.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
    } finally {
      await receiver.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 30_000);
});
