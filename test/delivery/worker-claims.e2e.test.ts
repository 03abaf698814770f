import { describe, expect, it, onTestFinished } from 'vitest';
import { openDatabase, waitFor, type TestGateway } from '../support/gateway.ts';
import type { ReceivedRequest } from '../support/receiver.ts';
import { createSubscription, deliveryFor, eventFrom, gatewayForTest, getDelivery, postEvent, receiverForTest, uniqueEventId, waitForDelivery } from './delivery-helpers.ts';

/**
 * How much the worker claims: never more deliveries than SLUICE_DELIVERY_CONCURRENCY at a time,
 * whether they come to it as ids just committed (notify) or from the queue (a poll). A claim
 * leases the delivery and counts an unfinished claim against it (a process that dies holding it
 * is counted as a crash), so work past the limit stays pending instead. Real gateway, real
 * receiver, real SQLite; the receiver holds each request until the test lets it answer.
 */

/** An ordered event: ordered deliveries are not preclaimed at ingest, so the worker is notified of them. */
function signal(conversation: string) {
  const base = eventFrom('signal.frustration_spike', uniqueEventId(`claim_${conversation}`));
  return { ...base, data: { ...base.data, conversation_id: conversation } };
}

const conversationOf = (req: ReceivedRequest) => JSON.parse(req.body).data.conversation_id as string;

/** The statuses of the deliveries, counted. */
async function statuses(gw: TestGateway, ids: string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const id of ids) {
    const { status } = await getDelivery(gw, id);
    counts[status] = (counts[status] ?? 0) + 1;
  }
  return counts;
}

