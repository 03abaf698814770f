import { describe, expect, it, onTestFinished } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import type { ClaimedDelivery, Storage } from '../../src/storage/types.ts';
import { startGateway, waitFor, type TestGateway } from '../support/gateway.ts';
import { createSubscription, deliveryFor, getDelivery, postEvent, receiverForTest, waitForDelivery, type Receiver } from './delivery-helpers.ts';

/**
 * The worker's slots and its stop, driven in this process (so a mutation run can switch their
 * code): the global slots that bound the wire when the claim room was overbooked, the
 * saturation check of a busy destination, and what a stop does to attempts on the wire, waiting
 * for a slot, or reaching their slot after it began. Real gateways, receivers and SQLite files.
 */

const GRACE_OVER = 'shutdown grace period over; unfinished attempts will be retried after restart';

/** A gateway for this test only, its log lines kept (parsed) in `logs`. */
async function loggedGateway(env: Record<string, string>, now?: () => number): Promise<TestGateway & { logs: Record<string, any>[] }> {
  const logs: Record<string, any>[] = [];
  const logger = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line)) });
  const gw = await startGateway(env, { logger, now });
  onTestFinished(() => gw.stop());
  return Object.assign(gw, { logs });
}

/**
 * A receiver that holds the requests `hold` picks until the test lets each go (by arrival
 * index), counting how many it holds at once.
 */
async function holdingReceiver(hold: (index: number) => boolean = () => true) {
  const held = { now: 0, max: 0, releases: [] as (() => void)[] };
  const receiver = await receiverForTest((_req, index) => {
    if (!hold(index)) return { status: 200 };
    held.now += 1;
    held.max = Math.max(held.max, held.now);
    const until = new Promise<void>((resolve) => (held.releases[index] = resolve)).finally(() => (held.now -= 1));
    return { status: 200, until };
  });
  // Nothing is left hanging when the test ends (the receiver closes after the gateway stops).
  onTestFinished(() => held.releases.forEach((release) => release()));
  return { receiver, held };
}

/** Settles `promise` or fails after `ms`: a bound against a hang, never a measurement. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once everything already queued (promise continuations included) has run. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * SLUICE_DESTINATION_CONCURRENCY=1 and a long grace period: one subscription's first attempt
 * on the wire, held by the receiver until the test lets it go; later requests are answered.
 */
async function firstAttemptOnTheWire(now?: () => number) {
  const gw = await loggedGateway({ SLUICE_DESTINATION_CONCURRENCY: '1', SLUICE_SHUTDOWN_GRACE_SECONDS: '20' }, now);
  const { receiver, held } = await holdingReceiver((index) => index === 0);
  const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'] });
  const onWire = deliveryFor(await postEvent(gw), sub.id);
  await waitFor(() => receiver.requests.length === 1, 15_000, 'the first attempt on the wire');
  return { gw, worker: gw.sluice.worker!, receiver, held, sub, onWire };
}

type ClaimMethod = 'claimDue' | 'claimByIds';

/**
 * Holds the worker's next claim (by due time or by ids) at the database until `open` is called:
 * `started` resolves when the claim has asked, `ended` with how many it claimed.
 */
function holdNextClaim(storage: Storage) {
  let started!: () => void;
  let open!: () => void;
  let ended!: (count: number) => void;
  const claim = {
    started: new Promise<void>((resolve) => (started = resolve)),
    ended: new Promise<number>((resolve) => (ended = resolve)),
    open: () => open(),
  };
  const gate = new Promise<void>((resolve) => (open = resolve));
  let armed = true;
  const wrap = <M extends ClaimMethod>(method: M) => {
    const original = storage[method].bind(storage) as (...args: Parameters<Storage[M]>) => Promise<ClaimedDelivery[]>;
    storage[method] = (async (...args: Parameters<Storage[M]>) => {
      if (!armed) return original(...args);
      armed = false;
      started();
      await gate;
      const rows = await original(...args);
      ended(rows.length);
      return rows;
    }) as Storage[M];
  };
  wrap('claimDue');
  wrap('claimByIds');
  return claim;
}

