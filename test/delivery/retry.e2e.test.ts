import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/gateway.ts';
import { expectError } from '../support/error-shape.ts';
import {
  closedPort,
  sentinelArrives,
  createSubscription,
  deliveryFor,
  gatewayForTest,
  getDelivery,
  header,
  postEvent,
  receiverForTest,
  waitForDelivery,
} from './delivery-helpers.ts';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retries in milliseconds: the real backoff curve is tested in test/core/backoff.test.ts. */
const FAST = { schedule: ['0s', '50ms', '50ms'] };

describe('status classes', () => {
  it.each([200, 201, 202, 204])('%i is delivered on the first attempt', async (status) => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest(() => ({ status, body: status === 204 ? '' : 'thanks' }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: FAST });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id);
    expect(delivery).toMatchObject({ status: 'delivered', attempt_count: 1, last_status_code: status, next_attempt_at: null });
    expect(delivery.attempts).toHaveLength(1);
    expect(delivery.attempts[0]).toMatchObject({ outcome: 'success', error: null, response: { status } });
    expect(receiver.requests).toHaveLength(1);
  });

  it.each([500, 502, 503, 408, 429])('%i is retried, then delivered once the receiver answers 200', async (status) => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest((_req, index) => (index === 0 ? { status } : { status: 200 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: FAST });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id);
    expect(delivery.status).toBe('delivered');
    expect(delivery.attempts.map((a: any) => [a.number, a.outcome, a.response?.status])).toEqual([
      [1, 'retry', status],
      [2, 'success', 200],
    ]);
    expect(delivery.attempts[0].error).toContain(String(status));
    expect(receiver.requests).toHaveLength(2);
  });

  it.each([400, 401, 403, 404, 422])('%i fails at once, with one attempt', async (status) => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest(() => ({ status, body: 'nope' }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: FAST });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id);
    expect(delivery).toMatchObject({ status: 'failed', attempt_count: 1, last_status_code: status, next_attempt_at: null });
    expect(delivery.attempts).toHaveLength(1);
    expect(delivery.attempts[0]).toMatchObject({ outcome: 'fail', response: { status, body: 'nope' } });
    expect(delivery.attempts[0].error).toEqual(expect.stringContaining(String(status)));
    // A later delivery, due after the whole schedule, has arrived: nothing more was sent.
    await sentinelArrives(gw, receiver);
    expect(receiver.requests.filter((r) => r.url === '/hook')).toHaveLength(1);
    expect((await getDelivery(gw, id)).attempts).toHaveLength(1);
  });

  it.each([301, 302, 307, 308])('a %i redirect is not followed and fails the delivery', async (status) => {
    const gw = await gatewayForTest();
    const target = await receiverForTest();
    const receiver = await receiverForTest(() => ({ status, headers: { location: `${target.url}/moved` } }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: FAST });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id);
    expect(delivery.status).toBe('failed');
    expect(delivery.attempts).toHaveLength(1);
    // The attempt keeps the redirect and where it pointed, so the user can fix the URL.
    expect(delivery.attempts[0].response.status).toBe(status);
    expect(delivery.attempts[0].response.headers.location).toBe(`${target.url}/moved`);
    await sentinelArrives(gw, receiver);
    expect(receiver.requests.filter((r) => r.url === '/hook')).toHaveLength(1);
    expect(target.requests).toHaveLength(0);
  });
});

