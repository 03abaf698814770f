import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/gateway.ts';
import { createSubscription, eventFrom, gatewayForTest, receiverForTest, uniqueEventId } from './delivery-helpers.ts';

/** Posts `count` events in one batch; every one must be accepted. */
async function postBatch(gw: Awaited<ReturnType<typeof gatewayForTest>>, count: number, label: string): Promise<string[]> {
  const events = Array.from({ length: count }, () => eventFrom('call.ended', uniqueEventId(label)));
  const res = await gw.api('POST', '/api/v1/events/batch', { events });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return events.map((e) => e.id);
}

describe('rate_limit', () => {
  it('spaces deliveries by 1/rate and delivers every one (delayed, never dropped)', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], rate_limit: 5 });
    const ids = await postBatch(gw, 10, 'rate5');

    await waitFor(() => receiver.requests.length >= 10, 10_000, 'all 10 deliveries');
    const arrived = receiver.requests.map((r) => JSON.parse(r.body).id);
    expect(new Set(arrived)).toEqual(new Set(ids));
    expect(receiver.requests).toHaveLength(10);
    // 5 per second is one slot every 200 ms. A delivery can only be late for its slot, never early,
    // so on a loaded machine one late arrival can sit closer to the next: check windows, not single
    // gaps. Any 6 consecutive arrivals span 5 slots (1 s) less what lateness can take off the first.
    // Unpaced, all 10 would arrive within a few milliseconds.
    const times = receiver.requests.map((r) => r.at).sort((a, b) => a - b);
    for (let i = 0; i + 5 < times.length; i++) expect(times[i + 5] - times[i]).toBeGreaterThanOrEqual(600);
    expect(times[9] - times[0]).toBeGreaterThanOrEqual(1_400);
  }, 15_000);

  it('a backlog longer than the in-process hold goes back to the queue and is still delivered in full, at the rate', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    // 250 events at 50/s is 5 s of backlog: the worker holds 2 s in memory and parks the rest in
    // the queue, each due at its slot. (This once stalled after the first 2 s: parked deliveries
    // reserved a fresh slot behind all the others every time they came back.)
    await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], rate_limit: 50 });
    const ids = await postBatch(gw, 250, 'rate50');

    await waitFor(() => receiver.requests.length >= 250, 15_000, 'all 250 deliveries');
    expect(new Set(receiver.requests.map((r) => JSON.parse(r.body).id))).toEqual(new Set(ids));
    const times = receiver.requests.map((r) => r.at).sort((a, b) => a - b);
    // Never faster than the rate: any 51 consecutive arrivals span 50 intervals of 20 ms (timer slack allowed).
    // (Lateness for a slot, never earliness, is what a loaded machine adds: windows, generous slack.)
    for (let i = 0; i + 50 < times.length; i++) expect(times[i + 50] - times[i]).toBeGreaterThanOrEqual(700);
    expect(times[249] - times[0]).toBeGreaterThanOrEqual(4_000);
  }, 25_000);

  it('paces each subscription on its own: a slow one does not hold back another', async () => {
    const gw = await gatewayForTest();
    const slow = await receiverForTest();
    const fast = await receiverForTest();
    await createSubscription(gw, { url: `${slow.url}/slow`, events: ['call.ended'], rate_limit: 2 });
    await createSubscription(gw, { url: `${fast.url}/fast`, events: ['call.ended'] });
    await postBatch(gw, 4, 'pair');

    await waitFor(() => fast.requests.length >= 4, 5_000, 'the unlimited subscription');
    // By the time the unlimited one has all four, the 2/s one has sent at most two.
    expect(slow.requests.length).toBeLessThanOrEqual(2);
    await waitFor(() => slow.requests.length >= 4, 10_000, 'the rate-limited subscription');
    const slowTimes = slow.requests.map((r) => r.at).sort((a, b) => a - b);
    for (let i = 0; i + 2 < slowTimes.length; i++) expect(slowTimes[i + 2] - slowTimes[i]).toBeGreaterThanOrEqual(700);
    expect(slowTimes[3] - slowTimes[0]).toBeGreaterThanOrEqual(1_200);
  }, 15_000);
});
