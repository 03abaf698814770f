import { createHmac, timingSafeEqual } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/gateway.ts';
import { generateSigningSecret } from '../../src/core/signing.ts';
import type { ReceivedRequest } from '../support/receiver.ts';
import { createSubscription, deliveryFor, gatewayForTest, getDelivery, header, postEvent, receiverForTest, waitForDelivery } from './delivery-helpers.ts';

/** The three Standard Webhooks headers, as the library wants them. */
function standardHeaders(req: ReceivedRequest): Record<string, string> {
  return {
    'webhook-id': header(req.headers, 'webhook-id'),
    'webhook-timestamp': header(req.headers, 'webhook-timestamp'),
    'webhook-signature': header(req.headers, 'webhook-signature'),
  };
}

/**
 * An independent check of `X-Webhook-Signature: v1=<hex>[, v1=<hex>]`, as the README tells
 * receivers: HMAC-SHA256 of the raw body keyed with the whole secret string, equal to any value.
 */
function simpleSignatureValid(body: string, secret: string, value: string): boolean {
  const expected = Buffer.from(`v1=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`);
  return value.split(',').some((candidate) => {
    const given = Buffer.from(candidate.trim());
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

describe('signatures on delivered requests', () => {
  it('verify with the standardwebhooks library and with a hex HMAC of the raw body', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    const secret: string = sub.signing_secret;
    const accepted = await postEvent(gw, 'call.ended');
    const deliveryId = deliveryFor(accepted, sub.id);

    await waitFor(() => receiver.requests.length >= 1, 5_000, 'the delivery');
    const [req] = receiver.requests;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/hook');
    expect(header(req.headers, 'content-type')).toMatch(/^application\/json/);

    // The official library: throws on a bad signature or a stale timestamp, returns the payload.
    const verified = new Webhook(secret).verify(req.body, standardHeaders(req)) as Record<string, unknown>;
    expect(verified).toMatchObject({ event: 'call.ended', id: accepted.id });
    expect(header(req.headers, 'webhook-signature')).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);

    // A wrong secret or a tampered body does not verify.
    expect(() => new Webhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`).verify(req.body, standardHeaders(req))).toThrow();
    expect(() => new Webhook(secret).verify(req.body.replace('call_abc123', 'call_forged'), standardHeaders(req))).toThrow();

    const simple = header(req.headers, 'x-webhook-signature');
    expect(simple).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(simpleSignatureValid(req.body, secret, simple)).toBe(true);
    expect(simpleSignatureValid(req.body + ' ', secret, simple)).toBe(false);

    expect(header(req.headers, 'x-webhook-event')).toBe('call.ended');
    expect(header(req.headers, 'x-webhook-delivery')).toBe(deliveryId);
    const delivery = await waitForDelivery(gw, deliveryId);
    expect(delivery.status).toBe('delivered');
    expect(header(req.headers, 'webhook-id')).toBe(delivery.webhook_id);
    const timestamp = Number(header(req.headers, 'webhook-timestamp'));
    expect(Math.abs(timestamp - req.at / 1000)).toBeLessThan(5);
  });

  it('keep webhook-id, X-Webhook-Event and X-Webhook-Delivery stable across retries, with a fresh timestamp each time', async () => {
    const gw = await gatewayForTest();
    // Fails twice, then succeeds.
    const receiver = await receiverForTest((_req, index) => (index < 2 ? { status: 503 } : { status: 200 }));
    // The gap before the 2nd attempt is over a second (even with -20% jitter), so its timestamp must differ.
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule: ['0s', '1300ms', '50ms'] } });
    const accepted = await postEvent(gw, 'call.ended');
    const deliveryId = deliveryFor(accepted, sub.id);

    const delivery = await waitForDelivery(gw, deliveryId);
    expect(delivery.status).toBe('delivered');
    expect(receiver.requests).toHaveLength(3);
    const ids = receiver.requests.map((r) => header(r.headers, 'webhook-id'));
    expect(new Set(ids)).toEqual(new Set([delivery.webhook_id]));
    expect(receiver.requests.map((r) => header(r.headers, 'x-webhook-delivery'))).toEqual([deliveryId, deliveryId, deliveryId]);
    expect(receiver.requests.map((r) => header(r.headers, 'x-webhook-event'))).toEqual(['call.ended', 'call.ended', 'call.ended']);

    const timestamps = receiver.requests.map((r) => Number(header(r.headers, 'webhook-timestamp')));
    expect(timestamps[1]).toBeGreaterThan(timestamps[0]);
    for (const [i, req] of receiver.requests.entries()) {
      // Each attempt is signed afresh: its timestamp is its own send time, and it verifies.
      expect(Math.abs(timestamps[i] - req.at / 1000)).toBeLessThan(5);
      expect(() => new Webhook(sub.signing_secret).verify(req.body, standardHeaders(req))).not.toThrow();
      expect(simpleSignatureValid(req.body, sub.signing_secret, header(req.headers, 'x-webhook-signature'))).toBe(true);
    }
    // Same body every time: a receiver deduplicating on webhook-id loses nothing.
    expect(new Set(receiver.requests.map((r) => r.body)).size).toBe(1);
  }, 15_000);

  it('carries two signatures after rotate-secret, each verifying alone', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    const oldSecret: string = sub.signing_secret;

    const rotated = await gw.api('POST', `/api/v1/webhooks/${sub.id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    const newSecret: string = rotated.body.signing_secret;
    expect(newSecret).toMatch(/^whsec_/);
    expect(newSecret).not.toBe(oldSecret);

    await postEvent(gw, 'call.ended');
    await waitFor(() => receiver.requests.length >= 1, 5_000, 'the delivery');
    const [req] = receiver.requests;
    const signatures = header(req.headers, 'webhook-signature').split(' ');
    expect(signatures).toHaveLength(2);
    for (const s of signatures) expect(s).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);

    // A receiver still holding the old secret accepts, and so does one already on the new.
    expect(() => new Webhook(oldSecret).verify(req.body, standardHeaders(req))).not.toThrow();
    expect(() => new Webhook(newSecret).verify(req.body, standardHeaders(req))).not.toThrow();
    // The simple scheme signs once per secret too, newest first.
    const simple = header(req.headers, 'x-webhook-signature');
    expect(simple).toMatch(/^v1=[0-9a-f]{64}, v1=[0-9a-f]{64}$/);
    expect(simpleSignatureValid(req.body, newSecret, simple)).toBe(true);
    expect(simpleSignatureValid(req.body, oldSecret, simple)).toBe(true);
    expect(simpleSignatureValid(req.body, generateSigningSecret(), simple)).toBe(false);
  });

  it('signs with the new secret alone when there is no rotation overlap (SLUICE_SECRET_ROTATION_HOURS=0)', async () => {
    const gw = await gatewayForTest({ SLUICE_SECRET_ROTATION_HOURS: '0' });
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    const rotated = await gw.api('POST', `/api/v1/webhooks/${sub.id}/rotate-secret`);
    expect(rotated.status).toBe(200);

    await postEvent(gw, 'call.ended');
    await waitFor(() => receiver.requests.length >= 1, 5_000, 'the delivery');
    const [req] = receiver.requests;
    expect(header(req.headers, 'webhook-signature').split(' ')).toHaveLength(1);
    expect(header(req.headers, 'x-webhook-signature')).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(() => new Webhook(rotated.body.signing_secret).verify(req.body, standardHeaders(req))).not.toThrow();
    expect(() => new Webhook(sub.signing_secret).verify(req.body, standardHeaders(req))).toThrow();
  });
});

describe('custom headers and auth', () => {
  const PASSWORD = 'pw-e2e-hunter2-secret';
  const TOKEN = 'tok-e2e-bearer-secret-0123456789';
  const API_KEY = 'key-e2e-header-secret-abcdef';

  it.each([
    {
      kind: 'basic',
      auth: { type: 'basic', username: 'sluice-user', password: PASSWORD },
      secret: PASSWORD,
      headerName: 'authorization',
      expected: `Basic ${Buffer.from(`sluice-user:${PASSWORD}`).toString('base64')}`,
    },
    { kind: 'bearer', auth: { type: 'bearer', token: TOKEN }, secret: TOKEN, headerName: 'authorization', expected: `Bearer ${TOKEN}` },
    { kind: 'header', auth: { type: 'header', name: 'X-Api-Key', value: API_KEY }, secret: API_KEY, headerName: 'x-api-key', expected: API_KEY },
  ])('$kind auth arrives as configured and is masked in the delivery log', async ({ auth, secret, headerName, expected }) => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, {
      url: `${receiver.url}/hook`,
      events: ['call.ended'],
      headers: { 'X-Team': 'ops', 'X-Tenant-Id': 'tenant-42' },
      auth,
    });
    const accepted = await postEvent(gw, 'call.ended');
    const deliveryId = deliveryFor(accepted, sub.id);
    const delivery = await waitForDelivery(gw, deliveryId);
    expect(delivery.status).toBe('delivered');

    const [req] = receiver.requests;
    expect(header(req.headers, headerName)).toBe(expected);
    expect(header(req.headers, 'x-team')).toBe('ops');
    expect(header(req.headers, 'x-tenant-id')).toBe('tenant-42');
    // Our own headers are still there beside the custom ones.
    expect(header(req.headers, 'webhook-id')).toBe(delivery.webhook_id);

    const [attempt] = delivery.attempts;
    const logged = Object.fromEntries(Object.entries(attempt.request.headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
    expect(logged[headerName]).toBe('********');
    expect(logged['x-team']).toBe('ops');
    expect(logged['x-tenant-id']).toBe('tenant-42');

    // Neither the secret nor its basic-auth encoding appears anywhere in the delivery's JSON.
    const json = JSON.stringify(await getDelivery(gw, deliveryId));
    expect(json).not.toContain(secret);
    expect(json).not.toContain(expected);
    const list = JSON.stringify((await gw.api('GET', `/api/v1/webhooks/${sub.id}/deliveries`)).body);
    expect(list).not.toContain(secret);
    // The subscription itself shows the auth masked.
    const shown = await gw.api('GET', `/api/v1/webhooks/${sub.id}`);
    expect(JSON.stringify(shown.body)).not.toContain(secret);
  });
});
