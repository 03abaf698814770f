/**
 * Delivery on its own thread (SLUICE_DELIVERY_THREAD, the default outside the in-process test
 * gateways): every path between the HTTP thread and the delivery thread, each through the real
 * gateway wiring — hand-off of new deliveries, test sends answered across threads, operational
 * events raised there and recorded by ingest here, subscription changes both ways, and the
 * delivery thread's measurements in /metrics.
 */
import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { startGateway, waitFor } from '../support/gateway.ts';
import type { DeliveryThread } from '../../src/delivery/delivery-thread-host.ts';
import { createSubscription, deliveryFor, gatewayForTest, header, postEvent, receiverForTest, waitForDelivery } from './delivery-helpers.ts';

const THREAD = { SLUICE_DELIVERY_THREAD: 'true' };

/** One sample of a Prometheus counter or histogram series from /metrics text. */
function sample(metrics: string, series: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe('delivery on its own thread', () => {
  it('delivers what ingest commits, signed, and /metrics counts the attempts and the thread\'s storage calls', async () => {
    const gw = await gatewayForTest(THREAD);
    // The worker is not in this thread.
    expect(gw.sluice.worker).toBeUndefined();
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(deliveryFor(await postEvent(gw), sub.id));
    for (const id of ids) expect(await waitForDelivery(gw, id)).toMatchObject({ status: 'delivered' });
    expect(receiver.requests).toHaveLength(5);
    const request = receiver.requests[0];
    const signed = new Webhook(sub.signing_secret).verify(request.body, {
      'webhook-id': header(request.headers, 'webhook-id'),
      'webhook-timestamp': header(request.headers, 'webhook-timestamp'),
      'webhook-signature': header(request.headers, 'webhook-signature'),
    });
    expect(signed).toMatchObject({ event: 'call.ended' });

    // Reported ten times a second by the delivery thread, merged with this thread's metrics.
    const metrics = await waitFor(async () => {
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      // Completions are written in batches after the attempts: their storage calls may be reported a tick later.
      const complete = sample(text, 'sluice_delivery_attempts_total{outcome="success"}') === 5 && sample(text, 'sluice_storage_call_seconds_count{method="completeAttempts"}') > 0;
      return complete ? text : undefined;
    }, 5_000, 'five successful attempts and their completions in /metrics');
    expect(sample(metrics, 'sluice_delivery_attempt_seconds_count')).toBe(5);
    expect(sample(metrics, 'sluice_storage_call_seconds_count{method="completeAttempts"}')).toBeGreaterThan(0);
    expect(sample(metrics, 'sluice_storage_call_seconds_count{method="ingest"}')).toBeGreaterThan(0);
    expect(sample(metrics, 'sluice_deliveries_in_flight')).toBe(0);
    // Each thread's own CPU time, read by its kernel thread id.
    for (const thread of ['http', 'delivery', 'storage']) expect(sample(metrics, `sluice_thread_cpu_seconds{thread="${thread}"}`), thread).toBeGreaterThan(0);
  });

  it('answers a test send with the attempt the delivery thread made', async () => {
    const gw = await gatewayForTest(THREAD);
    const receiver = await receiverForTest(() => ({ status: 202, body: 'received the test' }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.*'] });
    const res = await gw.api('POST', `/api/v1/webhooks/${sub.id}/test`, {});
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(receiver.requests).toHaveLength(1);
    expect(res.body).toMatchObject({ status: 'delivered', attempt: { outcome: 'success', response: { status: 202, body: 'received the test' } } });
  });

  it('records the operational events the worker raises, and a disable there stops fan-out here at once', async () => {
    const gw = await gatewayForTest(THREAD);
    const gone = await receiverForTest(() => ({ status: 410 }));
    const ops = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${gone.url}/hook`, events: ['call.ended'] });
    await createSubscription(gw, { url: `${ops.url}/ops`, events: ['sluice.*'] });
    const id = deliveryFor(await postEvent(gw), sub.id);
    expect(await waitForDelivery(gw, id)).toMatchObject({ status: 'failed' });
    // The worker tells this thread a subscription changed before it raises the event: once the
    // event has gone through ingest here, this thread's subscription cache knows.
    const disabled = await waitFor(
      () => ops.requests.map((r) => JSON.parse(r.body)).find((e) => e.event === 'sluice.webhook.disabled'),
      10_000,
      'sluice.webhook.disabled',
    );
    expect(disabled.data).toMatchObject({ subscription_id: sub.id, reason: 'gone' });
    const failed = ops.requests.map((r) => JSON.parse(r.body)).find((e) => e.event === 'sluice.delivery.failed');
    expect(failed?.data).toMatchObject({ delivery_id: id, subscription_id: sub.id, last_status_code: 410 });
    const later = await postEvent(gw);
    expect(later.deliveries.map((d) => d.subscription_id)).not.toContain(sub.id);
  });

  it('sends to where a subscription was changed to, right after the change (the delivery thread reads it again)', async () => {
    const gw = await gatewayForTest(THREAD);
    const before = await receiverForTest();
    const after = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${before.url}/hook`, events: ['call.ended'] });
    // The delivery thread caches the subscription with its first delivery.
    expect(await waitForDelivery(gw, deliveryFor(await postEvent(gw), sub.id))).toMatchObject({ status: 'delivered' });
    expect((await gw.api('PATCH', `/api/v1/webhooks/${sub.id}`, { url: `${after.url}/hook` })).status).toBe(200);
    expect(await waitForDelivery(gw, deliveryFor(await postEvent(gw), sub.id))).toMatchObject({ status: 'delivered' });
    expect(before.requests).toHaveLength(1);
    expect(after.requests).toHaveLength(1);
  });

  it('reserves worker slots for ingest\'s preclaim in memory both threads see, and gives them back', async () => {
    const gw = await gatewayForTest({ ...THREAD, SLUICE_DELIVERY_CONCURRENCY: '4' });
    const engine = gw.sluice.delivery;
    const first = engine.reserve(3);
    expect(first.count).toBe(3);
    expect(first.leaseUntil).toBeGreaterThan(Date.now());
    // Only one slot is left of four.
    expect(engine.reserve(3).count).toBe(1);
    expect(engine.reserve(1).count).toBe(0);
    engine.release(4);
    expect(engine.reserve(4).count).toBe(4);
    engine.release(4);
  });
});

describe('the delivery thread dying', () => {
  it('ends with the gateway: stop lets the thread finish and waits for it to exit', async () => {
    const gw = await startGateway(THREAD);
    const { thread } = gw.sluice.delivery as DeliveryThread;
    let exited = false;
    thread.once('exit', () => (exited = true));
    await gw.stop();
    // Stop resolves only after the thread's exit.
    expect(exited).toBe(true);
  });

  it('is not silent: a test send waiting on it fails, and the gateway is told to exit (onFatal)', async () => {
    let fatal: Error | undefined;
    const gw = await startGateway(THREAD, { onFatal: (err) => (fatal = err) });
    try {
      const receiver = await receiverForTest(() => ({ status: 200, delayMs: 2_000 }));
      const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
      const testSend = gw.api('POST', `/api/v1/webhooks/${sub.id}/test`, {});
      await waitFor(() => receiver.requests.length === 1, 10_000, 'the test send on the wire');
      await (gw.sluice.delivery as DeliveryThread).thread.terminate();
      await waitFor(() => fatal, 10_000, 'onFatal');
      expect(fatal!.message).toBe('The delivery thread stopped: the delivery thread exited with code 1');
      const answer = await testSend;
      expect(answer.status).toBe(503);
      expect(answer.body.error.code).toBe('unavailable');
    } finally {
      await gw.stop().catch(() => undefined);
    }
  });
});