/**
 * Four deliveries for SLUICE_DELIVERY_CONCURRENCY=2 through the claim room alone: a claim
 * counts the room (two), and while it is at the database, ingest finds the same room still free
 * (the claimed ones are not counted until the claim returns) and reserves it for two deliveries
 * it commits already leased. Returns when those two are on the wire and the claim has returned
 * the other two, whose attempts have gone as far as they may without a global slot.
 */
async function overbook(gw: TestGateway, subscriptionId: string, receiver: Receiver): Promise<{ claimed: string[]; preclaimed: string[] }> {
  const worker = gw.sluice.worker!;
  // An ingest commit still under way holds the whole room: these two are stored pending, for a claim.
  expect(worker.reserve(2).count).toBe(2);
  const claimed = [deliveryFor(await postEvent(gw), subscriptionId), deliveryFor(await postEvent(gw), subscriptionId)];
  for (const id of claimed) expect(await getDelivery(gw, id)).toMatchObject({ status: 'pending', attempt_count: 0 });

  const claim = holdNextClaim(gw.sluice.storage);
  worker.release(2);
  worker.poke();
  await within(claim.started, 15_000, 'the claim');
  // The claim counted a room of two; ingest sees the same two slots free and preclaims.
  const events = [await postEvent(gw), await postEvent(gw)];
  const preclaimed = events.map((accepted) => deliveryFor(accepted, subscriptionId));
  await waitFor(() => receiver.requests.length === 2, 15_000, 'the preclaimed deliveries on the wire');
  // They are the preclaimed ones: the claimed two are still at the database.
  for (const accepted of events) expect(receiver.requests.some((r) => r.body.includes(accepted.id))).toBe(true);

  // The claimed ones look their subscription up (once each) on the way to their slots.
  const subscriptions = gw.sluice.subscriptions;
  const runtime = subscriptions.runtime.bind(subscriptions);
  let lookups = 0;
  subscriptions.runtime = async (id) => {
    const found = await runtime(id);
    lookups += 1;
    return found;
  };
  claim.open();
  expect(await within(claim.ended, 15_000, 'the claim to return')).toBe(2);
  await waitFor(() => lookups >= 2, 15_000, 'the claimed attempts to look their subscription up');
  // Everything from there to the global slot runs without I/O: done by the next turn.
  await nextTurn();
  expect(worker.activeCount).toBe(4);
  return { claimed, preclaimed };
}

describe('global slots (SLUICE_DELIVERY_CONCURRENCY)', () => {
  it('bound the wire when a preclaim reservation overbooks the claim room: never more than the limit in flight', async () => {
    const gw = await loggedGateway({ SLUICE_DELIVERY_CONCURRENCY: '2', SLUICE_DESTINATION_CONCURRENCY: '50' });
    const worker = gw.sluice.worker!;
    const { receiver, held } = await holdingReceiver();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], timeout: 120 });

    const { claimed, preclaimed } = await overbook(gw, sub.id, receiver);
    // Four attempts under way, two on the wire: the other two wait for a global slot.
    expect(worker.sendingCount).toBe(2);
    expect(receiver.requests).toHaveLength(2);

    // Each answer frees one global slot, handed to one waiting attempt.
    for (let answered = 0; answered < 2; answered++) {
      held.releases[answered]();
      await waitFor(() => receiver.requests.length === 3 + answered, 15_000, `attempt ${3 + answered} to take the freed slot`);
      expect(held.now).toBe(2);
    }
    held.releases[2]();
    held.releases[3]();
    for (const id of [...preclaimed, ...claimed]) expect(await waitForDelivery(gw, id)).toMatchObject({ status: 'delivered', attempt_count: 1 });
    expect(held.max).toBe(2);
    expect(receiver.requests).toHaveLength(4);
  }, 60_000);
});

