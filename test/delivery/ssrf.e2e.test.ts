import type { LookupAddress } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookConnector } from '../../connectors/webhook/index.ts';
import { generateSigningSecret } from '../../src/core/signing.ts';
import { dispatchAttempt } from '../../src/delivery/dispatch.ts';
import { HttpClient } from '../../src/delivery/http-client.ts';
import { createGuardedConnector, type Resolver } from '../../src/delivery/ssrf-lookup.ts';
import type { RuntimeSubscription } from '../../src/services/subscriptions.ts';
import type { ClaimedDelivery, SubscriptionRecord } from '../../src/storage/types.ts';
import { expectError } from '../support/error-shape.ts';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { connectionCounter, createSubscription, deliveryFor, gatewayForTest, postEvent, receiverForTest, waitForDelivery } from './delivery-helpers.ts';

/**
 * The SSRF guard, end to end. Nothing here may reach a non-loopback address: names resolve
 * through a fake resolver, and every refusal happens before a connection is opened.
 */

/** A resolver from a fixed table: `rebind.test` is a public-looking name that resolves to loopback. */
const fakeResolver: Resolver = async (hostname) => {
  const table: Record<string, string> = { 'rebind.test': '127.0.0.1', 'rebind6.test': '::1' };
  const address = table[hostname];
  if (!address) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return [{ address, family: address.includes(':') ? 6 : 4 } satisfies LookupAddress];
};

function guardedClient(allowInsecure: boolean): HttpClient {
  return new HttpClient({ connector: (connect) => createGuardedConnector({ allowInsecure, resolve: fakeResolver, connect }), connectTimeoutMs: 2_000 });
}

const post = (url: string) => ({ method: 'POST' as const, url, headers: { 'content-type': 'application/json' }, body: '{}', sign: false });

describe('at create time (SLUICE_ALLOW_INSECURE_URLS=false)', () => {
  let strict: TestGateway;
  beforeAll(async () => {
    strict = await startGateway({ SLUICE_ALLOW_INSECURE_URLS: 'false' });
  });
  afterAll(() => strict?.stop());

  it.each([
    ['https://127.0.0.1/x', 'loopback'],
    ['https://localhost/x', 'loopback'],
    ['https://api.localhost/x', 'loopback'],
    ['https://169.254.169.254/latest', 'link-local (cloud metadata)'],
    ['https://[::1]/', 'IPv6 loopback'],
    ['https://10.0.0.1/', 'private'],
    ['https://192.168.1.10/', 'private'],
    ['https://100.64.0.1/', 'CGNAT'],
    ['https://224.0.0.1/', 'multicast'],
    ['https://[fd00::1]/', 'IPv6 unique local'],
    ['https://[::ffff:127.0.0.1]/', 'IPv4-mapped loopback'],
    ['https://0.0.0.0/', 'unspecified'],
  ])('refuses %s (%s) with 422 destination_forbidden', async (url) => {
    const res = await strict.api('POST', '/api/v1/webhooks', { url, events: ['call.ended'] });
    expectError(res, 422, 'destination_forbidden');
    expect(res.body.error.details[0]).toMatchObject({ path: '$.url' });
    expect(res.body.error.details[0].message).toMatch(/not allowed/);
  });

  it('refuses plain http:// even to a name it does not resolve', async () => {
    const res = await strict.api('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/x', events: ['call.ended'] });
    expectError(res, 422);
    expect(res.body.error.details[0].path).toBe('$.url');
  });

  it('refuses a PATCH that points an existing subscription at a forbidden address', async () => {
    // A literal public IP is checked without DNS, and creating a subscription sends nothing.
    const sub = await createSubscription(strict, { url: 'https://93.184.216.34/hook', events: ['call.ended'], enabled: false });
    const res = await strict.api('PATCH', `/api/v1/webhooks/${sub.id}`, { url: 'https://169.254.169.254/latest' });
    expectError(res, 422, 'destination_forbidden');
    expect((await strict.api('GET', `/api/v1/webhooks/${sub.id}`)).body.url).toBe('https://93.184.216.34/hook');
  });

  it('lets SLUICE_SSRF_ALLOWLIST exempt a network, at create and at connect time', async () => {
    const counter = await connectionCounter();
    const gw = await gatewayForTest({ SLUICE_ALLOW_INSECURE_URLS: 'false', SLUICE_SSRF_ALLOWLIST: '127.0.0.0/8' });
    try {
      const sub = await createSubscription(gw, { url: `https://127.0.0.1:${counter.port}/hook`, events: ['call.ended'], retry: { schedule: ['0s'] } });
      const delivery = await waitForDelivery(gw, deliveryFor(await postEvent(gw), sub.id));
      // The connection was allowed (the counter hangs up, so TLS fails): not an SSRF refusal.
      expect(counter.connections).toBeGreaterThanOrEqual(1);
      expect(delivery.status).toBe('failed');
      expect(delivery.attempts[0].error).not.toMatch(/refusing to connect/);
    } finally {
      await counter.close();
    }
  });
});

