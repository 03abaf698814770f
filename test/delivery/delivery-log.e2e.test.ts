import { describe, expect, it } from 'vitest';
import { expectError } from '../support/error-shape.ts';
import type { TestGateway } from '../support/gateway.ts';
import { createSubscription, deliveryFor, eventFrom, gatewayForTest, header, postEvent, receiverForTest, uniqueEventId, waitForDelivery } from './delivery-helpers.ts';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function list(gw: TestGateway, subscriptionId: string, query = ''): Promise<{ data: Record<string, any>[]; next_cursor: string | null }> {
  const res = await gw.api('GET', `/api/v1/webhooks/${subscriptionId}/deliveries${query}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

/** Every page of the list, following next_cursor. */
async function listAll(gw: TestGateway, subscriptionId: string, limit: number, extra = ''): Promise<{ pages: Record<string, any>[][]; all: Record<string, any>[] }> {
  const pages: Record<string, any>[][] = [];
  let cursor: string | null = null;
  do {
    const page = await list(gw, subscriptionId, `?limit=${limit}${extra}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(page.data.length).toBeLessThanOrEqual(limit);
    pages.push(page.data);
    cursor = page.next_cursor;
    expect(pages.length, 'pagination terminates').toBeLessThan(50);
  } while (cursor);
  return { pages, all: pages.flat() };
}