describe('per-destination slots: the saturation check', () => {
  it("counts every subscription sending to a saturated destination, the first one seen too: a claim passes over that one's deliveries", async () => {
    const gw = await loggedGateway({ SLUICE_DESTINATION_CONCURRENCY: '1' });
    const worker = gw.sluice.worker!;
    const { receiver, held } = await holdingReceiver((index) => index === 0);
    const other = await receiverForTest();
    // Two subscriptions to one origin; the first one's delivery takes its only slot.
    const first = await createSubscription(gw, { url: `${receiver.url}/first`, events: ['call.ended'] });
    const second = await createSubscription(gw, { url: `${receiver.url}/second`, events: ['lead.created'] });
    const onWire = deliveryFor(await postEvent(gw, 'call.ended'), first.id);
    await waitFor(() => receiver.requests.length === 1, 15_000, "the first subscription's attempt on the wire");
    const queued = deliveryFor(await postEvent(gw, 'lead.created'), second.id);
    await waitFor(() => worker.isSaturated(second.id), 15_000, "the second subscription's attempt to wait for the slot");
    expect(worker.saturatedSubscriptions()).toEqual(new Set([first.id, second.id]));

    // Another delivery of the first subscription stays pending: claims pass it over. Claims go
    // in due order, so once a delivery to another origin due after it has been sent, a claim
    // not passing it over would have taken it.
    const passedOver = deliveryFor(await postEvent(gw, 'call.ended'), first.id);
    const later = await createSubscription(gw, { url: `${other.url}/later`, events: ['call.failed'], retry: { schedule: ['300ms'] } });
    const laterDelivery = deliveryFor(await postEvent(gw, 'call.failed'), later.id);
    expect(await waitForDelivery(gw, laterDelivery)).toMatchObject({ status: 'delivered' });
    expect(await getDelivery(gw, passedOver)).toMatchObject({ status: 'pending', attempt_count: 0 });

    held.releases[0]();
    for (const id of [onWire, queued, passedOver]) expect(await waitForDelivery(gw, id)).toMatchObject({ status: 'delivered', attempt_count: 1 });
    // The destination is idle again: nothing is counted against it.
    await waitFor(() => worker.activeCount === 0, 15_000, 'the worker to be idle');
    expect(worker.saturatedSubscriptions()).toBeUndefined();
    expect(worker.isSaturated(first.id)).toBe(false);
  }, 60_000);
});

describe('per-destination slots: saturated means a full queue', () => {
  it('a destination is saturated while as many attempts wait as it may have on the wire, and no longer once fewer wait', async () => {
    const gw = await loggedGateway({ SLUICE_DESTINATION_CONCURRENCY: '2' });
    const worker = gw.sluice.worker!;
    const { receiver, held } = await holdingReceiver();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], timeout: 120 });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(deliveryFor(await postEvent(gw), sub.id));
    // Two on the wire, two waiting: the queue is full.
    await waitFor(() => worker.isSaturated(sub.id), 15_000, 'two attempts waiting behind the two on the wire');
    expect(receiver.requests).toHaveLength(2);
    expect(worker.saturatedSubscriptions()).toEqual(new Set([sub.id]));
    // One answer hands its slot to a waiting attempt: one waits now, fewer than the limit.
    held.releases[0]();
    await waitFor(() => receiver.requests.length === 3, 15_000, 'a waiting attempt to take the freed slot');
    expect(worker.isSaturated(sub.id)).toBe(false);
    expect(worker.saturatedSubscriptions()).toBeUndefined();
    for (let i = 1; i < 4; i++) held.releases[i]?.();
    await waitFor(() => receiver.requests.length === 4, 15_000, 'the last attempt');
    held.releases[3]();
    for (const id of ids) expect(await waitForDelivery(gw, id)).toMatchObject({ status: 'delivered', attempt_count: 1 });
  }, 60_000);
});

