import { describe, expect, it, onTestFinished } from 'vitest';
import { openDatabase, startGateway, waitFor, type TestGateway } from '../support/gateway.ts';
import { createSubscription, deliveryFor, gatewayForTest, getDelivery, postEvent, receiverForTest, waitForDelivery } from './delivery-helpers.ts';

/**
 * The worker's decisions about one delivery: whether it may be sent at all (its subscription
 * deleted, disabled, or its connector gone), and what an outcome does to the subscription (a
 * destination deleting it, the "no successful delivery for N" rule). Real gateways and receivers;
 * where the rule's arithmetic is the point, the gateway runs on a clock the test sets.
 */

const DAY = 86_400_000;
/** SLUICE_DISABLE_AFTER_DAYS in the clocked tests. */
const LIMIT = 2 * DAY;
const T0 = Date.UTC(2026, 0, 1);

/** A gateway whose clock stands still until the test moves it. Stopped when the test ends. */
async function clockedGateway(env: Record<string, string> = {}, dataDir?: string): Promise<TestGateway & { clock: { t: number } }> {
  const clock = { t: T0 };
  const gw = await startGateway({ SLUICE_DISABLE_AFTER_DAYS: String(LIMIT / DAY), ...env }, { now: () => clock.t, dataDir });
  onTestFinished(() => gw.stop());
  return Object.assign(gw, { clock });
}