describe('GET /api/v1/webhooks/{id}/deliveries', () => {
  it('lists newest first', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    const posted: string[] = [];
    for (let i = 0; i < 5; i++) {
      posted.push((await postEvent(gw)).id);
      await pause(3); // distinct milliseconds, so "newest" is well defined
    }
    const { data } = await list(gw, sub.id);
    expect(data.map((d) => d.event_id)).toEqual([...posted].reverse());
    const created = data.map((d) => Date.parse(d.created_at));
    expect([...created].sort((a, b) => b - a)).toEqual(created);
    expect(data[0]).toMatchObject({ subscription_id: sub.id, event: 'call.ended' });
    expect(data[0].id).toMatch(/^dlv_/);
    expect(data[0].webhook_id).toMatch(/^msg_/);
  });

  it('takes limit up to 100 and refuses anything else with 422', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    expect((await list(gw, sub.id, '?limit=100')).data).toEqual([]);
    await postEvent(gw);
    await postEvent(gw);
    const one = await list(gw, sub.id, '?limit=1');
    expect(one.data).toHaveLength(1);
    expect(one.next_cursor).toBe(one.data[0].id);
    for (const bad of ['101', '0', '-1', '2.5', 'ten']) {
      const res = await gw.api('GET', `/api/v1/webhooks/${sub.id}/deliveries?limit=${bad}`);
      expectError(res, 422);
      expect(res.body.error.message).toBe('Invalid limit.');
      expect(res.body.error.details).toEqual([{ path: 'query.limit', message: 'must be an integer from 1 to 100' }]);
    }
  });

  it('pages through everything with next_cursor, without duplicates or gaps', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    // One batch: every delivery is made in the same millisecond, which the cursor must survive.
    const events = Array.from({ length: 23 }, () => eventFrom('call.ended', uniqueEventId('page')));
    const res = await gw.api('POST', '/api/v1/events/batch', { events });
    expect(res.status).toBe(202);
    const expected = res.body.data.map((a: any) => deliveryFor(a, sub.id));

    const { pages, all } = await listAll(gw, sub.id, 10);
    expect(pages.map((p) => p.length)).toEqual([10, 10, 3]);
    const ids = all.map((d) => d.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids)).toEqual(new Set(expected));
    // Exactly one full page: no cursor pointing at an empty extra page.
    const even = await listAll(gw, sub.id, 23);
    expect(even.pages.map((p) => p.length)).toEqual([23]);
    expect(await list(gw, sub.id, '?limit=50')).toMatchObject({ next_cursor: null });
  });

  it('filters by status and by event, and pages within a filter', async () => {
    const gw = await gatewayForTest();
    // call.failed events are refused (400); call.ended accepted.
    const receiver = await receiverForTest((req) => (JSON.parse(req.body).event === 'call.failed' ? { status: 400 } : { status: 200 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended', 'call.failed'] });
    const ended: string[] = [];
    const failed: string[] = [];
    for (let i = 0; i < 4; i++) ended.push(deliveryFor(await postEvent(gw, 'call.ended'), sub.id));
    for (let i = 0; i < 3; i++) failed.push(deliveryFor(await postEvent(gw, 'call.failed'), sub.id));
    for (const id of [...ended, ...failed]) await waitForDelivery(gw, id);

    const byStatus = await listAll(gw, sub.id, 2, '&status=failed');
    expect(new Set(byStatus.all.map((d) => d.id))).toEqual(new Set(failed));
    expect(byStatus.all.every((d) => d.status === 'failed')).toBe(true);
    const delivered = (await list(gw, sub.id, '?status=delivered')).data;
    expect(new Set(delivered.map((d) => d.id))).toEqual(new Set(ended));

    const byEvent = await list(gw, sub.id, '?event=call.failed');
    expect(new Set(byEvent.data.map((d) => d.id))).toEqual(new Set(failed));
    expect((await list(gw, sub.id, '?event=call.failed&status=delivered')).data).toEqual([]);
    expect((await list(gw, sub.id, '?event=lead.created')).data).toEqual([]);

    const exploded = await gw.api('GET', `/api/v1/webhooks/${sub.id}/deliveries?status=exploded`);
    expectError(exploded, 422);
    expect(exploded.body.error.message).toBe('Invalid status.');
    expect(exploded.body.error.details).toEqual([{ path: 'query.status', message: 'must be one of pending, delivering, delivered, failed, cancelled' }]);
  });

  it('answers 404 for an unknown subscription', async () => {
    const gw = await gatewayForTest();
    expectError(await gw.api('GET', '/api/v1/webhooks/sub_does_not_exist/deliveries'), 404);
  });
});

describe('GET /api/v1/deliveries/{id}', () => {
  it('shows every attempt: request headers (masked) and body as sent, response code, headers, a 4 KB excerpt, latency, error', async () => {
    const gw = await gatewayForTest();
    const big = 'x'.repeat(10 * 1024);
    const receiver = await receiverForTest((_req, index) =>
      index === 0 ? { status: 503, headers: { 'x-receiver-trace': 'first' }, body: 'try later' } : { status: 200, headers: { 'x-receiver-trace': 'second' }, body: big },
    );
    const TOKEN = 'tok-delivery-log-secret-0123456789';
    const sub = await createSubscription(gw, {
      url: `${receiver.url}/hook?tenant=7`,
      events: ['call.ended'],
      headers: { 'X-Team': 'ops' },
      auth: { type: 'bearer', token: TOKEN },
      retry: { schedule: ['0s', '50ms'] },
    });
    const accepted = await postEvent(gw);
    const id = deliveryFor(accepted, sub.id);
    const delivery = await waitForDelivery(gw, id);

    expect(delivery).toMatchObject({ id, event_id: accepted.id, subscription_id: sub.id, event: 'call.ended', status: 'delivered', attempt_count: 2 });
    expect(delivery.payload).toMatchObject({ event: 'call.ended', id: accepted.id });
    expect(delivery.attempts).toHaveLength(2);
    const [first, second] = delivery.attempts;

    for (const [i, attempt] of delivery.attempts.entries()) {
      const sent = receiver.requests[i];
      expect(attempt.request.method).toBe('POST');
      expect(attempt.request.url).toBe(`${receiver.url}/hook?tenant=7`);
      expect(attempt.request.body).toBe(sent.body);
      const headers = Object.fromEntries(Object.entries(attempt.request.headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
      expect(headers.authorization).toBe('********');
      expect(headers['x-team']).toBe('ops');
      for (const name of ['webhook-id', 'webhook-timestamp', 'x-webhook-event', 'x-webhook-delivery']) {
        expect(headers[name], name).toBe(header(sent.headers, name));
      }
      // A signature is a credential for its body: with the body beside it, a read key could replay it.
      for (const name of ['webhook-signature', 'x-webhook-signature']) {
        expect(headers[name], name).toBe('********');
        expect(JSON.stringify(delivery)).not.toContain(header(sent.headers, name));
      }
      expect(attempt.latency_ms).toEqual(expect.any(Number));
      expect(attempt.latency_ms).toBeGreaterThanOrEqual(0);
      expect(Date.parse(attempt.started_at)).not.toBeNaN();
    }

    expect(first).toMatchObject({ number: 1, outcome: 'retry', response: { status: 503, body: 'try later' } });
    expect(first.response.headers['x-receiver-trace']).toBe('first');
    expect(first.error).toMatch(/503/);

    expect(second).toMatchObject({ number: 2, outcome: 'success', error: null, response: { status: 200 } });
    expect(second.response.headers['x-receiver-trace']).toBe('second');
    expect(second.response.body).toBe(big.slice(0, 4096));
    expect(JSON.stringify(delivery)).not.toContain(TOKEN);
  });

  it('answers 404 for an unknown delivery, naming it, whether read, replayed or skipped', async () => {
    const gw = await gatewayForTest();
    for (const [method, route] of [['GET', ''], ['POST', '/replay'], ['POST', '/skip']]) {
      const res = await gw.api(method, `/api/v1/deliveries/dlv_does_not_exist${route}`);
      expectError(res, 404, 'not_found');
      expect(res.body.error.message).toBe('Delivery dlv_does_not_exist was not found.');
    }
  });
});

describe('POST /api/v1/deliveries/{id}/skip', () => {
  it('refuses (409 not_blocking) a delivery that blocks no key, and says why at path:id', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const plain = await createSubscription(gw, { url: `${receiver.url}/plain`, events: ['call.ended'] });
    const ordered = await createSubscription(gw, { url: `${receiver.url}/ordered`, events: ['signal.*'], ordering: { key: 'data.conversation_id', on_failure: 'block' } });
    const unorderedId = await waitForDelivery(gw, deliveryFor(await postEvent(gw), plain.id));
    const base = eventFrom('signal.frustration_spike');
    const signal = { ...base, data: { ...base.data, conversation_id: 'conv_skip' } };
    const posted = await gw.api('POST', '/api/v1/events', signal);
    expect(posted.status, JSON.stringify(posted.body)).toBe(202);
    const orderedId = await waitForDelivery(gw, deliveryFor(posted.body, ordered.id));
    expect(orderedId.status).toBe('delivered');

    const message = 'This delivery does not block its ordering key: only a failed delivery of a subscription with ordering.on_failure "block" can be skipped.';
    const unordered = await gw.api('POST', `/api/v1/deliveries/${unorderedId.id}/skip`);
    expectError(unordered, 409, 'not_blocking');
    expect(unordered.body.error.message).toBe(message);
    expect(unordered.body.error.details).toEqual([{ path: 'path:id', message: 'is not an ordered delivery' }]);
    const delivered = await gw.api('POST', `/api/v1/deliveries/${orderedId.id}/skip`);
    expectError(delivered, 409, 'not_blocking');
    expect(delivered.body.error.message).toBe(message);
    expect(delivered.body.error.details).toEqual([{ path: 'path:id', message: 'is delivered and does not block key "conv_skip"' }]);
  });
});

describe('POST /api/v1/webhooks/{id}/test', () => {
  it('sends a sample event marked "test": true and returns the attempt synchronously', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest(() => ({ status: 202, body: 'received the test' }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.*'] });
    const res = await gw.api('POST', `/api/v1/webhooks/${sub.id}/test`, {});
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    // Synchronous: the receiver already has it when the answer comes.
    expect(receiver.requests).toHaveLength(1);
    const sent = JSON.parse(receiver.requests[0].body);
    expect(sent.test).toBe(true);
    expect(sent.event).toMatch(/^call\./);
    expect(sent.data).toBeTypeOf('object');

    expect(res.body).toMatchObject({ event: sent.event, event_id: sent.id, status: 'delivered' });
    expect(res.body.delivery_id).toMatch(/^dlv_/);
    expect(res.body.attempt).toMatchObject({ outcome: 'success', response: { status: 202, body: 'received the test' } });
    expect(res.body.attempt.latency_ms).toEqual(expect.any(Number));

    // It is signed like any delivery and logged like one.
    expect(header(receiver.requests[0].headers, 'x-webhook-delivery')).toBe(res.body.delivery_id);
    const logged = await waitForDelivery(gw, res.body.delivery_id);
    expect(logged.payload.test).toBe(true);
  });

  it('sends the requested event type, and reports a failing receiver in the attempt', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest(() => ({ status: 500, body: 'kaput' }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended', 'call.failed'], retry: { schedule: ['0s'] } });
    const res = await gw.api('POST', `/api/v1/webhooks/${sub.id}/test`, { event: 'call.failed' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.event).toBe('call.failed');
    expect(res.body.status).toBe('failed');
    expect(res.body.attempt).toMatchObject({ response: { status: 500, body: 'kaput' } });
    expect(res.body.attempt.error).toMatch(/500/);
    expect(JSON.parse(receiver.requests[0].body)).toMatchObject({ event: 'call.failed', test: true });
  });

  it('is neither paced by rate_limit nor retried on the default schedule', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest(() => ({ status: 503, body: 'down' }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], rate_limit: 0.01 });
    const first = await gw.api('POST', `/api/v1/webhooks/${sub.id}/test`, {});
    const second = await gw.api('POST', `/api/v1/webhooks/${sub.id}/test`, {});
    for (const res of [first, second]) {
      expect(res.body.status).toBe('failed');
      expect(res.body.attempt.error).toBe('HTTP 503 (test sends are not retried)');
    }
    const logged = await waitForDelivery(gw, second.body.delivery_id);
    expect(logged.attempts).toHaveLength(1);
    expect(logged.next_attempt_at).toBeNull();
    expect(receiver.requests).toHaveLength(2);
  });

  it('refuses an event type the subscription does not receive (422) and unknown subscriptions (404)', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    const res = await gw.api('POST', `/api/v1/webhooks/${sub.id}/test`, { event: 'lead.created' });
    expectError(res, 422);
    expect(res.body.error.message).toBe('No sample event matches.');
    expect(res.body.error.details).toEqual([{ path: '$.event', message: '"lead.created" is not an event type this subscription receives' }]);
    const notAName = await gw.api('POST', `/api/v1/webhooks/${sub.id}/test`, { event: 5 });
    expectError(notAName, 422);
    expect(notAName.body.error.message).toBe('Invalid test request.');
    expect(notAName.body.error.details).toEqual([{ path: '$.event', message: 'must be an event type name' }]);
    expectError(await gw.api('POST', '/api/v1/webhooks/sub_does_not_exist/test', {}), 404);
    expect(receiver.requests).toHaveLength(0);
  });
});