describe('410 Gone', () => {
  it('disables the subscription; later events create no deliveries for it; sluice.webhook.disabled is emitted', async () => {
    const gw = await gatewayForTest();
    const gone = await receiverForTest(() => ({ status: 410 }));
    const ops = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${gone.url}/hook`, events: ['call.ended'], retry: FAST });
    const watcher = await createSubscription(gw, { url: `${ops.url}/ops`, events: ['sluice.*'] });

    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id);
    expect(delivery.status).toBe('failed');
    expect(delivery.attempts).toHaveLength(1);
    expect(delivery.attempts[0].response.status).toBe(410);

    const shown = await waitFor(async () => {
      const res = await gw.api('GET', `/api/v1/webhooks/${sub.id}`);
      return res.body.enabled === false ? res.body : undefined;
    }, 5_000, 'the subscription to be disabled');
    expect(shown.disabled_reason).toEqual(expect.stringContaining('410'));

    // Later events skip it entirely.
    const later = await postEvent(gw);
    expect(later.deliveries.map((d) => d.subscription_id)).not.toContain(sub.id);
    const listed = await gw.api('GET', `/api/v1/webhooks/${sub.id}/deliveries`);
    expect(listed.body.data.map((d: any) => d.id)).toEqual([id]);

    const disabled = await waitFor(
      () => ops.requests.map((r) => JSON.parse(r.body)).find((e) => e.event === 'sluice.webhook.disabled'),
      5_000,
      'sluice.webhook.disabled',
    );
    expect(disabled.data).toMatchObject({ subscription_id: sub.id });
    expect(disabled.data.reason).toBe('gone');
    expect(disabled.data.message).toEqual(expect.stringContaining('410'));
    expect(gone.requests).toHaveLength(1);
    expect(watcher.enabled).toBe(true);
  });
});

describe('Retry-After', () => {
  it('is honoured over a shorter schedule', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest((_req, index) => (index === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: FAST });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id);
    expect(delivery.status).toBe('delivered');
    expect(receiver.requests).toHaveLength(2);
    const gap = receiver.requests[1].at - receiver.requests[0].at;
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(delivery.attempts[0].response.headers['retry-after']).toBe('1');
  });

  it('as an HTTP date, also delays the next attempt', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest((_req, index) =>
      index === 0 ? { status: 503, headers: { 'retry-after': new Date(Date.now() + 2_000).toUTCString() } } : { status: 200 },
    );
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: FAST });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id);
    expect(delivery.status).toBe('delivered');
    // The date has second precision: at least ~1 s of the 2 s remains.
    expect(receiver.requests[1].at - receiver.requests[0].at).toBeGreaterThanOrEqual(950);
  });
});

describe('network errors and timeouts', () => {
  it('a refused connection is retried, each attempt recorded with the error', async () => {
    const gw = await gatewayForTest();
    const port = await closedPort();
    const sub = await createSubscription(gw, { url: `http://127.0.0.1:${port}/hook`, events: ['call.ended'], retry: FAST });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id);
    expect(delivery.status).toBe('failed');
    expect(delivery.attempts).toHaveLength(3);
    for (const attempt of delivery.attempts) {
      expect(attempt.response).toBeNull();
      expect(attempt.error).toMatch(/ECONNREFUSED/);
    }
    expect(delivery.attempts.map((a: any) => a.outcome)).toEqual(['retry', 'retry', 'fail']);
    expect(delivery.last_status_code).toBeNull();
    expect(delivery.last_error).toMatch(/ECONNREFUSED/);
  });

  it('a receiver slower than the subscription timeout is retried; the attempt records the timeout', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest((_req, index) => (index === 0 ? { status: 200, delayMs: 5_000 } : { status: 200 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: FAST, timeout: 0.2 });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id);
    expect(delivery.status).toBe('delivered');
    expect(delivery.attempts).toHaveLength(2);
    const [timedOut, ok] = delivery.attempts;
    expect(timedOut.outcome).toBe('retry');
    expect(timedOut.response).toBeNull();
    expect(timedOut.error).toMatch(/timed out/i);
    // It gave up at the 200 ms timeout, not after the receiver's 5 s (a loaded machine may add a few hundred ms).
    expect(timedOut.latency_ms).toBeGreaterThanOrEqual(150);
    expect(timedOut.latency_ms).toBeLessThan(3_000);
    expect(ok).toMatchObject({ outcome: 'success', response: { status: 200 } });
  });
});

