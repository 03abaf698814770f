import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fixture, tempDir, waitFor } from '../support/gateway.ts';
import { callApi, killGateways, sharedDatabaseEnv, spawnGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { createTestDatabase, createTestSchema, type TestDatabase } from '../support/postgres.ts';

/**
 * Ordered delivery with real gateway processes: across `kill -9` and a restart on SQLite, and on
 * PostgreSQL with two instances sharing the work (and one of them killed while it holds a key).
 */
let database: TestDatabase | undefined;
beforeAll(async () => {
  database = await createTestDatabase('ordering_e2e');
});
afterAll(async () => {
  await database?.drop();
});
afterEach(killGateways);

interface Arrival {
  label: string;
  key: string;
  at: number;
}

/**
 * A receiver that records `conversation/n` of each request, answers after `delayMs`, holds the
 * requests `hold` says to hold (never answered: their sender dies), and notes any request of a key
 * that arrives while another delivery of the same key is still being answered (the same delivery
 * sent again is at least once, not a second delivery in flight).
 */
async function orderedReceiver(delayMs: () => number) {
  const arrivals: Arrival[] = [];
  const answering = new Map<string, string[]>();
  const overlaps: string[] = [];
  let hold: (label: string, index: number) => boolean = () => false;
  const held: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const key = body.data.conversation_id as string;
      const label = `${key}/${Math.round(body.data.frustration_score * 100)}`;
      const others = (answering.get(key) ?? []).filter((other) => other !== label);
      if (others.length) overlaps.push(`${label} arrived while ${others.join(', ')} was being answered`);
      answering.set(key, [...(answering.get(key) ?? []), label]);
      const index = arrivals.length;
      arrivals.push({ label, key, at: Date.now() });
      let done = false;
      const finished = () => {
        if (done) return;
        done = true;
        const list = answering.get(key)!;
        list.splice(list.indexOf(label), 1);
      };
      const answer = () => {
        finished();
        if (!res.destroyed) res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      };
      // A request cut by a killed sender is no longer being answered.
      res.once('close', finished);
      if (hold(label, index)) held.push(answer);
      else setTimeout(answer, delayMs());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/hook`,
    arrivals,
    overlaps,
    labels: (key: string) => arrivals.filter((a) => a.key === key).map((a) => a.label),
    holdWhen(check: (label: string, index: number) => boolean) {
      hold = check;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * At least once: a delivery a killed process had sent, but not yet recorded, comes again right
 * after itself; never after a later one of its key. The arrivals with such repeats folded.
 */
const inOrder = (labels: string[]) => labels.filter((label, i) => label !== labels[i - 1]);

const template = fixture('signal.frustration_spike');
let seq = 0;
function signal(conversation: string, n: number) {
  return { ...template, id: `evt_ordp_${process.pid}_${Date.now().toString(36)}_${++seq}`, data: { ...template.data, conversation_id: conversation, frustration_score: n / 100 } };
}

async function post(gw: GatewayProcess, conversation: string, n: number): Promise<void> {
  const res = await callApi(gw, 'POST', '/api/v1/events', signal(conversation, n));
  expect(res.status, JSON.stringify(res.body)).toBe(202);
}

async function subscribe(gw: GatewayProcess, url: string): Promise<string> {
  const sub = await callApi(gw, 'POST', '/api/v1/webhooks', { url, events: ['signal.*'], ordering: { key: 'data.conversation_id' }, retry: { schedule: ['0s', '100ms', '200ms', '500ms'] } });
  expect(sub.status, JSON.stringify(sub.body)).toBe(201);
  return sub.body.id;
}

describe('ordered delivery with gateway processes', () => {
  it('keeps each key in order across kill -9 and a restart (SQLite)', async () => {
    const dataDir = tempDir('sluice-ordering-crash-');
    const receiver = await orderedReceiver(() => 5);
    try {
      const first = await spawnGateway(dataDir);
      await subscribe(first, receiver.url);
      // k/1 never gets an answer from this process: it is on the wire when the process dies.
      receiver.holdWhen((label) => label === 'k/1');
      for (const n of [1, 2, 3]) await post(first, 'k', n);
      for (const n of [1, 2, 3]) await post(first, 'other', n);
      // The other key goes on meanwhile: once its last delivery arrived, k/2 had every chance to overtake.
      await waitFor(() => receiver.labels('other').length === 3 && receiver.labels('k').length === 1, 10_000, 'k/1 on the wire and the other key delivered');
      first.child.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');
      expect(receiver.labels('k')).toEqual(['k/1']);

      receiver.holdWhen(() => false);
      const second = await spawnGateway(dataDir);
      await waitFor(() => receiver.labels('k').length >= 4, 15_000, `k delivered after the restart (have ${receiver.labels('k').join(', ')})`);
      // k/1 again first (its lease was the dead process's), then 2 and 3: never one of them before it.
      expect(receiver.labels('k')).toEqual(['k/1', 'k/1', 'k/2', 'k/3']);
      // other/3 may come again right after itself (sent, but not yet recorded, when the process died).
      expect(inOrder(receiver.labels('other'))).toEqual(['other/1', 'other/2', 'other/3']);
      second.child.kill('SIGTERM');
      await second.exited;
    } finally {
      await receiver.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 45_000);

  it('two PostgreSQL instances never have two deliveries of one key in flight, keep each key in order, and a killed one\'s lease holds its key until it is taken back', async () => {
    const receiver = await orderedReceiver(() => 2 + Math.floor(Math.random() * 15));
    try {
      const url = await createTestSchema(database!);
      const env = sharedDatabaseEnv(url, { SLUICE_LEASE_SECONDS: '3' });
      const a = await spawnGateway(tempDir('sluice-ordering-pg-'), env, 30_000);
      const subscriptionId = await subscribe(a, receiver.url);

      // a alone holds kill/1 on the wire (its first sending is never answered); then b starts and takes kill/2.
      receiver.holdWhen((label, index) => label === 'kill/1' && receiver.arrivals.findIndex((x) => x.label === 'kill/1') === index);
      await post(a, 'kill', 1);
      await waitFor(() => receiver.labels('kill').length === 1, 10_000, 'kill/1 on the wire');
      const b = await spawnGateway(tempDir('sluice-ordering-pg-'), env, 30_000);
      await waitFor(async () => (await callApi(b, 'GET', `/api/v1/webhooks/${subscriptionId}`)).status === 200, 5_000, 'the subscription on b');
      await post(b, 'kill', 2);

      // Meanwhile, keys whose events go alternately to either instance, each key's one after another.
      const keys = Array.from({ length: 6 }, (_, i) => `key${i}`);
      const perKey = 8;
      await Promise.all(keys.map(async (key, k) => {
        for (let n = 1; n <= perKey; n++) await post((n + k) % 2 ? a : b, key, n);
      }));
      await waitFor(() => keys.every((key) => receiver.labels(key).length >= perKey), 30_000, 'every key delivered');

      // a dies holding kill/1: kill/2 must not overtake it. b takes kill/1 back once its lease expired.
      a.child.kill('SIGKILL');
      await a.exited;
      receiver.holdWhen(() => false);
      await waitFor(() => receiver.labels('kill').includes('kill/2'), 20_000, `kill/1 again and kill/2 (have ${receiver.labels('kill').join(', ')})`);
      // kill/1 was sent again (by b, once a's lease ran out), and only then kill/2.
      expect(receiver.labels('kill').slice(0, 2)).toEqual(['kill/1', 'kill/1']);
      expect(inOrder(receiver.labels('kill'))).toEqual(['kill/1', 'kill/2']);

      expect(receiver.overlaps).toEqual([]);
      for (const key of keys) expect(inOrder(receiver.labels(key)), key).toEqual(Array.from({ length: perKey }, (_, i) => `${key}/${i + 1}`));
    } finally {
      await receiver.close();
    }
  }, 90_000);
});
