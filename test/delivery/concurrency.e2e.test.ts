import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/gateway.ts';
import { createSubscription, eventFrom, gatewayForTest, receiverForTest } from './delivery-helpers.ts';

/**
 * Global and per-destination concurrency: a destination that hangs holds its own slots, never
 * the whole pool, so every other destination keeps its normal latency.
 */

describe('delivery concurrency', () => {
  it('delivers to a healthy destination while a hanging one holds its requests with hundreds queued behind them', async () => {
    const gw = await gatewayForTest({ SLUICE_DELIVERY_CONCURRENCY: '8', SLUICE_DESTINATION_CONCURRENCY: '2' });
    let answerHanging!: () => void;
    const hangingUntil = new Promise<void>((resolve) => (answerHanging = resolve));
    const hanging = await receiverForTest(() => ({ until: hangingUntil }));
    const healthy = await receiverForTest();
    // The hanging destination answers only when the test lets it (its timeout is far off).
    await createSubscription(gw, { url: `${hanging.url}/hook`, events: ['call.ended'], timeout: 120 });
    await createSubscription(gw, { url: `${healthy.url}/hook`, events: ['lead.created'] });

    const post = async (name: string, count: number) => {
      const res = await gw.api('POST', '/api/v1/events/batch', Array.from({ length: count }, () => eventFrom(name)));
      expect(res.status, JSON.stringify(res.body)).toBe(202);
    };
    for (let i = 0; i < 3; i++) await post('call.ended', 100);
    await waitFor(() => hanging.requests.length === 2, 10_000, 'the hanging destination to hold its two slots');

    await post('lead.created', 20);
    await waitFor(() => healthy.requests.length >= 20, 20_000, 'every healthy delivery').catch((e) => { throw new Error(`${e.message}: healthy ${healthy.requests.length} hanging ${hanging.requests.length} active ${gw.sluice.worker!.activeCount}`); });
    // Structural, not a stopwatch: all of them arrived while the hanging destination still held
    // its requests (it has answered none) and sent no more than its two slots allow.
    expect(hanging.requests).toHaveLength(2);
    expect(healthy.requests).toHaveLength(20);

    answerHanging();
    await waitFor(() => hanging.requests.length === 300, 30_000, 'the hanging destination to catch up once it answers');
  }, 90_000);
});

describe('delivery concurrency: the global limit', () => {
  it('holds back work past SLUICE_DELIVERY_CONCURRENCY across destinations, then delivers all of it', async () => {
    const gw = await gatewayForTest({ SLUICE_DELIVERY_CONCURRENCY: '2', SLUICE_DESTINATION_CONCURRENCY: '50' });
    // Two destinations (two origins) that answer on cue, and track how many requests they hold.
    let inFlight = 0;
    let maxInFlight = 0;
    const releases: (() => void)[] = [];
    const holding = () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const until = new Promise<void>((resolve) => releases.push(() => {
        inFlight--;
        resolve();
      }));
      return { until };
    };
    const first = await receiverForTest(holding);
    const second = await receiverForTest(holding);
    await createSubscription(gw, { url: `${first.url}/hook`, events: ['call.ended'], timeout: 120 });
    await createSubscription(gw, { url: `${second.url}/hook`, events: ['lead.created'], timeout: 120 });
    const post = async (name: string, count: number) => {
      const res = await gw.api('POST', '/api/v1/events/batch', Array.from({ length: count }, () => eventFrom(name)));
      expect(res.status, JSON.stringify(res.body)).toBe(202);
    };
    await post('call.ended', 5);
    await post('lead.created', 5);
    await waitFor(() => inFlight === 2, 10_000, 'the two global slots to be taken');
    // Each release frees one slot, and the next request arrives only then: the limit is reached
    // and never passed, whichever destination the waiting work belongs to.
    for (let sent = 2; sent < 10; sent++) {
      releases.shift()!();
      await waitFor(() => first.requests.length + second.requests.length === sent + 1, 10_000, `request ${sent + 1} to start after a slot was freed`);
      expect(inFlight).toBe(2);
    }
    while (releases.length) releases.shift()!();
    await waitFor(async () => {
      const res = await gw.api('GET', '/api/v1/deliveries?status=delivered&limit=100');
      return res.body.data.length === 10;
    }, 10_000, 'all ten delivered');
    expect(maxInFlight).toBe(2);
    expect(first.requests).toHaveLength(5);
    expect(second.requests).toHaveLength(5);
  }, 60_000);
});