describe('exhaustion and schedules', () => {
  it('runs out of attempts into failed, keeping every attempt', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest((_req, index) => ({ status: 500, body: `boom ${index}` }));
    const schedule = ['0s', '50ms', '50ms', '50ms'];
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule } });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id);
    expect(delivery).toMatchObject({ status: 'failed', attempt_count: schedule.length, last_status_code: 500, next_attempt_at: null });
    expect(delivery.attempts).toHaveLength(schedule.length);
    delivery.attempts.forEach((attempt: any, i: number) => {
      expect(attempt.number).toBe(i + 1);
      expect(attempt.chain).toBe(1);
      expect(attempt.response).toMatchObject({ status: 500, body: `boom ${i}` });
      expect(attempt.error).toEqual(expect.any(String));
    });
    expect(delivery.attempts.map((a: any) => a.outcome)).toEqual(['retry', 'retry', 'retry', 'fail']);
    // The attempt's own error, then why there is no next one.
    expect(delivery.last_error).toBe('HTTP 500 (gave up after 4 attempts)');
    await sentinelArrives(gw, receiver);
    expect(receiver.requests.filter((r) => r.url === '/hook')).toHaveLength(schedule.length);
  });

  it('max_attempts: 1 stops after the first attempt', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest(() => ({ status: 503 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { max_attempts: 1 } });
    expect(sub.retry).toEqual({ max_attempts: 1 });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id);
    expect(delivery).toMatchObject({ status: 'failed', attempt_count: 1, next_attempt_at: null });
    expect(delivery.attempts).toHaveLength(1);
    expect(receiver.requests).toHaveLength(1);
  });

  it('max_attempts on the default curve waits about 30 s before the 2nd attempt', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest(() => ({ status: 503 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { max_attempts: 3 } });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id, (d) => d.attempt_count === 1 && d.status === 'pending');
    const wait = Date.parse(delivery.next_attempt_at) - Date.parse(delivery.last_attempt_at);
    expect(wait).toBeGreaterThanOrEqual(24_000 - 50);
    expect(wait).toBeLessThanOrEqual(36_000 + 1_000);
  });

  it('accepts the Aloro-style schedule and schedules the 2nd attempt about a minute later', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest(() => ({ status: 500 }));
    const schedule = ['0s', '1m', '5m', '15m', '1h'];
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule } });
    expect(sub.retry).toEqual({ schedule });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id, (d) => d.attempt_count === 1 && d.status === 'pending');
    expect(delivery.attempts).toHaveLength(1);
    const wait = Date.parse(delivery.next_attempt_at) - Date.parse(delivery.last_attempt_at);
    // One minute, ±20% jitter.
    expect(wait).toBeGreaterThanOrEqual(48_000 - 50);
    expect(wait).toBeLessThanOrEqual(72_000 + 1_000);
    expect(receiver.requests).toHaveLength(1);
  });
});