describe('at connect time (DNS rebinding)', () => {
  let counter: Awaited<ReturnType<typeof connectionCounter>>;
  beforeAll(async () => {
    counter = await connectionCounter();
  });
  afterAll(() => counter?.close());

  it.each(['https', 'http'])('refuses %s://rebind.test (resolving to 127.0.0.1) with ESSRF before connecting', async (scheme) => {
    const client = guardedClient(false);
    try {
      const result = await client.send(post(`${scheme}://rebind.test:${counter.port}/`), 2_000);
      expect(result).toMatchObject({ ok: false, code: 'ESSRF' });
      expect(!result.ok && result.error).toMatch(/refusing to connect to rebind\.test \(127\.0\.0\.1\)/);
    } finally {
      await client.close();
    }
    expect(counter.connections).toBe(0);
  });

  it('refuses a name resolving to IPv6 loopback, and IP literals, before connecting', async () => {
    const client = guardedClient(false);
    try {
      for (const url of [`https://rebind6.test:${counter.port}/`, `https://127.0.0.1:${counter.port}/`, `http://[::1]:${counter.port}/`]) {
        expect(await client.send(post(url), 2_000), url).toMatchObject({ ok: false, code: 'ESSRF' });
      }
    } finally {
      await client.close();
    }
    expect(counter.connections).toBe(0);
  });

  it('the same client and resolver do connect when insecure URLs are allowed (the refusal above is the guard, not the resolver)', async () => {
    const receiver = await receiverForTest(() => ({ status: 204 }));
    const client = guardedClient(true);
    try {
      const result = await client.send(post(`http://rebind.test:${receiver.port}/hook`), 2_000);
      expect(result).toMatchObject({ ok: true, response: { status: 204 } });
    } finally {
      await client.close();
    }
    expect(receiver.requests).toHaveLength(1);
  });

  it('a refused connection fails the delivery at once (not retried) and is recorded with the reason', async () => {
    const client = guardedClient(false);
    const now = Date.now();
    const record = {
      id: 'sub_ssrf',
      url: `https://rebind.test:${counter.port}/hook`,
      events: ['call.ended'],
      description: null,
      enabled: true,
      disabled_reason: null,
      headers: {},
      auth_sealed: null,
      filter: null,
      mapping: null,
      connector: 'webhook',
      connector_options: {},
      connector_secrets_sealed: null,
      retry: { schedule: ['0s', '50ms', '50ms'] },
      timeout_seconds: 2,
      rate_limit: null,
      secret_sealed: '',
      secret_prefix: 'whsec_',
      previous_secret_sealed: null,
      previous_secret_expires_at: null,
      source: 'api',
      created_at: now,
      updated_at: now,
      last_delivery_at: null,
      last_delivery_status: null,
      last_success_at: null,
      failing_since: null,
      deleted_at: null,
    } satisfies SubscriptionRecord;
    const sub: RuntimeSubscription = { record, auth: null, connectorOptions: {}, secretHeaders: {}, secret: generateSigningSecret(), previousSecret: null, schedule: [0, 50, 50] };
    const claimed: ClaimedDelivery = {
      delivery: {
        id: 'dlv_ssrf',
        event_id: 'evt_ssrf',
        subscription_id: record.id,
        event: 'call.ended',
        msg_id: 'msg_ssrf',
        status: 'delivering',
        attempts: 0,
        chain: 1,
        next_attempt_at: now,
        lease_until: now + 60_000,
        created_at: now,
        updated_at: now,
        last_attempt_at: null,
        last_status_code: null,
        last_error: null,
      },
      event: { id: 'evt_ssrf', event: 'call.ended', timestamp: new Date(now).toISOString(), data: { call: { id: 'c1' } }, received_at: now, idempotency_key: null, test: false },
    };
    try {
      const result = await dispatchAttempt(
        { http: client, render: async (envelope) => envelope, defaultTimeoutMs: 2_000, userAgent: 'sluice-test' },
        claimed,
        sub,
        webhookConnector,
        now,
      );
      expect(result.verdict.outcome).toBe('fail');
      expect(result.attempt.response_status).toBeNull();
      expect(result.attempt.error).toMatch(/refusing to connect to rebind\.test \(127\.0\.0\.1\): loopback/);
    } finally {
      await client.close();
    }
    expect(counter.connections).toBe(0);
  });
});

describe('redirects', () => {
  it('a redirect to a private address is never followed: the attempt fails with the 302 recorded', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest(() => ({ status: 302, headers: { location: 'http://169.254.169.254/latest/meta-data/' } }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule: ['0s', '50ms'] } });
    const delivery = await waitForDelivery(gw, deliveryFor(await postEvent(gw), sub.id));
    expect(delivery.status).toBe('failed');
    expect(delivery.attempts).toHaveLength(1);
    expect(delivery.attempts[0].response.status).toBe(302);
    expect(delivery.attempts[0].response.headers.location).toBe('http://169.254.169.254/latest/meta-data/');
    expect(delivery.attempts[0].request.url).toBe(`${receiver.url}/hook`);
    expect(receiver.requests).toHaveLength(1);
  });
});
