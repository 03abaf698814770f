import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/gateway.ts';
import { createSubscription, deliveryFor, gatewayForTest, postEvent, receiverForTest, waitForDelivery } from './delivery-helpers.ts';

/**
 * SLUICE_DESTINATION_CONCURRENCY: attempts to one origin beyond the limit wait in the worker
 * (their timeout not yet running) and take a slot when one is handed over; other origins are
 * not held back. The HTTP client's per-origin connection cap alone would queue requests inside
 * the client with their clocks running: the latency of the waiting attempts tells the two apart.
 */
describe('per-destination concurrency', () => {
  it('one attempt at a time to a busy origin; the rest wait for the slot, and another origin is not held back', async () => {
    const gw = await gatewayForTest({ SLUICE_DESTINATION_CONCURRENCY: '1' });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let inFlight = 0;
    let maxInFlight = 0;
    const busy = await receiverForTest((_req, index) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const done = (index === 0 ? held : Promise.resolve()).finally(() => (inFlight -= 1));
      return { status: 200, until: done };
    });
    const other = await receiverForTest(() => ({ status: 200 }));
    const slow = await createSubscription(gw, { url: `${busy.url}/hook`, events: ['call.ended'] });
    const fast = await createSubscription(gw, { url: `${other.url}/hook`, events: ['call.ended'] });

    const accepted = [await postEvent(gw), await postEvent(gw), await postEvent(gw)];
    await waitFor(() => busy.requests.length >= 1, 15_000, 'the first request to the busy origin');
    const firstArrived = Date.now();
    // The other origin gets all three while the busy one holds its only slot.
    for (const a of accepted) expect((await waitForDelivery(gw, deliveryFor(a, fast.id))).status).toBe('delivered');
    expect(busy.requests).toHaveLength(1);

    // Hold the first request long enough that an attempt queued behind it inside the HTTP
    // client (its timeout and latency clock running) would show it.
    const HOLD_MS = 1_500;
    await waitFor(() => Date.now() - firstArrived >= HOLD_MS, HOLD_MS + 5_000, 'the hold');
    release();
    const slowIds = accepted.map((a) => deliveryFor(a, slow.id));
    const delivered = [];
    for (const id of slowIds) delivered.push(await waitForDelivery(gw, id));
    expect(delivered.map((d) => d.status)).toEqual(['delivered', 'delivered', 'delivered']);
    expect(busy.requests).toHaveLength(3);
    expect(maxInFlight).toBe(1);
    // The first attempt waited on the receiver; the others only started once the slot was handed over.
    const latencies = delivered.map((d) => d.attempts[0].latency_ms as number).sort((a, b) => a - b);
    expect(latencies[2]).toBeGreaterThanOrEqual(HOLD_MS);
    expect(latencies[0]).toBeLessThan(HOLD_MS / 2);
    expect(latencies[1]).toBeLessThan(HOLD_MS / 2);
  }, 60_000);

  it('a slot given back while another is on the wire is counted: an attempt beyond the limit waits in the worker, not in the HTTP client', async () => {
    const gw = await gatewayForTest({ SLUICE_DESTINATION_CONCURRENCY: '2' });
    // Each request is held until the test lets it go, by its arrival index.
    const releases: (() => void)[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const receiver = await receiverForTest((_req, index) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const done = new Promise<void>((resolve) => (releases[index] = resolve)).finally(() => (inFlight -= 1));
      return { status: 200, until: done };
    });
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    const ids = [deliveryFor(await postEvent(gw), sub.id), deliveryFor(await postEvent(gw), sub.id)];
    await waitFor(() => receiver.requests.length === 2, 15_000, 'two attempts on the wire');
    // One finishes while the other stays on the wire, and nothing waits: the origin keeps one slot taken.
    releases[0]();
    expect((await waitForDelivery(gw, ids[0])).status).toBe('delivered');
    ids.push(deliveryFor(await postEvent(gw), sub.id), deliveryFor(await postEvent(gw), sub.id));
    await waitFor(() => receiver.requests.length >= 3, 15_000, 'the third attempt');
    // Two on the wire again: the fourth must wait in the worker, its clock not running. Had the
    // returned slot been forgotten, it would have started and queued inside the HTTP client
    // (whose per-origin connection cap hides it from the receiver) with its clock running.
    const HOLD_MS = 1_000;
    const heldFrom = Date.now();
    await waitFor(() => Date.now() - heldFrom >= HOLD_MS, HOLD_MS + 5_000, 'the hold');
    for (let i = 1; i < 4; i++) {
      await waitFor(() => releases[i], 15_000, `attempt ${i + 1} on the wire`);
      releases[i]();
    }
    const delivered = [];
    for (const id of ids) delivered.push(await waitForDelivery(gw, id));
    expect(delivered.map((d) => d.status)).toEqual(['delivered', 'delivered', 'delivered', 'delivered']);
    expect(maxInFlight).toBe(2);
    expect(delivered[3].attempts[0].latency_ms).toBeLessThan(HOLD_MS / 2);
  }, 60_000);
});
