import { describe, expect, it, onTestFinished } from 'vitest';
import { startGateway, waitFor, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';
import { eventFrom } from '../delivery/delivery-helpers.ts';

/** One sample's value from a Prometheus text scrape (labels as written, e.g. `{outcome="success"}`). */
async function scrape(gw: TestGateway): Promise<(name: string) => number | undefined> {
  const res = await fetch(`${gw.url}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return (name) => samples.get(name);
}

describe('GET /metrics after real traffic', () => {
  it('counts every metric the README lists', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const receiver = await startReceiver(() => ({ until: gate }));
    const gw = await startGateway();
    onTestFinished(async () => {
      release();
      await gw.stop();
      await receiver.close();
    });
    const sub = await gw.api('POST', '/api/v1/webhooks', { url: `${receiver.url}/hook`, events: ['call.ended'] });
    expect(sub.status).toBe(201);

    const before = await scrape(gw);
    expect(before('sluice_events_accepted_total')).toBe(0);
    expect(before('sluice_deliveries_in_flight')).toBe(0);

    const single = eventFrom('call.ended');
    expect((await gw.api('POST', '/api/v1/events', single)).status).toBe(202);
    expect((await gw.api('POST', '/api/v1/events/batch', [eventFrom('call.ended'), eventFrom('call.ended')])).status).toBe(202);
    // A duplicate is answered, but not accepted a second time.
    expect((await gw.api('POST', '/api/v1/events', single)).status).toBe(200);

    // The receiver holds every request: all three attempts are on the wire at once.
    await waitFor(() => receiver.requests.length === 3, 5_000, 'three requests at the receiver');
    const during = await scrape(gw);
    expect(during('sluice_deliveries_in_flight')).toBe(3);
    expect(during('sluice_events_accepted_total')).toBe(3);
    expect(during('sluice_deliveries_created_total')).toBe(3);

    release();
    const after = await waitFor(async () => {
      const m = await scrape(gw);
      return m('sluice_delivery_attempts_total{outcome="success"}') === 3 ? m : undefined;
    }, 5_000, 'three successful attempts counted');
    expect(after('sluice_deliveries_in_flight')).toBe(0);
    expect(after('sluice_events_accepted_total')).toBe(3);
    expect(after('sluice_delivery_attempt_seconds_count')).toBe(3);
    expect(after('sluice_delivery_attempt_seconds_sum')).toBeGreaterThan(0);
    expect(after('sluice_process_resident_memory_bytes')).toBeGreaterThan(0);
  });
});
