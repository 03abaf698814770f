import { describe, expect, it, onTestFinished } from 'vitest';
import { openDatabase, startGateway, waitFor, type TestGateway } from '../support/gateway.ts';
import { createSubscription, deliveryFor, gatewayForTest, getDelivery, postEvent, receiverForTest, waitForDelivery } from './delivery-helpers.ts';

/**
 * One delivery's run through the worker, in this process (so a mutation run can switch it):
 * what it does with a delivery that processes holding it kept dying on, and with one whose
 * `rate_limit` slot is further off than the worker holds a delivery; and the queue poll that
 * claims the next ones. Real gateway, receivers and SQLite file; the tests set what a crash loop
 * or an earlier version left behind in the file.
 */

/** Nothing is claimed or preclaimed until the returned function is called (then the queue is polled). */
function holdClaims(gw: TestGateway): () => void {
  const storage = gw.sluice.storage;
  const worker = gw.sluice.worker!;
  const { claimDue, claimByIds } = storage;
  storage.claimDue = async () => [];
  storage.claimByIds = async () => [];
  worker.reserve = () => ({ count: 0, leaseUntil: 0 });
  return () => {
    storage.claimDue = claimDue;
    storage.claimByIds = claimByIds;
    delete (worker as Partial<typeof worker>).reserve;
    worker.poke();
  };
}

describe('a delivery the gateway kept dying on', () => {
  it('claimed a fourth time with no attempt recorded, it is failed as abandoned, unsent, and reported once; claimed a third time, it is sent', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const ops = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    await createSubscription(gw, { url: `${ops.url}/ops`, events: ['sluice.*'] });
    const release = holdClaims(gw);
    const doomed = await postEvent(gw);
    const survivor = await postEvent(gw);
    const doomedId = deliveryFor(doomed, sub.id);
    const survivorId = deliveryFor(survivor, sub.id);
    // Three (two) processes died holding it: each claim counted, no attempt recorded. The next claim is its fourth (third).
    const db = openDatabase(gw);
    try {
      const set = db.prepare("UPDATE deliveries SET unfinished_claims = ? WHERE id = ? AND status = 'pending' AND attempts = 0");
      expect(set.run(3, doomedId).changes).toBe(1);
      expect(set.run(2, survivorId).changes).toBe(1);
    } finally {
      db.close();
    }
    release();

    const failed = await waitForDelivery(gw, doomedId);
    expect(failed).toMatchObject({ status: 'failed', attempt_count: 1 });
    expect(failed.attempts).toHaveLength(1);
    expect(failed.attempts[0]).toMatchObject({ number: 1, outcome: 'fail' });
    expect(failed.attempts[0].error).toMatch(/^abandoned: the gateway stopped 3 times while processing this delivery, before any attempt was recorded/);
    expect(await waitForDelivery(gw, survivorId)).toMatchObject({ status: 'delivered', attempt_count: 1 });
    expect(receiver.requests.map((r) => JSON.parse(r.body).id)).toEqual([survivor.id]);

    const reported = await waitFor(() => ops.requests.map((r) => JSON.parse(r.body)).find((e) => e.event === 'sluice.delivery.failed'), 10_000, 'sluice.delivery.failed');
    expect(reported.data).toMatchObject({ delivery_id: doomedId, subscription_id: sub.id, event_id: doomed.id });
    expect((await getDelivery(gw, doomedId)).status).toBe('failed');
  });
});

describe('a delivery whose rate_limit slot is far off', () => {
  it('goes back to the queue, due at its slot; a rate an earlier version stored below the floor is paced at the floor', async () => {
    const first = await gatewayForTest();
    const receiver = await receiverForTest();
    const sub = await createSubscription(first, { url: `${receiver.url}/hook`, events: ['call.ended'], rate_limit: 1 });
    await first.stop();
    // One a billion seconds: the first delivery goes at once and the next slot would lie past
    // any date. The floor (one per 1,000 s) puts it 1,000 s on.
    const db = openDatabase(first);
    try {
      expect(db.prepare('UPDATE subscriptions SET rate_limit = ? WHERE id = ?').run(1e-9, sub.id).changes).toBe(1);
    } finally {
      db.close();
    }
    const gw = await startGateway({}, { dataDir: first.dataDir });
    onTestFinished(() => gw.stop());
    const before = Date.now();
    const sent = deliveryFor(await postEvent(gw), sub.id);
    const parked = deliveryFor(await postEvent(gw), sub.id);
    expect(await waitForDelivery(gw, sent)).toMatchObject({ status: 'delivered', attempt_count: 1 });
    // Delayed, not dropped, and not held in the worker: pending, unattempted, due at its slot.
    const waiting = await waitForDelivery(gw, parked, (d) => d.status === 'pending' && d.next_attempt_at !== null && Date.parse(d.next_attempt_at) > before + 60_000);
    expect(waiting.attempt_count).toBe(0);
    const due = Date.parse(waiting.next_attempt_at);
    expect(due).toBeGreaterThanOrEqual(before + 1_000_000);
    expect(due).toBeLessThanOrEqual(Date.now() + 1_000_000);
    await waitFor(() => gw.sluice.worker!.activeCount === 0, 5_000, 'the worker to let it go');
    expect(receiver.requests).toHaveLength(1);
  });
});

describe('the queue poll', () => {
  it('claims nothing while the worker is full: a poll with no room does not ask the queue', async () => {
    const T0 = Date.UTC(2026, 0, 1);
    const clock = { t: T0 };
    const gw = await startGateway({ SLUICE_DELIVERY_CONCURRENCY: '1', SLUICE_LEASE_SECONDS: '3' }, { now: () => clock.t });
    onTestFinished(() => gw.stop());
    const storage = gw.sluice.storage;
    let claims = 0;
    const claimDue = storage.claimDue.bind(storage);
    storage.claimDue = async (...args) => {
      claims += 1;
      return claimDue(...args);
    };
    // The sweep's last call ends the part of a poll that runs whatever the room.
    let sweeps = 0;
    const wake = storage.wakeFreeKeys.bind(storage);
    storage.wakeFreeKeys = async (now) => {
      const woken = await wake(now);
      sweeps += 1;
      return woken;
    };
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const receiver = await receiverForTest(() => ({ until: answered }));
    onTestFinished(() => answer());
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], timeout: 120 });
    const id = deliveryFor(await postEvent(gw), sub.id);
    await waitFor(() => receiver.requests.length === 1, 10_000, 'the attempt on the wire');
    expect(gw.sluice.worker!.activeCount).toBe(1);

    // A third of a lease on: the next poll sweeps, then finds no room and stops there.
    const claimsBefore = claims;
    const sweepsBefore = sweeps;
    clock.t = T0 + 1_000;
    gw.sluice.worker!.poke();
    await waitFor(() => sweeps > sweepsBefore, 5_000, 'a poll that swept');
    await new Promise((resolve) => setImmediate(resolve));
    expect(claims).toBe(claimsBefore);

    answer();
    expect(await waitForDelivery(gw, id)).toMatchObject({ status: 'delivered', attempt_count: 1 });
  });
});