describe('the worker claims no more than it has room for', () => {
  it('of five deliveries committed at once with room for two, leases two and leaves three pending; each finish claims one more', async () => {
    const gw = await gatewayForTest({ SLUICE_DELIVERY_CONCURRENCY: '2', SLUICE_DESTINATION_CONCURRENCY: '50' });
    const answers: (() => void)[] = [];
    const receiver = await receiverForTest(() => ({ until: new Promise<void>((resolve) => answers.push(resolve)) }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['signal.*'], timeout: 120, ordering: { key: 'data.conversation_id' } });

    // Five keys, so none waits for another: all five are due now and the worker is told of all five.
    const res = await gw.api('POST', '/api/v1/events/batch', ['a', 'b', 'c', 'd', 'e'].map(signal));
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const ids: string[] = res.body.data.map((e: { deliveries: { id: string; subscription_id: string }[] }) => e.deliveries.find((d) => d.subscription_id === sub.id)!.id);
    expect(ids).toHaveLength(5);

    await waitFor(() => receiver.requests.length === 2, 10_000, 'two requests on the wire');
    // The claim of the notified ids took two: the other three are not leased.
    expect(await statuses(gw, ids)).toEqual({ delivering: 2, pending: 3 });
    expect(gw.sluice.worker!.activeCount).toBe(2);

    // One answer frees one slot: the poll that follows claims one from the queue, not the rest.
    answers.shift()!();
    await waitFor(() => receiver.requests.length === 3, 10_000, 'a third request once a slot was freed');
    await waitFor(async () => (await statuses(gw, ids)).delivered === 1, 10_000, 'the first delivery recorded');
    expect(await statuses(gw, ids)).toEqual({ delivered: 1, delivering: 2, pending: 2 });
    expect(gw.sluice.worker!.activeCount).toBe(2);

    // Everything answers from now on: all five delivered, each sent once.
    receiver.respondWith(() => ({ status: 200 }));
    while (answers.length) answers.shift()!();
    await waitFor(async () => (await statuses(gw, ids)).delivered === 5, 15_000, 'all five delivered');
    expect(receiver.requests.map(conversationOf).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
  }, 60_000);

  it('gives back the slots it reserved for deliveries stored already leased: with room for two, the third and fourth events are sent too', async () => {
    const gw = await gatewayForTest({ SLUICE_DELIVERY_CONCURRENCY: '2' });
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
    // One at a time, each with the worker idle: each is stored leased in a slot reserved for it at ingest.
    for (let n = 1; n <= 4; n++) {
      expect(await waitForDelivery(gw, deliveryFor(await postEvent(gw), sub.id))).toMatchObject({ status: 'delivered', attempt_count: 1 });
      await waitFor(() => gw.sluice.worker!.activeCount === 0, 5_000, 'the worker to finish');
    }
    expect(receiver.requests).toHaveLength(4);
  });
});

/**
 * Deliveries made due by a commit or by a finish are claimed by id at once (notify), not left to
 * the next scan of the queue. Here the scan finds nothing (claimDue stubbed), so only those claims
 * can send anything.
 */
describe('claims by id, without the queue scan', () => {
  /** A gateway whose scan of the queue finds nothing; returns its storage. */
  async function withoutScan(gw: TestGateway) {
    const storage = gw.sluice.storage;
    storage.claimDue = async () => [];
    return storage;
  }

  /**
   * An ordered subscription whose receiver holds its first request until `answer` is called;
   * `post` sends an event of key `k` and returns its delivery.
   */
  async function firstHeld(gw: TestGateway) {
    let answer!: () => void;
    const first = new Promise<void>((resolve) => (answer = resolve));
    const receiver = await receiverForTest((_req, index) => (index === 0 ? { until: first } : { status: 200 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['signal.*'], timeout: 120, ordering: { key: 'data.conversation_id' } });
    const post = async () => {
      const res = await gw.api('POST', '/api/v1/events', signal('k'));
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      return deliveryFor(res.body, sub.id);
    };
    return { receiver, answer, post };
  }

  it('sends what a commit makes due and the next of a key when the one ahead of it finishes', async () => {
    const gw = await gatewayForTest();
    await withoutScan(gw);
    const { receiver, answer, post } = await firstHeld(gw);
    const one = await post();
    await waitFor(() => receiver.requests.length === 1, 10_000, 'the first delivery on the wire');
    const two = await post();
    expect(await getDelivery(gw, two)).toMatchObject({ status: 'pending', waiting_for: { delivery_id: one } });
    answer();
    expect(await waitForDelivery(gw, one)).toMatchObject({ status: 'delivered' });
    expect(await waitForDelivery(gw, two)).toMatchObject({ status: 'delivered', attempt_count: 1 });
    expect(receiver.requests).toHaveLength(2);
  });

  it('a claim by id that fails neither stops the worker nor goes unhandled: the next poll sends the delivery', async () => {
    // A rejection nobody handles would end the gateway's process (Node's default).
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    onTestFinished(() => void process.off('unhandledRejection', onUnhandled));
    const gw = await gatewayForTest();
    const storage = gw.sluice.storage;
    const claimDue = storage.claimDue.bind(storage);
    const claimByIds = storage.claimByIds.bind(storage);
    // The claim by id fails once (a locked database); the queue scan stays off until it has.
    let failed = false;
    storage.claimByIds = async (...args) => {
      if (failed) return claimByIds(...args);
      failed = true;
      throw new Error('database is locked');
    };
    storage.claimDue = async (...args) => (failed ? claimDue(...args) : []);
    const { receiver, answer, post } = await firstHeld(gw);
    answer();
    expect(await waitForDelivery(gw, await post())).toMatchObject({ status: 'delivered', attempt_count: 1 });
    expect(failed).toBe(true);
    expect(receiver.requests).toHaveLength(1);
    expect(unhandled).toEqual([]);
  });

  it('the lease sweep wakes the next of a key whose wake was missed, and claims it', async () => {
    // A sweep every third of a second.
    const gw = await gatewayForTest({ SLUICE_LEASE_SECONDS: '1' });
    const storage = await withoutScan(gw);
    // The finish of the first wakes the second in storage, but the worker is not told (a lost wake).
    const complete = storage.completeAttempts.bind(storage);
    storage.completeAttempts = async (completions, now) => ({ ...(await complete(completions, now)), woken: [] });
    const { receiver, answer, post } = await firstHeld(gw);
    const one = await post();
    await waitFor(() => receiver.requests.length === 1, 10_000, 'the first delivery on the wire');
    const two = await post();
    answer();
    expect(await waitForDelivery(gw, one)).toMatchObject({ status: 'delivered' });

    // Woken in storage, claimed by nobody; set back to waiting, as a wake lost between two
    // instances leaves it (the key is free, the delivery still waits).
    const db = openDatabase(gw);
    try {
      await waitFor(() => (db.prepare('SELECT status FROM deliveries WHERE id = ?').get(two) as { status: string }).status === 'pending', 5_000, 'the second woken in storage');
      expect(db.prepare("UPDATE deliveries SET status = 'waiting' WHERE id = ? AND status = 'pending'").run(two).changes).toBe(1);
    } finally {
      db.close();
    }
    expect(await waitForDelivery(gw, two)).toMatchObject({ status: 'delivered', attempt_count: 1 });
    expect(receiver.requests).toHaveLength(2);
  });
});
