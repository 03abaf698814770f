import { describe, expect, it, onTestFinished } from 'vitest';
import { openDatabase, startGateway, waitFor, type TestGateway } from '../support/gateway.ts';
import { createSubscription, deliveryFor, eventFrom, gatewayForTest, postEvent, receiverForTest, uniqueEventId, waitForDelivery } from './delivery-helpers.ts';

/**
 * The leases the worker takes and renews, read where another instance sharing the database
 * would read them: a delivery on the wire is leased a lease period ahead, so a neighbour's sweep
 * of expired leases (every instance runs one) does not take it and send it a second time. One
 * gateway alone sends such a delivery once whatever its lease says; these tests read the lease.
 * Real gateway, real receiver holding the attempt, real SQLite file.
 */

const LEASE_MS = 60_000;

/** The delivery's lease expiry, from the SQLite file. */
function leaseUntil(gw: TestGateway, id: string): number | null {
  const db = openDatabase(gw);
  try {
    return (db.prepare('SELECT lease_until FROM deliveries WHERE id = ?').get(id) as { lease_until: number | null }).lease_until;
  } finally {
    db.close();
  }
}

/** A receiver holding every request until the test lets them go (at the end at the latest). */
async function holdingReceiver() {
  let answer!: () => void;
  const answered = new Promise<void>((resolve) => (answer = resolve));
  const receiver = await receiverForTest(() => ({ until: answered }));
  onTestFinished(() => answer());
  return { receiver, answer };
}

/**
 * While the attempt is on the wire (the worker's next sweep a third of a minute off): its lease
 * runs a lease period from when it was taken, and a sweep of expired leases such as another
 * instance runs now leaves it alone. Then it is delivered, sent once.
 */
async function leasedAheadWhileOnTheWire(gw: TestGateway, id: string, receiver: { requests: unknown[] }, answer: () => void, leasedAfter: number): Promise<void> {
  await waitFor(() => receiver.requests.length === 1, 10_000, 'the attempt on the wire');
  const until = leaseUntil(gw, id);
  expect(until).not.toBeNull();
  expect(until!).toBeGreaterThanOrEqual(leasedAfter + LEASE_MS);
  expect(until!).toBeLessThanOrEqual(Date.now() + LEASE_MS);
  expect(await gw.sluice.storage.reclaimExpiredLeases(Date.now())).toBe(0);
  answer();
  expect(await waitForDelivery(gw, id)).toMatchObject({ status: 'delivered', attempt_count: 1 });
  expect(receiver.requests).toHaveLength(1);
}

describe('a delivery on the wire is leased a lease period ahead', () => {
  it('when claimed by id as its commit makes it due', async () => {
    const gw = await gatewayForTest({ SLUICE_LEASE_SECONDS: String(LEASE_MS / 1000) });
    // Only a claim by id can send: the queue scan finds nothing, and ordered deliveries are not preclaimed.
    gw.sluice.storage.claimDue = async () => [];
    const { receiver, answer } = await holdingReceiver();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['signal.*'], timeout: 120, ordering: { key: 'data.conversation_id' } });
    const base = eventFrom('signal.frustration_spike', uniqueEventId('lease_by_id'));
    const before = Date.now();
    const res = await gw.api('POST', '/api/v1/events', { ...base, data: { ...base.data, conversation_id: 'k' } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    await leasedAheadWhileOnTheWire(gw, deliveryFor(res.body, sub.id), receiver, answer, before);
  });

  it('when stored already leased by ingest (preclaimed)', async () => {
    const gw = await gatewayForTest({ SLUICE_LEASE_SECONDS: String(LEASE_MS / 1000) });
    // Neither claim can send: only the preclaim at ingest can.
    gw.sluice.storage.claimDue = async () => [];
    gw.sluice.storage.claimByIds = async () => [];
    const { receiver, answer } = await holdingReceiver();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], timeout: 120 });
    const before = Date.now();
    const id = deliveryFor(await postEvent(gw), sub.id);
    await leasedAheadWhileOnTheWire(gw, id, receiver, answer, before);
  });

  it('when claimed from the queue by a poll', async () => {
    const gw = await gatewayForTest({ SLUICE_LEASE_SECONDS: String(LEASE_MS / 1000) });
    // Neither the preclaim nor a claim by id: only the poll's scan of the queue can send.
    gw.sluice.storage.claimByIds = async () => [];
    gw.sluice.worker!.reserve = () => ({ count: 0, leaseUntil: 0 });
    const { receiver, answer } = await holdingReceiver();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], timeout: 120 });
    const before = Date.now();
    const id = deliveryFor(await postEvent(gw), sub.id);
    await leasedAheadWhileOnTheWire(gw, id, receiver, answer, before);
  });
});

describe('the lease sweep', () => {
  it('renews the leases of attempts on the wire every third of a lease period, on the worker clock', async () => {
    const T0 = Date.UTC(2026, 0, 1);
    const clock = { t: T0 };
    // maxIdleMs is a third of the lease too, capped at 1 s (real time): polls keep coming while the clock stands.
    const gw = await startGateway({ SLUICE_LEASE_SECONDS: '3' }, { now: () => clock.t });
    onTestFinished(() => gw.stop());
    const storage = gw.sluice.storage;
    const renewals: { ids: string[]; until: number }[] = [];
    const renew = storage.renewLeases.bind(storage);
    // Recorded once written, so the file shows what a recorded renewal says.
    storage.renewLeases = async (ids, until) => {
      const renewed = await renew(ids, until);
      renewals.push({ ids: [...ids], until });
      return renewed;
    };
    let polls = 0;
    const claimDue = storage.claimDue.bind(storage);
    storage.claimDue = async (...args) => {
      polls += 1;
      return claimDue(...args);
    };
    const { receiver, answer } = await holdingReceiver();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], timeout: 120 });
    const id = deliveryFor(await postEvent(gw), sub.id);
    await waitFor(() => receiver.requests.length === 1, 10_000, 'the attempt on the wire');
    // The first sweep ran at start, at T0; its lease runs to T0 + 3 s.
    expect(leaseUntil(gw, id)).toBe(T0 + 3_000);

    // A millisecond short of a third of the lease: a poll, no sweep.
    clock.t = T0 + 999;
    const seen = polls;
    gw.sluice.worker!.poke();
    await waitFor(() => polls > seen, 5_000, 'a poll');
    expect(renewals).toEqual([]);

    // A third of the lease after the last sweep: the next poll renews the lease a lease period ahead.
    clock.t = T0 + 1_000;
    gw.sluice.worker!.poke();
    await waitFor(() => renewals.length > 0, 5_000, 'a renewal');
    expect(renewals[0]).toEqual({ ids: [id], until: T0 + 4_000 });
    expect(leaseUntil(gw, id)).toBe(T0 + 4_000);

    answer();
    expect(await waitForDelivery(gw, id)).toMatchObject({ status: 'delivered', attempt_count: 1 });
    expect(receiver.requests).toHaveLength(1);
  });
});
