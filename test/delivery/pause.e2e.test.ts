import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/gateway.ts';
import { createSubscription, deliveryFor, gatewayForTest, getDelivery, postEvent, receiverForTest, waitForDelivery } from './delivery-helpers.ts';

/** Disable pauses, enable resumes, delete cancels; and none of them lets one more attempt out. */

/** Waits until the worker holds nothing, and `ms` more of real time have passed with it idle. */
async function settle(gw: Awaited<ReturnType<typeof gatewayForTest>>, ms: number): Promise<void> {
  const until = Date.now() + ms;
  await waitFor(() => Date.now() >= until && gw.sluice.worker!.activeCount === 0, ms + 10_000, 'the worker to go idle');
}

describe('disabling a subscription', () => {
  it('keeps its pending deliveries (paused) and sends them when it is enabled again', async () => {
    const gw = await gatewayForTest();
    let status = 500;
    const receiver = await receiverForTest(() => ({ status }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule: ['0s', '1s', '1s'] } });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const retrying = await waitForDelivery(gw, id, (d) => d.attempt_count === 1 && d.status === 'pending');

    expect((await gw.api('PATCH', `/api/v1/webhooks/${sub.id}`, { enabled: false })).status).toBe(200);
    expect(await getDelivery(gw, id)).toMatchObject({ status: 'pending', paused: true });
    // Well past the retry it had scheduled: still pending, not attempted, not failed.
    await settle(gw, Date.parse(retrying.next_attempt_at) - Date.now() + 1_500);
    expect(await getDelivery(gw, id)).toMatchObject({ status: 'pending', paused: true, attempt_count: 1 });
    expect(receiver.requests).toHaveLength(1);
    const listed = await gw.api('GET', `/api/v1/webhooks/${sub.id}/deliveries?status=pending`);
    expect(listed.body.data.map((d: { id: string }) => d.id)).toEqual([id]);

    status = 200;
    expect((await gw.api('PATCH', `/api/v1/webhooks/${sub.id}`, { enabled: true })).status).toBe(200);
    const delivered = await waitForDelivery(gw, id);
    expect(delivered).toMatchObject({ status: 'delivered', paused: false });
    expect(receiver.requests).toHaveLength(2);
  });

  it('pauses what waits when a 410 disables the subscription', async () => {
    const gw = await gatewayForTest();
    // The first event's receiver call fails (it retries later); the second answers 410.
    const receiver = await receiverForTest((_req, index) => ({ status: index === 0 ? 500 : 410 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule: ['0s', '2s'] } });
    const first = deliveryFor(await postEvent(gw), sub.id);
    await waitForDelivery(gw, first, (d) => d.attempt_count === 1);
    const second = deliveryFor(await postEvent(gw), sub.id);
    await waitForDelivery(gw, second, (d) => d.status === 'failed');
    expect((await gw.api('GET', `/api/v1/webhooks/${sub.id}`)).body.enabled).toBe(false);
    expect(await getDelivery(gw, first)).toMatchObject({ status: 'pending', paused: true, attempt_count: 1 });

    receiver.respondWith(() => ({ status: 200 }));
    expect((await gw.api('PATCH', `/api/v1/webhooks/${sub.id}`, { enabled: true })).status).toBe(200);
    expect(await waitForDelivery(gw, first)).toMatchObject({ status: 'delivered' });
  });

  it('deleting cancels what waits, paused or not', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest(() => ({ status: 500 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule: ['0s', '1h'] } });
    const id = deliveryFor(await postEvent(gw), sub.id);
    await waitForDelivery(gw, id, (d) => d.attempt_count === 1);
    expect((await gw.api('PATCH', `/api/v1/webhooks/${sub.id}`, { enabled: false })).status).toBe(200);
    expect((await gw.api('DELETE', `/api/v1/webhooks/${sub.id}`)).status).toBe(200);
    expect(await getDelivery(gw, id)).toMatchObject({ status: 'cancelled', paused: false });
  });
});

describe('a delete or disable while a delivery waits for its turn', () => {
  // rate_limit 1/s: the second delivery waits about a second in the worker before it is sent.
  it.each([
    ['DELETE', undefined, 'cancelled'],
    ['PATCH', { enabled: false }, 'pending'],
  ] as const)('%s stops it before it is sent', async (method, body, status) => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], rate_limit: 1 });
    const first = deliveryFor(await postEvent(gw), sub.id);
    const second = deliveryFor(await postEvent(gw), sub.id);
    await waitFor(() => receiver.requests.length === 1, 5_000, 'the first delivery');
    expect(gw.sluice.worker!.activeCount).toBeGreaterThan(0); // the second is held for pacing
    expect((await gw.api(method, `/api/v1/webhooks/${sub.id}`, body)).status).toBe(200);
    await settle(gw, 1_500);
    expect(receiver.requests).toHaveLength(1);
    expect((await getDelivery(gw, first)).status).toBe('delivered');
    expect(await getDelivery(gw, second)).toMatchObject({ status, attempt_count: 0 });
  });
});