describe('per-destination slots: an idle destination', () => {
  it('forgets the subscriptions seen sending to it: one moved to another origin is not held back when the old one is saturated again', async () => {
    const gw = await loggedGateway({ SLUICE_DESTINATION_CONCURRENCY: '1' });
    const worker = gw.sluice.worker!;
    const { receiver: old, held } = await holdingReceiver((index) => index === 1);
    const moved = await receiverForTest();
    const mover = await createSubscription(gw, { url: `${old.url}/mover`, events: ['call.ended'] });
    const stayer = await createSubscription(gw, { url: `${old.url}/stayer`, events: ['lead.created'], timeout: 120 });
    // The mover sends to the old origin once, which is then idle; then it moves.
    expect(await waitForDelivery(gw, deliveryFor(await postEvent(gw, 'call.ended'), mover.id))).toMatchObject({ status: 'delivered' });
    await waitFor(() => worker.activeCount === 0, 15_000, 'the worker to be idle');
    expect((await gw.api('PATCH', `/api/v1/webhooks/${mover.id}`, { url: `${moved.url}/mover` })).status).toBe(200);

    // The old origin saturated again, by the other subscription.
    const onWire = deliveryFor(await postEvent(gw, 'lead.created'), stayer.id);
    await waitFor(() => old.requests.length === 2, 15_000, "the other subscription's attempt on the wire");
    const queued = deliveryFor(await postEvent(gw, 'lead.created'), stayer.id);
    await waitFor(() => worker.isSaturated(stayer.id), 15_000, 'its next attempt to wait for the slot');
    expect(worker.isSaturated(mover.id)).toBe(false);
    expect(worker.saturatedSubscriptions()).toEqual(new Set([stayer.id]));
    // The mover's new delivery goes to its new origin while the old one stays saturated.
    expect(await waitForDelivery(gw, deliveryFor(await postEvent(gw, 'call.ended'), mover.id), undefined, 15_000)).toMatchObject({ status: 'delivered', attempt_count: 1 });
    expect(moved.requests).toHaveLength(1);
    expect(worker.isSaturated(stayer.id)).toBe(true);

    held.releases[1]();
    for (const id of [onWire, queued]) expect(await waitForDelivery(gw, id)).toMatchObject({ status: 'delivered', attempt_count: 1 });
  }, 60_000);
});