async function subscription(gw: TestGateway, id: string): Promise<Record<string, any>> {
  const res = await gw.api('GET', `/api/v1/webhooks/${id}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

/** Posts one event at the gateway's current time and waits for its delivery to the subscription to finish. */
async function deliverOne(gw: TestGateway, subId: string): Promise<Record<string, any>> {
  return waitForDelivery(gw, deliveryFor(await postEvent(gw), subId));
}

/**
 * A failing subscription whose record says: failing since T0, last success half the limit later
 * (what two instances can leave), reopened on a gateway whose clock the test sets.
 */
async function failingSinceT0SucceededAtHalfLimit(): Promise<{ again: TestGateway & { clock: { t: number } }; sub: Record<string, any> }> {
  const gw = await clockedGateway();
  const receiver = await receiverForTest(() => ({ status: 400 }));
  const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
  await gw.stop();
  const db = openDatabase(gw);
  try {
    expect(db.prepare('UPDATE subscriptions SET failing_since = ?, last_success_at = ? WHERE id = ?').run(T0, T0 + LIMIT / 2, sub.id).changes).toBe(1);
  } finally {
    db.close();
  }
  return { again: await clockedGateway({}, gw.dataDir), sub };
}

describe('a delivery that may no longer be sent', () => {
  it('a test send to a disabled subscription answers why at once, sends nothing, and keeps the subscription', async () => {
    const gw = await clockedGateway();
    const receiver = await receiverForTest();
    // Disabled by an operator (a reason is recorded), and created disabled (none is).
    const paused = await createSubscription(gw, { url: `${receiver.url}/paused`, events: ['call.ended'] });
    expect((await gw.api('PATCH', `/api/v1/webhooks/${paused.id}`, { enabled: false })).status).toBe(200);
    const created = await createSubscription(gw, { url: `${receiver.url}/created`, events: ['call.ended'], enabled: false });

    for (const [sub, error] of [
      [paused, 'subscription disabled: disabled by an operator'],
      [created, 'subscription disabled'],
    ] as const) {
      const sent = await gw.api('POST', `/api/v1/webhooks/${sub.id}/test`, {});
      expect(sent.status, JSON.stringify(sent.body)).toBe(200);
      // Answered now, not put back to wait for the subscription to be enabled.
      expect(sent.body).toMatchObject({ status: 'failed', attempt: { number: 1, outcome: 'fail', response: null, error } });
      expect(await getDelivery(gw, sent.body.delivery_id)).toMatchObject({ status: 'failed', paused: false, attempt_count: 1, last_error: error });
      // Failing a test send changes nothing about the subscription: still there, still disabled.
      expect(await subscription(gw, sub.id)).toMatchObject({ enabled: false });
    }
    // The test send waited for its attempt: anything sent would have arrived before it answered.
    expect(receiver.requests).toHaveLength(0);
  });

  it('a delivery whose subscription is deleted while it waits for its turn is cancelled, with an attempt saying why', async () => {
    // rate_limit 1/s on the real clock: the second delivery waits in the worker for its slot.
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], rate_limit: 1 });
    const first = deliveryFor(await postEvent(gw), sub.id);
    const second = deliveryFor(await postEvent(gw), sub.id);
    await waitFor(() => receiver.requests.length === 1, 5_000, 'the first delivery');
    expect((await gw.api('DELETE', `/api/v1/webhooks/${sub.id}`)).status).toBe(200);
    // When its slot comes, the worker finds the subscription gone and records that.
    const cancelled = await waitForDelivery(gw, second, (d) => d.attempts.length === 1);
    expect(cancelled).toMatchObject({ status: 'cancelled', attempt_count: 0 });
    expect(cancelled.attempts[0]).toMatchObject({ number: 1, outcome: 'fail', response: null, error: 'subscription deleted' });
    // Nothing was sent: the attempt says so (no URL, no headers, no body), under the id of attempt 1 of chain 1.
    expect(cancelled.attempts[0]).toMatchObject({ id: `att_${second.slice(4)}_1_1`, chain: 1, latency_ms: 0, steps: null, request: { method: 'POST', url: '', headers: {}, body: null } });
    expect((await getDelivery(gw, first)).status).toBe('delivered');
    expect(receiver.requests).toHaveLength(1);
  });

  it('a delivery whose connector no longer exists fails with the connector named; the subscription is kept', async () => {
    // A subscription saved by a version that had a connector this one does not.
    const gw = await clockedGateway();
    const receiver = await receiverForTest(() => ({ status: 500 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule: ['0s', '1h'] } });
    const id = deliveryFor(await postEvent(gw), sub.id);
    await waitForDelivery(gw, id, (d) => d.attempt_count === 1 && d.status === 'pending');
    await gw.stop();
    const db = openDatabase(gw);
    try {
      expect(db.prepare("UPDATE subscriptions SET connector = 'retired' WHERE id = ?").run(sub.id).changes).toBe(1);
    } finally {
      db.close();
    }

    const again = await clockedGateway({}, gw.dataDir);
    again.clock.t = T0 + 2 * 3_600_000; // past the retry's hour
    const failed = await waitForDelivery(again, id);
    expect(failed).toMatchObject({ status: 'failed', attempt_count: 2, last_error: 'unknown connector retired' });
    expect(failed.attempts[1]).toMatchObject({ number: 2, outcome: 'fail', response: null, error: 'unknown connector retired' });
    expect(receiver.requests).toHaveLength(1);
    // Not the subscription's fault alone: it is neither deleted nor disabled for it.
    expect(await subscription(again, sub.id)).toMatchObject({ connector: 'retired', enabled: true, disabled_reason: null });
  });
});

describe('a destination that deletes its subscription', () => {
  it('Zapier\'s 410 deletes the subscription and cancels what waits for it (a webhook\'s 410 only disables)', async () => {
    const gw = await clockedGateway();
    const receiver = await receiverForTest((_req, index) => ({ status: index === 0 ? 500 : 410 }));
    // rate_limit: null, or Zapier's default pacing would wait on a clock that stands still.
    const sub = await createSubscription(gw, { connector: 'zapier', url: `${receiver.url}/zap`, events: ['call.ended'], rate_limit: null, retry: { schedule: ['0s', '1h'] } });
    const waiting = deliveryFor(await postEvent(gw), sub.id);
    await waitForDelivery(gw, waiting, (d) => d.attempt_count === 1 && d.status === 'pending');
    const gone = await deliverOne(gw, sub.id);
    expect(gone).toMatchObject({ status: 'failed', attempt_count: 1, last_status_code: 410 });
    expect(gone.attempts[0]).toMatchObject({ outcome: 'gone', response: { status: 410 } });
    expect((await gw.api('GET', `/api/v1/webhooks/${sub.id}`)).status).toBe(404);
    // Deleted, not paused: the retry due in an hour will not come.
    expect(await getDelivery(gw, waiting)).toMatchObject({ status: 'cancelled', attempt_count: 1, paused: false });
    expect(receiver.requests).toHaveLength(2);
  });
});

describe('no successful delivery for SLUICE_DISABLE_AFTER_DAYS', () => {
  it('counts from the first failure: a millisecond short of the limit keeps the subscription, the limit disables it', async () => {
    const gw = await clockedGateway();
    const receiver = await receiverForTest(() => ({ status: 400 }));
    // Every attempt fails at once (400 is not retried): each delivery ends failed, none pending.
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    expect((await deliverOne(gw, sub.id)).status).toBe('failed');
    gw.clock.t = T0 + LIMIT - 1;
    expect((await deliverOne(gw, sub.id)).status).toBe('failed');
    expect(await subscription(gw, sub.id)).toMatchObject({ enabled: true, disabled_reason: null });
    gw.clock.t = T0 + LIMIT;
    expect((await deliverOne(gw, sub.id)).status).toBe('failed');
    // The completion that disables is the one just read: both are written in one transaction.
    expect(await subscription(gw, sub.id)).toMatchObject({ enabled: false, disabled_reason: 'no successful delivery for 2 days' });
    expect(receiver.requests).toHaveLength(3);
  });

  it('a success ends the run, even one past the limit; the next failure starts a new run, measured from itself', async () => {
    const gw = await clockedGateway();
    let status = 400;
    const receiver = await receiverForTest(() => ({ status }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    expect((await deliverOne(gw, sub.id)).status).toBe('failed');
    // Only a failure disables: a success at the limit clears the run instead.
    status = 200;
    gw.clock.t = T0 + LIMIT;
    expect((await deliverOne(gw, sub.id)).status).toBe('delivered');
    expect(await subscription(gw, sub.id)).toMatchObject({ enabled: true, disabled_reason: null });
    // Twice the limit after the first failure, but it is the first of a new run.
    status = 400;
    gw.clock.t = T0 + 2 * LIMIT;
    expect((await deliverOne(gw, sub.id)).status).toBe('failed');
    expect(await subscription(gw, sub.id)).toMatchObject({ enabled: true, disabled_reason: null });
    // The limit after the failure that started the new run.
    gw.clock.t = T0 + 3 * LIMIT;
    expect((await deliverOne(gw, sub.id)).status).toBe('failed');
    expect(await subscription(gw, sub.id)).toMatchObject({ enabled: false, disabled_reason: 'no successful delivery for 2 days' });
  });

  it('a success recorded after the run began keeps the subscription while it is younger than the limit', async () => {
    // Two instances on one database can leave this: one's failure, stamped by its clock before the
    // other's success, committed after it (failing_since older than last_success_at).
    const { again, sub } = await failingSinceT0SucceededAtHalfLimit();
    again.clock.t = T0 + LIMIT;
    expect((await deliverOne(again, sub.id)).status).toBe('failed');
    // Failing since T0, but the last success was only half the limit ago.
    expect(await subscription(again, sub.id)).toMatchObject({ enabled: true, disabled_reason: null });
  });

  it('a success stamped in the same millisecond as the failure after it does not hold the rule off for good', async () => {
    const gw = await clockedGateway({ SLUICE_DISABLE_AFTER_DAYS: '1' });
    let status = 200;
    const receiver = await receiverForTest(() => ({ status }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    // The clock stands still: the success and the first failure of the run share T0.
    expect((await deliverOne(gw, sub.id)).status).toBe('delivered');
    status = 400;
    expect((await deliverOne(gw, sub.id)).status).toBe('failed');
    gw.clock.t = T0 + DAY - 1;
    expect((await deliverOne(gw, sub.id)).status).toBe('failed');
    expect(await subscription(gw, sub.id)).toMatchObject({ enabled: true, disabled_reason: null });
    gw.clock.t = T0 + DAY;
    expect((await deliverOne(gw, sub.id)).status).toBe('failed');
    // One day, in the singular.
    expect(await subscription(gw, sub.id)).toMatchObject({ enabled: false, disabled_reason: 'no successful delivery for 1 day' });
  });

  it('a success recorded after the run began counts the limit from that success', async () => {
    const { again, sub } = await failingSinceT0SucceededAtHalfLimit();
    again.clock.t = T0 + LIMIT / 2 + LIMIT;
    expect((await deliverOne(again, sub.id)).status).toBe('failed');
    expect(await subscription(again, sub.id)).toMatchObject({ enabled: false, disabled_reason: 'no successful delivery for 2 days' });
  });

  it('a destination\'s own verdict keeps its reason when the run is past the limit too', async () => {
    const gw = await clockedGateway();
    let status = 400;
    const receiver = await receiverForTest(() => ({ status }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    expect((await deliverOne(gw, sub.id)).status).toBe('failed');
    status = 410;
    gw.clock.t = T0 + LIMIT;
    expect((await deliverOne(gw, sub.id)).attempts[0]).toMatchObject({ outcome: 'disabled', response: { status: 410 } });
    expect(await subscription(gw, sub.id)).toMatchObject({ enabled: false, disabled_reason: expect.stringContaining('410 Gone') });
  });
});