describe('replay', () => {
  it('refuses, with a 409 that says why, a delivery on the wire and one whose subscription was deleted; replays once the attempt finished', async () => {
    const gw = await gatewayForTest();
    let release: () => void = () => undefined;
    const receiver = await receiverForTest((_req, index) => (index === 0 ? { status: 200, until: new Promise<void>((resolve) => (release = resolve)) } : { status: 200 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    const id = deliveryFor(await postEvent(gw), sub.id);
    await waitFor(() => receiver.requests.length === 1, 5_000, 'the held attempt');

    const onTheWire = await gw.api('POST', `/api/v1/deliveries/${id}/replay`);
    expect(onTheWire.status).toBe(409);
    expect(onTheWire.body.error.code).toBe('delivery_in_flight');
    expect(onTheWire.body.error.message).toMatch(/being attempted right now/);
    release();
    expect((await waitForDelivery(gw, id)).status).toBe('delivered');
    expect((await gw.api('POST', `/api/v1/deliveries/${id}/replay`)).status).toBe(202);
    expect((await waitForDelivery(gw, id, (d) => d.status === 'delivered' && d.chain === 2)).attempts).toHaveLength(2);

    expect((await gw.api('DELETE', `/api/v1/webhooks/${sub.id}`)).status).toBe(200);
    const orphan = await gw.api('POST', `/api/v1/deliveries/${id}/replay`);
    expect(orphan.status).toBe(409);
    expect(orphan.body.error.code).toBe('subscription_deleted');
    expect(orphan.body.error.message).toMatch(/was deleted; it cannot be replayed/);
  });

  it('delivers a failed delivery again as a new chain once the receiver recovers', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest(() => ({ status: 500 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule: ['0s', '50ms'] } });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const failed = await waitForDelivery(gw, id);
    expect(failed.status).toBe('failed');
    expect(failed.attempts).toHaveLength(2);

    receiver.respondWith(() => ({ status: 200 }));
    const replay = await gw.api('POST', `/api/v1/deliveries/${id}/replay`);
    expect(replay.status, JSON.stringify(replay.body)).toBe(202);
    expect(replay.body).toMatchObject({ id, chain: 2 });

    const delivered = await waitForDelivery(gw, id, (d) => d.status === 'delivered');
    expect(delivered).toMatchObject({ chain: 2, attempt_count: 1, last_status_code: 200 });
    // Both chains are kept.
    expect(delivered.attempts.map((a: any) => [a.chain, a.number, a.outcome, a.response?.status])).toEqual([
      [1, 1, 'retry', 500],
      [1, 2, 'fail', 500],
      [2, 1, 'success', 200],
    ]);
    // The replay is the same message: receivers deduplicating on webhook-id see it as one.
    expect(new Set(receiver.requests.map((r) => header(r.headers, 'webhook-id')))).toEqual(new Set([failed.webhook_id]));
    expect(receiver.requests).toHaveLength(3);
  });

  it('bulk replay queues at most SLUICE_REPLAY_LIMIT per call and gives a cursor to continue', async () => {
    const gw = await gatewayForTest({ SLUICE_REPLAY_LIMIT: '3' });
    const receiver = await receiverForTest(() => ({ status: 400 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: FAST });
    const failedIds: string[] = [];
    for (let i = 0; i < 7; i++) failedIds.push(deliveryFor(await postEvent(gw), sub.id));
    for (const id of failedIds) expect((await waitForDelivery(gw, id)).status).toBe('failed');

    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const res = await gw.api('POST', `/api/v1/webhooks/${sub.id}/replay`, { status: 'failed', ...(cursor ? { cursor } : {}) });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      expect(res.body.replayed).toBe(res.body.delivery_ids.length);
      pages.push(res.body.delivery_ids);
      cursor = res.body.next_cursor ?? undefined;
    } while (cursor && pages.length < 10);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat().sort()).toEqual([...failedIds].sort());
    expectError(await gw.api('POST', `/api/v1/webhooks/${sub.id}/replay`, { cursor: 'not a cursor' }), 422);
  });

  it('bulk replay with {status: "failed"} replays only the failed deliveries', async () => {
    const gw = await gatewayForTest();
    let healthy = false;
    // Rejects every event but the one marked "ok" until it recovers.
    const receiver = await receiverForTest((req) => (healthy || req.body.includes('"evt_bulk_ok') ? { status: 200 } : { status: 400 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: FAST });
    const failedIds = [
      deliveryFor(await postEvent(gw, 'call.ended', `evt_bulk_bad_1_${Date.now()}`), sub.id),
      deliveryFor(await postEvent(gw, 'call.ended', `evt_bulk_bad_2_${Date.now()}`), sub.id),
    ];
    const okId = deliveryFor(await postEvent(gw, 'call.ended', `evt_bulk_ok_${Date.now()}`), sub.id);
    for (const id of failedIds) expect((await waitForDelivery(gw, id)).status).toBe('failed');
    expect((await waitForDelivery(gw, okId)).status).toBe('delivered');

    healthy = true;
    const res = await gw.api('POST', `/api/v1/webhooks/${sub.id}/replay`, { status: 'failed' });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.replayed).toBe(2);
    expect([...res.body.delivery_ids].sort()).toEqual([...failedIds].sort());
    // Unordered deliveries are replayed in place: none is replayed as a new one.
    expect(res.body.replayed_as_new).toEqual({});

    for (const id of failedIds) {
      const d = await waitForDelivery(gw, id, (x) => x.status === 'delivered');
      expect(d.chain).toBe(2);
      expect(d.attempts.map((a: any) => [a.chain, a.response?.status])).toEqual([
        [1, 400],
        [2, 200],
      ]);
    }
    const untouched = await getDelivery(gw, okId);
    expect(untouched).toMatchObject({ status: 'delivered', chain: 1 });
    expect(untouched.attempts).toHaveLength(1);
    expect(receiver.requests).toHaveLength(5);
  });

  it('bulk replay picks by creation time (ISO-8601 or unix seconds) and by event, and says where a request is wrong', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest(() => ({ status: 400 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended', 'call.failed'], retry: FAST });
    const failedAgain = (id: string, chain: number) => waitForDelivery(gw, id, (d) => d.status === 'failed' && d.chain === chain);
    const early = deliveryFor(await postEvent(gw, 'call.ended'), sub.id);
    await failedAgain(early, 1);
    // Distinct milliseconds on either side of the boundary.
    await pause(5);
    const boundary = Date.now();
    await pause(5);
    const late = deliveryFor(await postEvent(gw, 'call.failed'), sub.id);
    await failedAgain(late, 1);
    const replay = async (body: unknown) => {
      const res = await gw.api('POST', `/api/v1/webhooks/${sub.id}/replay`, body);
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      return res.body.delivery_ids;
    };

    expect(await replay({ since: new Date(boundary).toISOString() })).toEqual([late]);
    await failedAgain(late, 2);
    expect(await replay({ until: boundary / 1000 })).toEqual([early]);
    await failedAgain(early, 2);
    expect(await replay({ since: '', until: null, event: 'call.failed', status: '' })).toEqual([late]);
    await failedAgain(late, 3);

    const refused = async (body: unknown, message: string, details: unknown[]) => {
      const res = await gw.api('POST', `/api/v1/webhooks/${sub.id}/replay`, body);
      expectError(res, 422);
      expect(res.body.error.message, JSON.stringify(body)).toBe(message);
      expect(res.body.error.details).toEqual(details);
    };
    await refused({ since: 'yesterday' }, 'Invalid time.', [{ path: '$.since', message: 'must be an ISO-8601 date-time or unix seconds' }]);
    await refused({ until: 'soon' }, 'Invalid time.', [{ path: '$.until', message: 'must be an ISO-8601 date-time or unix seconds' }]);
    await refused({ status: 'exploded' }, 'Invalid status.', [{ path: '$.status', message: 'must be one of pending, delivering, delivered, failed, cancelled' }]);
    // Any JSON value but an object is refused whole: a number has no fields to refuse one by one.
    for (const body of [[], 5, true]) await refused(body, 'Invalid replay request.', [{ path: '$', message: 'must be a JSON object' }]);
    await refused({ bogus: 1, since: 0 }, 'Invalid replay request.', [{ path: '$.bogus', message: 'is not a known field (status, since, until, event, cursor)' }]);
    for (const cursor of ['not a cursor', 5, 'dlv_', 'xdlv_abc', 'dlv_abc!']) {
      await refused({ cursor }, 'Invalid replay request.', [{ path: '$.cursor', message: 'must be the next_cursor of a previous replay answer' }]);
    }
    // A 400 is final: one request per chain, five chains.
    expect(receiver.requests).toHaveLength(5);
  });

  it('answers 404 for an unknown delivery and 422 for an unknown status filter', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    expect((await gw.api('POST', '/api/v1/deliveries/dlv_nope/replay')).status).toBe(404);
    expect((await gw.api('POST', '/api/v1/webhooks/sub_nope/replay', { status: 'failed' })).status).toBe(404);
    expect((await gw.api('POST', `/api/v1/webhooks/${sub.id}/replay`, { status: 'exploded' })).status).toBe(422);
  });
});

describe('operational events', () => {
  it('sluice.delivery.failed reaches a sluice.* subscription, and never a * subscription', async () => {
    const gw = await gatewayForTest();
    const broken = await receiverForTest(() => ({ status: 400 }));
    const ops = await receiverForTest();
    const everything = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${broken.url}/hook`, events: ['call.ended'], retry: FAST });
    const watcher = await createSubscription(gw, { url: `${ops.url}/ops`, events: ['sluice.*'] });
    const catchAll = await createSubscription(gw, { url: `${everything.url}/all`, events: ['*'] });

    const accepted = await postEvent(gw);
    const id = deliveryFor(accepted, sub.id);
    deliveryFor(accepted, catchAll.id);
    expect(accepted.deliveries.map((d) => d.subscription_id)).not.toContain(watcher.id);
    expect((await waitForDelivery(gw, id)).status).toBe('failed');

    const failed = await waitFor(
      () => ops.requests.map((r) => JSON.parse(r.body)).find((e) => e.event === 'sluice.delivery.failed'),
      5_000,
      'sluice.delivery.failed',
    );
    expect(failed.data).toMatchObject({ delivery_id: id, subscription_id: sub.id, event_id: accepted.id, event: 'call.ended', attempts: 1, last_status_code: 400 });
    expect(ops.requests.every((r) => header(r.headers, 'x-webhook-event').startsWith('sluice.'))).toBe(true);

    // The operational event is stored with its deliveries in one transaction, so the catch-all's
    // delivery list is final by now: only the platform's own event.
    const listed = await gw.api('GET', `/api/v1/webhooks/${catchAll.id}/deliveries`);
    expect(listed.body.data.map((d: any) => d.event)).toEqual(['call.ended']);
    await waitFor(() => everything.requests.length >= 1, 5_000, 'the catch-all delivery');
    // A later event reaches the catch-all (the sentinel): a stray sluice.* delivery would have too.
    await sentinelArrives(gw, everything);
    expect(everything.requests.filter((r) => r.url === '/all').map((r) => JSON.parse(r.body).event).filter((e) => e !== 'lead.created')).toEqual(['call.ended']);

    // Only a delivery that failed for good is reported, not the catch-all's successes: a second
    // failure, reported after them, is the signal that nothing else was.
    const second = deliveryFor(await postEvent(gw), sub.id);
    await waitFor(() => ops.requests.some((r) => JSON.parse(r.body).data.delivery_id === second), 5_000, 'the second sluice.delivery.failed');
    expect(ops.requests.map((r) => JSON.parse(r.body)).map((e) => [e.event, e.data.delivery_id])).toEqual([
      ['sluice.delivery.failed', id],
      ['sluice.delivery.failed', second],
    ]);
  });

  it('a failed delivery of an operational event, or of a test send, raises no sluice.delivery.failed: no feedback loop', async () => {
    const gw = await gatewayForTest();
    const broken = await receiverForTest(() => ({ status: 400 }));
    const sub = await createSubscription(gw, { url: `${broken.url}/hook`, events: ['call.ended'], retry: FAST });
    // The watcher's destination fails too: its deliveries of the operational events fail for good.
    const watcher = await createSubscription(gw, { url: `${broken.url}/ops`, events: ['sluice.*'], retry: FAST });
    const watched = async () => (await gw.api('GET', `/api/v1/webhooks/${watcher.id}/deliveries`)).body.data as { id: string; status: string }[];
    expect((await gw.api('POST', `/api/v1/webhooks/${sub.id}/test`, {})).status).toBe(200);
    const first = deliveryFor(await postEvent(gw), sub.id);
    expect((await waitForDelivery(gw, first)).status).toBe('failed');
    await waitFor(async () => (await watched()).some((d) => d.status === 'failed'), 10_000, "the watcher's first delivery to fail");
    // A second failure reported after that one (the sentinel): an event raised for the watcher's
    // own failed delivery, or for the test send, would have been stored before it.
    const second = deliveryFor(await postEvent(gw), sub.id);
    await waitFor(async () => (await watched()).filter((d) => d.status === 'failed').length >= 2, 10_000, "the watcher's second delivery to fail");
    // What each of the watcher's deliveries carried (its attempt's request body).
    const raised = await Promise.all((await watched()).map(async (d) => JSON.parse((await getDelivery(gw, d.id)).attempts[0].request.body)));
    expect(raised.map((e) => [e.event, e.data.delivery_id]).sort()).toEqual([['sluice.delivery.failed', first], ['sluice.delivery.failed', second]].sort());
  });
});

describe('no success for too long', () => {
  it('disables a subscription that keeps failing past SLUICE_DISABLE_AFTER_DAYS', async () => {
    // 0.00001 days is about 0.86 s.
    const gw = await gatewayForTest({ SLUICE_DISABLE_AFTER_DAYS: '0.00001' });
    const receiver = await receiverForTest(() => ({ status: 503 }));
    const ops = await receiverForTest();
    const schedule = ['0s', ...Array.from({ length: 40 }, () => '100ms')];
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule } });
    await createSubscription(gw, { url: `${ops.url}/ops`, events: ['sluice.webhook.disabled'] });
    const id = deliveryFor(await postEvent(gw), sub.id);

    const shown = await waitFor(async () => {
      const res = await gw.api('GET', `/api/v1/webhooks/${sub.id}`);
      return res.body.enabled === false ? res.body : undefined;
    }, 10_000, 'the subscription to be disabled');
    expect(shown.disabled_reason).toBe('no successful delivery for 0.9 seconds');
    // Disabling pauses: the delivery keeps its place, pending, until the subscription is enabled.
    const delivery = await waitForDelivery(gw, id, (d) => d.paused === true);
    expect(delivery.status).toBe('pending');
    // Disabled after about a second of failures, long before the 40 retries ran out.
    expect(delivery.attempts.length).toBeGreaterThanOrEqual(2);
    expect(delivery.attempts.length).toBeLessThan(schedule.length);
    const attemptsAtDisable = receiver.requests.length;
    // Its retries were due every 100 ms: a later delivery to the same receiver arriving shows
    // the worker claimed past them, and the paused delivery was not among what it sent.
    await sentinelArrives(gw, receiver);
    expect(receiver.requests.filter((r) => r.url === '/hook').length).toBe(attemptsAtDisable);

    const disabled = await waitFor(
      () => ops.requests.map((r) => JSON.parse(r.body)).find((e) => e.event === 'sluice.webhook.disabled'),
      5_000,
      'sluice.webhook.disabled',
    );
    expect(disabled.data).toMatchObject({ subscription_id: sub.id });
    expect(disabled.data.reason).toBe('failing');
    expect(disabled.data.message).toBe('no successful delivery for 0.9 seconds');
  }, 20_000);

  it('a success that ends a failing run longer than the limit keeps the subscription enabled', async () => {
    // The first attempt fails; the retry is due after the 0.86 s limit and succeeds. Only a
    // failure past the limit disables; the success clears the run.
    const gw = await gatewayForTest({ SLUICE_DISABLE_AFTER_DAYS: '0.00001' });
    const receiver = await receiverForTest((_req, index) => ({ status: index === 0 ? 503 : 200 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule: ['0s', '1500ms'] } });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id, (d) => d.status === 'delivered');
    expect(delivery.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['retry', 'success']);
    const shown = (await gw.api('GET', `/api/v1/webhooks/${sub.id}`)).body;
    expect(shown).toMatchObject({ enabled: true, disabled_reason: null });
  }, 20_000);
});
