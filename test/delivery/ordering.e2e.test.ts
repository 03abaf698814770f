import { describe, expect, it } from 'vitest';
import { waitFor, type TestGateway } from '../support/gateway.ts';
import type { ReceivedRequest } from '../support/receiver.ts';
import { createSubscription, deliveryFor, eventFrom, gatewayForTest, getDelivery, receiverForTest, uniqueEventId, waitForDelivery } from './delivery-helpers.ts';

/**
 * Ordered delivery per key, end to end: a real gateway, a loopback receiver, deliveries ordered by
 * `data.conversation_id`. What the receiver sees is the proof; the delivery log is checked too.
 */

const FAST = { schedule: ['0s', '100ms', '100ms'] };

/** A signal for a conversation; `n` tells the events of one conversation apart at the receiver. */
function signal(conversation: string, n: number) {
  const base = eventFrom('signal.frustration_spike', uniqueEventId(`ord_${conversation}_${n}`));
  return { ...base, data: { ...base.data, conversation_id: conversation, frustration_score: n / 100 } };
}

async function post(gw: TestGateway, event: { id: string }): Promise<{ id: string; deliveries: { id: string; subscription_id: string }[] }> {
  const res = await gw.api('POST', '/api/v1/events', event);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

/** `conversation/n` of a request the receiver got. */
const label = (req: ReceivedRequest) => {
  const body = JSON.parse(req.body);
  return `${body.data.conversation_id}/${Math.round(body.data.frustration_score * 100)}`;
};

async function orderedSubscription(gw: TestGateway, url: string, ordering: Record<string, unknown> = { key: 'data.conversation_id' }) {
  return createSubscription(gw, { url, events: ['signal.*'], retry: FAST, ordering });
}

describe('ordered delivery per key', () => {
  it('keeps the order of a key across retries: 500 then 200 on the first of three, and the receiver sees 1, 2, 3', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest((_req, index) => ({ status: index === 0 ? 500 : 200 }));
    const sub = await orderedSubscription(gw, `${receiver.url}/hook`);
    expect(sub.ordering).toEqual({ key: 'data.conversation_id', on_failure: 'continue' });
    const ids = [];
    for (const n of [1, 2, 3]) ids.push(deliveryFor(await post(gw, signal('conv_a', n)), sub.id));
    for (const id of ids) await waitForDelivery(gw, id);
    expect(receiver.requests.map(label)).toEqual(['conv_a/1', 'conv_a/1', 'conv_a/2', 'conv_a/3']);
    const [first, second] = await Promise.all(ids.slice(0, 2).map((id) => getDelivery(gw, id)));
    expect(first.attempts.map((a: any) => a.outcome)).toEqual(['retry', 'success']);
    expect(second).toMatchObject({ status: 'delivered', ordering_key: 'conv_a', waiting_for: null });
  });

  it('runs different keys in parallel: a key held by a slow destination holds up only itself', async () => {
    const gw = await gatewayForTest();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const receiver = await receiverForTest((req) => (label(req) === 'slow/1' ? { until: held } : { status: 200 }));
    const sub = await orderedSubscription(gw, `${receiver.url}/hook`);
    const slow1 = deliveryFor(await post(gw, signal('slow', 1)), sub.id);
    await waitFor(() => receiver.requests.some((r) => label(r) === 'slow/1'), 5_000, 'slow/1 on the wire');
    const slow2 = deliveryFor(await post(gw, signal('slow', 2)), sub.id);
    const fast = [];
    for (const n of [1, 2, 3]) fast.push(deliveryFor(await post(gw, signal('fast', n)), sub.id));
    // The other key goes on meanwhile, in its own order.
    for (const id of fast) await waitForDelivery(gw, id);
    expect(receiver.requests.map(label)).toEqual(['slow/1', 'fast/1', 'fast/2', 'fast/3']);
    // slow/2 waits, and the log says for what.
    const waiting = await getDelivery(gw, slow2);
    expect(waiting).toMatchObject({ status: 'pending', ordering_key: 'slow', waiting_for: { delivery_id: slow1, status: 'delivering' } });
    expect(waiting.waiting_for.reason).toMatch(/in flight/);
    release();
    await waitForDelivery(gw, slow2);
    expect(receiver.requests.map(label).slice(4)).toEqual(['slow/2']);
  });

  it('on_failure continue (the default): a permanent failure goes to the dead letters and the next one proceeds', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest((req) => ({ status: label(req) === 'c/1' ? 400 : 200 }));
    const sub = await orderedSubscription(gw, `${receiver.url}/hook`);
    const [c1, c2] = [deliveryFor(await post(gw, signal('c', 1)), sub.id), deliveryFor(await post(gw, signal('c', 2)), sub.id)];
    expect(await waitForDelivery(gw, c2)).toMatchObject({ status: 'delivered' });
    expect(await getDelivery(gw, c1)).toMatchObject({ status: 'failed', blocks_key: false });
    expect(receiver.requests.map(label)).toEqual(['c/1', 'c/2']);
    expect((await gw.api('GET', `/api/v1/webhooks/${sub.id}/blocked-keys`)).body).toEqual({ data: [] });
  });

  it('on_failure block: the key stops, is listed with its failed delivery, goes on after a replay in place or a skip', async () => {
    const gw = await gatewayForTest();
    let failing = new Set(['b/1', 'b/4']);
    const receiver = await receiverForTest((req) => ({ status: failing.has(label(req)) ? 422 : 200 }));
    const sub = await orderedSubscription(gw, `${receiver.url}/hook`, { key: 'data.conversation_id', on_failure: 'block' });
    const b = [];
    for (const n of [1, 2, 3]) b.push(deliveryFor(await post(gw, signal('b', n), ), sub.id));
    expect(await waitForDelivery(gw, b[0])).toMatchObject({ status: 'failed', blocks_key: true });
    // Another key is not held up: its delivery arriving is the positive signal that b/2 had its chance.
    await waitForDelivery(gw, deliveryFor(await post(gw, signal('other', 1)), sub.id));
    expect(receiver.requests.map(label)).toEqual(['b/1', 'other/1']);
    const blocked = await gw.api('GET', `/api/v1/webhooks/${sub.id}/blocked-keys`);
    expect(blocked.status).toBe(200);
    expect(blocked.body.data).toEqual([{ ordering_key: 'b', blocked_since: expect.any(String), waiting: 2, delivery: expect.objectContaining({ id: b[0], status: 'failed', blocks_key: true }) }]);
    expect(await getDelivery(gw, b[1])).toMatchObject({ status: 'pending', waiting_for: { delivery_id: b[0], status: 'failed' } });
    expect((await getDelivery(gw, b[1])).waiting_for.reason).toMatch(/replay or skip/);

    // The receiver is fixed: a replay of the blocking delivery goes in its place, then the rest in order.
    failing = new Set(['b/4']);
    const replay = await gw.api('POST', `/api/v1/deliveries/${b[0]}/replay`);
    expect(replay.status).toBe(202);
    expect(replay.body).toMatchObject({ id: b[0], replayed_as_new_delivery: false, blocks_key: false });
    for (const id of b) await waitForDelivery(gw, id, (d) => d.status === 'delivered');
    expect(receiver.requests.map(label)).toEqual(['b/1', 'other/1', 'b/1', 'b/2', 'b/3']);

    // Blocked again; this time skipped: the failed one stays a dead letter, the next goes.
    const b4 = deliveryFor(await post(gw, signal('b', 4)), sub.id);
    expect(await waitForDelivery(gw, b4)).toMatchObject({ status: 'failed', blocks_key: true });
    const b5 = deliveryFor(await post(gw, signal('b', 5)), sub.id);
    const skipRead = await gw.api('POST', `/api/v1/deliveries/${b4}/skip`, undefined, 'sk_read_wrong');
    expect(skipRead.status).toBe(401);
    const skip = await gw.api('POST', `/api/v1/deliveries/${b4}/skip`);
    expect(skip.status).toBe(200);
    expect(skip.body).toMatchObject({ id: b4, status: 'failed', blocks_key: false });
    await waitForDelivery(gw, b5);
    expect(receiver.requests.map(label).slice(5)).toEqual(['b/4', 'b/5']);
    const again = await gw.api('POST', `/api/v1/deliveries/${b4}/skip`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('not_blocking');
  });

  it('replays an earlier delivery of a key as a new delivery at the end of its queue, and says so', async () => {
    const gw = await gatewayForTest();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const receiver = await receiverForTest((req, index) => (label(req) === 'r/2' && index === 1 ? { until: held } : { status: 200 }));
    const sub = await orderedSubscription(gw, `${receiver.url}/hook`);
    const r1 = deliveryFor(await post(gw, signal('r', 1)), sub.id);
    await waitForDelivery(gw, r1);
    const r2 = deliveryFor(await post(gw, signal('r', 2)), sub.id);
    await waitFor(() => receiver.requests.length === 2, 5_000, 'r/2 on the wire');
    const r3 = deliveryFor(await post(gw, signal('r', 3)), sub.id);
    const replay = await gw.api('POST', `/api/v1/deliveries/${r1}/replay`);
    expect(replay.status).toBe(202);
    expect(replay.body).toMatchObject({ replayed_as_new_delivery: true, replay_of: r1, ordering_key: 'r', status: 'pending' });
    expect(replay.body.id).not.toBe(r1);
    expect(replay.body.note).toContain(replay.body.id);
    expect(await getDelivery(gw, r1)).toMatchObject({ status: 'delivered' });
    release();
    await waitForDelivery(gw, replay.body.id);
    expect(receiver.requests.map(label)).toEqual(['r/1', 'r/2', 'r/3', 'r/1']);
    // The same message again: receivers deduplicating on webhook-id see the replay as what it is.
    expect(receiver.requests[3].headers['webhook-id']).toBe(receiver.requests[0].headers['webhook-id']);
    expect((await getDelivery(gw, r3)).status).toBe('delivered');

    // A bulk replay does the same for each, and maps every delivery to the new one queued for it.
    const bulk = await gw.api('POST', `/api/v1/webhooks/${sub.id}/replay`, { status: 'delivered' });
    expect(bulk.status, JSON.stringify(bulk.body)).toBe(202);
    const finished = [r1, r2, r3, replay.body.id].sort();
    expect(Object.keys(bulk.body.replayed_as_new).sort()).toEqual(finished);
    expect(Object.values(bulk.body.replayed_as_new).sort()).toEqual([...bulk.body.delivery_ids].sort());
    for (const id of finished) expect(bulk.body.replayed_as_new[id]).not.toBe(id);
    for (const id of bulk.body.delivery_ids) await waitForDelivery(gw, id);
    expect(receiver.requests).toHaveLength(8);
  });

  it('says what a delivery of a key waits for while its subscription is paused, and what a replay queued behind it waits for', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest((_req, index) => ({ status: index === 0 ? 200 : 500 }));
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['signal.*'], retry: { schedule: ['0s', '1h'] }, ordering: { key: 'data.conversation_id' } });
    const done = deliveryFor(await post(gw, signal('p', 1)), sub.id);
    await waitForDelivery(gw, done);
    const retrying = deliveryFor(await post(gw, signal('p', 2)), sub.id);
    await waitForDelivery(gw, retrying, (d) => d.attempt_count === 1 && d.status === 'pending');
    const behind = deliveryFor(await post(gw, signal('p', 3)), sub.id);
    const notFinished = { delivery_id: retrying, status: 'pending', reason: 'an earlier delivery of the same key, not finished yet' };
    expect(await getDelivery(gw, behind)).toMatchObject({ status: 'pending', paused: false, waiting_for: notFinished });
    // A replay of the finished one goes to the end of the key's queue, pending behind the others.
    const replay = await gw.api('POST', `/api/v1/deliveries/${done}/replay`);
    expect(replay.body).toMatchObject({ replayed_as_new_delivery: true, status: 'pending', paused: false, waiting_for: notFinished });

    expect((await gw.api('PATCH', `/api/v1/webhooks/${sub.id}`, { enabled: false })).status).toBe(200);
    const paused = { delivery_id: retrying, status: 'pending', reason: 'an earlier delivery of the same key, paused with its subscription' };
    expect(await getDelivery(gw, retrying)).toMatchObject({ status: 'pending', paused: true, waiting_for: null });
    expect(await getDelivery(gw, behind)).toMatchObject({ status: 'pending', waiting_for: paused });
    // Replayed again now, it is queued paused, behind them.
    const again = await gw.api('POST', `/api/v1/deliveries/${done}/replay`);
    expect(again.body).toMatchObject({ replayed_as_new_delivery: true, status: 'pending', paused: true, waiting_for: paused });
    const listed = await gw.api('GET', `/api/v1/webhooks/${sub.id}/deliveries`);
    expect(listed.body.data.find((d: { id: string }) => d.id === again.body.id)).toMatchObject({ paused: true, waiting_for: paused });
    expect(receiver.requests).toHaveLength(2);
  });

  it('leaves an event whose key gives nothing unordered, and orders a whole subscription with "*"', async () => {
    const gw = await gatewayForTest();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const receiver = await receiverForTest((req) => (req.url === '/all' && label(req) === 'x/1' ? { until: held } : { status: 200 }));
    const keyed = await orderedSubscription(gw, `${receiver.url}/keyed`, { key: 'data.missing_field' });
    const all = await orderedSubscription(gw, `${receiver.url}/all`, { key: '*' });
    const first = await post(gw, signal('x', 1));
    await waitFor(() => receiver.requests.some((r) => r.url === '/all'), 5_000, 'x/1 on the wire');
    const second = await post(gw, signal('y', 2));
    // Unordered: it goes while the first of its subscription... has long gone; "*": it waits for x/1.
    expect(await waitForDelivery(gw, deliveryFor(second, keyed.id))).toMatchObject({ status: 'delivered', ordering_key: null });
    expect(await getDelivery(gw, deliveryFor(second, all.id))).toMatchObject({ status: 'pending', ordering_key: '*', waiting_for: { delivery_id: deliveryFor(first, all.id) } });
    release();
    await waitForDelivery(gw, deliveryFor(second, all.id));
    expect(receiver.requests.filter((r) => r.url === '/all').map(label)).toEqual(['x/1', 'y/2']);
  });

  it('refuses an ordering key that does not compile, with its position', async () => {
    const gw = await gatewayForTest();
    const res = await gw.api('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/x', events: ['signal.*'], ordering: { key: 'data.(' } });
    expect(res.status).toBe(422);
    expect(res.body.error.details[0]).toMatchObject({ path: '$.ordering.key', line: 1 });
    const bad = await gw.api('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/x', events: ['signal.*'], ordering: { key: 'data.a', on_failure: 'stop' } });
    expect(bad.status).toBe(422);
    expect(bad.body.error.details).toEqual([{ path: '$.ordering.on_failure', message: 'must be one of "continue", "block"' }]);
  });
});