describe('stop', () => {
  it('finishes and records the attempt on the wire, sends back the one waiting for its destination, takes on nothing new, and returns without a warning', async () => {
    const { gw, worker, receiver, held, sub, onWire } = await firstAttemptOnTheWire();
    const waiting = deliveryFor(await postEvent(gw), sub.id);
    await waitFor(() => worker.isSaturated(sub.id), 15_000, 'the second attempt to wait for the slot');

    const stopped = worker.stop();
    // From the moment it is called: ingest reserves nothing (its deliveries stay pending for
    // the next start), and nothing waits for the destination any more.
    expect(worker.reserve(1)).toEqual({ count: 0, leaseUntil: 0 });
    expect(worker.isSaturated(sub.id)).toBe(false);
    // The waiting attempt goes back to the queue unsent, while the first is still on the wire.
    expect(await waitForDelivery(gw, waiting, (d) => d.status === 'pending', 15_000)).toMatchObject({ attempt_count: 0 });
    expect(held.now).toBe(1);
    // A delivery ingest committed already leased as the stop began is left to its lease: the
    // next start sends it.
    const [late] = await gw.sluice.storage.claimByIds([waiting], Date.now(), Date.now() + 60_000);
    expect(late.delivery.id).toBe(waiting);
    worker.startPreclaimed([late]);
    expect(worker.activeCount).toBe(1);

    held.releases[0]();
    await within(stopped, 15_000, 'the stop');
    // Recorded before the stop returned.
    expect(await getDelivery(gw, onWire)).toMatchObject({ status: 'delivered', attempt_count: 1 });
    expect(await getDelivery(gw, waiting)).toMatchObject({ status: 'delivering', attempt_count: 0 });
    expect(receiver.requests).toHaveLength(1);
    expect(gw.logs.filter((line) => line.msg === GRACE_OVER)).toEqual([]);
  }, 60_000);

  it('returns when the grace period is over with an attempt still on the wire, and says so', async () => {
    const gw = await loggedGateway({ SLUICE_SHUTDOWN_GRACE_SECONDS: '0.5' });
    const worker = gw.sluice.worker!;
    const { receiver, held } = await holdingReceiver();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], timeout: 120 });
    const id = deliveryFor(await postEvent(gw), sub.id);
    await waitFor(() => receiver.requests.length === 1, 15_000, 'the attempt on the wire');

    const began = performance.now();
    await within(worker.stop(), 15_000, 'the stop');
    // It waited for the attempt until the grace period was over, not longer.
    expect(performance.now() - began).toBeGreaterThanOrEqual(450);
    expect(gw.logs.filter((line) => line.msg === GRACE_OVER)).toEqual([expect.objectContaining({ level: 40, active: 1 })]);
    // Unfinished: still leased, for the next start.
    expect(await getDelivery(gw, id)).toMatchObject({ status: 'delivering', attempt_count: 0 });
    // The attempt was not cut off: once answered, it is recorded.
    held.releases[0]();
    expect(await waitForDelivery(gw, id)).toMatchObject({ status: 'delivered', attempt_count: 1 });
  }, 60_000);

  it('sends back attempts waiting for a global slot, unsent, while those on the wire finish', async () => {
    const gw = await loggedGateway({ SLUICE_DELIVERY_CONCURRENCY: '2', SLUICE_DESTINATION_CONCURRENCY: '50', SLUICE_SHUTDOWN_GRACE_SECONDS: '20' });
    const worker = gw.sluice.worker!;
    const { receiver, held } = await holdingReceiver();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], timeout: 120 });
    const { claimed, preclaimed } = await overbook(gw, sub.id, receiver);
    expect(worker.sendingCount).toBe(2);

    const stopped = worker.stop();
    for (const id of claimed) expect(await waitForDelivery(gw, id, (d) => d.status === 'pending', 15_000)).toMatchObject({ attempt_count: 0 });
    expect(held.now).toBe(2);
    held.releases[0]();
    held.releases[1]();
    await within(stopped, 15_000, 'the stop');
    for (const id of preclaimed) expect(await getDelivery(gw, id)).toMatchObject({ status: 'delivered', attempt_count: 1 });
    expect(receiver.requests).toHaveLength(2);
    expect(gw.logs.filter((line) => line.msg === GRACE_OVER)).toEqual([]);
  }, 60_000);

  it('an attempt reaching its destination slot after the stop began is not sent (its subscription lookup was slow)', async () => {
    const { gw, worker, receiver, held, sub, onWire } = await firstAttemptOnTheWire();

    // The next attempt's subscription lookup (the subscription store busy, say) waits for the test.
    const subscriptions = gw.sluice.subscriptions;
    const runtime = subscriptions.runtime.bind(subscriptions);
    let lookupStarted!: () => void;
    const started = new Promise<void>((resolve) => (lookupStarted = resolve));
    let finishLookup!: () => void;
    const lookupHeld = new Promise<void>((resolve) => (finishLookup = resolve));
    subscriptions.runtime = async (id) => {
      subscriptions.runtime = runtime;
      lookupStarted();
      await lookupHeld;
      return runtime(id);
    };
    const late = deliveryFor(await postEvent(gw), sub.id);
    await within(started, 15_000, 'the second attempt to look its subscription up');

    const stopped = worker.stop();
    finishLookup();
    // Back to the queue at once, unsent: not queued for the slot the first attempt still holds.
    expect(await waitForDelivery(gw, late, (d) => d.status === 'pending', 15_000)).toMatchObject({ attempt_count: 0 });
    expect(held.now).toBe(1);
    held.releases[0]();
    await within(stopped, 15_000, 'the stop');
    expect(await getDelivery(gw, onWire)).toMatchObject({ status: 'delivered', attempt_count: 1 });
    expect(receiver.requests).toHaveLength(1);
    expect(gw.logs.filter((line) => line.msg === GRACE_OVER)).toEqual([]);
  }, 60_000);

  it('an attempt handed its destination slot as the stop begins does not take a global slot: it is not sent', async () => {
    // The clock seam runs inside the worker: the stop begins there, in the same turn as the
    // first attempt finishes and hands its destination slot to the waiting one.
    let tick: (() => void) | undefined;
    const { gw, worker, receiver, held, sub, onWire: first } = await firstAttemptOnTheWire(() => {
      tick?.();
      return Date.now();
    });
    const handedOver = deliveryFor(await postEvent(gw), sub.id);
    await waitFor(() => worker.isSaturated(sub.id), 15_000, 'the second attempt to wait for the slot');

    let stopped: Promise<void> | undefined;
    // The first reading of the clock once the first attempt is off the wire: it has just
    // given its slots back, the destination's to the waiting attempt.
    tick = () => {
      if (worker.sendingCount !== 0) return;
      tick = undefined;
      stopped = worker.stop();
    };
    held.releases[0]();
    await waitFor(() => stopped !== undefined, 15_000, 'the stop to begin');
    await within(stopped!, 15_000, 'the stop');
    expect(await getDelivery(gw, first)).toMatchObject({ status: 'delivered', attempt_count: 1 });
    expect(await getDelivery(gw, handedOver)).toMatchObject({ status: 'pending', attempt_count: 0 });
    expect(receiver.requests).toHaveLength(1);
  }, 60_000);
});
