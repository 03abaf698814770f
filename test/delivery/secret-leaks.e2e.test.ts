import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, tempDir, waitFor } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';
import { callApi, killGateways, spawnGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { errorPaths, expectError } from '../support/error-shape.ts';

/**
 * Attacks on secrets, against a running gateway process: receivers that echo what they were
 * sent, read through a read-only key. No derived form of a secret may come back.
 */

let gw: GatewayProcess;
let dataDir: string;
let readKey = '';
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let seq = 0;

const event = () => ({ ...fixture('call.ended'), id: `evt_leak_${process.pid}_${++seq}` });
const asReader = (route: string) => callApi(gw, 'GET', route, undefined, readKey);

beforeAll(async () => {
  receiver = await startReceiver((req) => {
    // An echo service, and a host that does not know the path it was given (Express's 404 page).
    if (req.url.startsWith('/echo')) return { status: 200, headers: { 'x-echo-auth': String(req.headers.authorization ?? '') }, body: JSON.stringify({ headers: req.headers }) };
    if (req.url.startsWith('/services/')) return { status: 404, body: `Cannot POST ${req.url} (${encodeURIComponent(req.url)})` };
    return { status: 200 };
  });
  dataDir = tempDir();
  gw = await spawnGateway(dataDir);
  const key = await callApi(gw, 'POST', '/api/v1/keys', { role: 'read', name: 'auditor' });
  readKey = key.body.key;
});
afterAll(async () => {
  killGateways();
  await receiver.close();
});

describe('secrets never come back through the delivery log', () => {
  it('basic auth echoed by a receiver: neither the password nor base64(user:password) is stored', async () => {
    const password = 'correct-horse-battery-staple';
    const sub = await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${receiver.url}/echo`, events: ['call.ended'], auth: { type: 'basic', username: 'alice', password } });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const accepted = await callApi(gw, 'POST', '/api/v1/events', event());
    const id = accepted.body.deliveries.find((d: { subscription_id: string }) => d.subscription_id === sub.body.id).id;
    const delivery = await waitFor(async () => {
      const res = await asReader(`/api/v1/deliveries/${id}`);
      return res.body.status === 'delivered' ? res.body : undefined;
    }, 10_000, 'the delivery');
    const logged = JSON.stringify(delivery);
    const basic = Buffer.from(`alice:${password}`).toString('base64');
    expect(receiver.requests.some((r) => r.headers.authorization === `Basic ${basic}`)).toBe(true);
    expect(logged).not.toContain(basic);
    expect(logged).not.toContain(password);
    expect(delivery.attempts[0].response.body).toContain('********');
    expect(delivery.attempts[0].response.headers['x-echo-auth']).toBe('Basic ********');
  });

  it('a Slack webhook URL answered 404 "Cannot POST <path>": the path is scrubbed from the log, last_error and sluice.delivery.failed', async () => {
    const secretPath = '/services/T0SECRET1/B0SECRET2/XXSECRETXX';
    const ops = await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${receiver.url}/ops`, events: ['sluice.delivery.failed'] });
    expect(ops.status).toBe(201);
    const slack = await callApi(gw, 'POST', '/api/v1/webhooks', { connector: 'slack', events: ['call.ended'], connector_options: { webhook_url: `${receiver.url}${secretPath}` } });
    expect(slack.status, JSON.stringify(slack.body)).toBe(201);
    const accepted = await callApi(gw, 'POST', '/api/v1/events', event());
    const id = accepted.body.deliveries.find((d: { subscription_id: string }) => d.subscription_id === slack.body.id).id;
    const delivery = await waitFor(async () => {
      const res = await asReader(`/api/v1/deliveries/${id}`);
      return res.body.status === 'failed' ? res.body : undefined;
    }, 10_000, 'the delivery to fail');
    const alert = await waitFor(() => receiver.requests.find((r) => r.url === '/ops' && r.body.includes(id)), 10_000, 'sluice.delivery.failed');
    const list = await asReader(`/api/v1/webhooks/${slack.body.id}/deliveries`);
    expect(receiver.requests.some((r) => r.url === secretPath)).toBe(true);
    for (const [what, text] of [['delivery', JSON.stringify(delivery)], ['list', JSON.stringify(list.body)], ['alert', alert.body]] as const) {
      for (const form of ['T0SECRET1/B0SECRET2/XXSECRETXX', encodeURIComponent(secretPath), secretPath.replaceAll('/', '\\/')]) {
        expect(text, `${what} leaks ${form}`).not.toContain(form);
      }
    }
    expect(delivery.attempts[0].response.body).toContain('Cannot POST ********');
  });

  it('refuses a custom header value HTTP does not allow, at save time (422 with its path)', async () => {
    const res = await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${receiver.url}/hook`, events: ['call.ended'], headers: { 'X-Emoji': 'hi 😀', 'X-Team': 'ops' } });
    expectError(res, 422);
    expect(errorPaths(res)).toEqual(['$.headers.X-Emoji']);
    expect(res.body.error.details[0].message).toMatch(/visible ASCII/);
    const token = await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${receiver.url}/hook`, events: ['call.ended'], auth: { type: 'bearer', token: 'tök' } });
    expect(errorPaths(token)).toEqual(['$.auth.token']);
  });

  it('seals credential-like custom headers and masks them like auth, while sending them in clear', async () => {
    const headers = { 'X-Api-Key': 'ak_live_0123456789', 'X-Session-Token': 'tok_0123456789', 'X-Team': 'ops' };
    const sub = await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${receiver.url}/plain`, events: ['call.ended'], headers });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    expect(sub.body.headers).toEqual({ 'X-Api-Key': '********', 'X-Session-Token': '********', 'X-Team': 'ops' });
    const read = await asReader(`/api/v1/webhooks/${sub.body.id}`);
    expect(read.body.headers).toEqual(sub.body.headers);

    // A masked value sent back unchanged keeps the stored secret.
    const patched = await callApi(gw, 'PATCH', `/api/v1/webhooks/${sub.body.id}`, { headers: { ...read.body.headers, 'X-Team': 'sales' } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);

    const before = receiver.requests.length;
    const accepted = await callApi(gw, 'POST', '/api/v1/events', event());
    const id = accepted.body.deliveries.find((d: { subscription_id: string }) => d.subscription_id === sub.body.id).id;
    const sent = await waitFor(() => receiver.requests.slice(before).find((r) => r.url === '/plain'), 10_000, 'the delivery');
    expect(sent.headers['x-api-key']).toBe('ak_live_0123456789');
    expect(sent.headers['x-session-token']).toBe('tok_0123456789');
    expect(sent.headers['x-team']).toBe('sales');
    const delivery = await waitFor(async () => {
      const res = await asReader(`/api/v1/deliveries/${id}`);
      return res.body.attempts?.length ? res.body : undefined;
    }, 10_000, 'the attempt record');
    expect(JSON.stringify(delivery)).not.toContain('ak_live_0123456789');
    expect(JSON.stringify(delivery)).not.toContain('tok_0123456789');

    const db = new Database(path.join(dataDir, 'sluice.db'), { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare('SELECT headers, headers_sealed FROM subscriptions WHERE id = ?').get(sub.body.id) as { headers: string; headers_sealed: string };
      expect(row.headers).not.toContain('ak_live_');
      expect(row.headers_sealed).toMatch(/^v\d\./);
      expect(row.headers_sealed).not.toContain('ak_live_');
    } finally {
      db.close();
    }
  });
});
