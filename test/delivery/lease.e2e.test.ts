import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/gateway.ts';
import { createSubscription, deliveryFor, gatewayForTest, getDelivery, postEvent, receiverForTest, waitForDelivery } from './delivery-helpers.ts';

/** Leases while the gateway runs: SLUICE_LEASE_SECONDS matters without a restart. */
describe('expired leases', () => {
  it('are reclaimed while running: a delivery whose completion was lost is retried within a lease period', async () => {
    const gw = await gatewayForTest({ SLUICE_LEASE_SECONDS: '1' });
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    // The first completion write fails (a full disk, a locked file): the delivery stays leased.
    const storage = gw.sluice.storage;
    const complete = storage.completeAttempts.bind(storage);
    let failures = 0;
    storage.completeAttempts = async (completions, now) => {
      if (failures++ === 0) throw new Error('disk I/O error');
      return complete(completions, now);
    };
    const id = deliveryFor(await postEvent(gw), sub.id);
    await waitFor(() => receiver.requests.length === 1, 5_000, 'the first attempt');
    expect((await getDelivery(gw, id)).status).toBe('delivering');

    const delivered = await waitForDelivery(gw, id, (d) => d.status === 'delivered', 6_000);
    expect(receiver.requests).toHaveLength(2); // at least once: sent again, same webhook-id
    expect(receiver.requests[1].headers['webhook-id']).toBe(receiver.requests[0].headers['webhook-id']);
    expect(delivered.attempts).toHaveLength(1);
  });

  it('are renewed for an attempt that takes longer than a lease: it is not sent twice', async () => {
    const gw = await gatewayForTest({ SLUICE_LEASE_SECONDS: '1' });
    const receiver = await receiverForTest(() => ({ delayMs: 2_500 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], timeout: 10 });
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivered = await waitForDelivery(gw, id, (d) => d.status === 'delivered', 10_000);
    expect(delivered.attempts).toHaveLength(1);
    expect(receiver.requests).toHaveLength(1);
  });
});
