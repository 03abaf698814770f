/**
 * The pagerduty connector end to end: a real gateway delivering to a local fake of the
 * Events API v2 (202 JSON on success, the 400 `invalid event` body, 429, 5xx) that also
 * models PagerDuty's alert de-duplication, so the tests can count incidents.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, waitFor, type TestGateway } from '../support/gateway.ts';
import type { ReceivedRequest, Responder } from '../support/receiver.ts';
import { createSubscription, deliveryFor, eventFrom, gatewayForTest, getDelivery, receiverForTest, sentinelArrives, uniqueEventId, waitForDelivery } from '../delivery/delivery-helpers.ts';
import { PAGERDUTY_ORDERING } from '../../connectors/pagerduty/index.ts';

const ROUTING_KEY = 'Rk3yS3cr3t0123456789abcdefABCDEF';
const FAST = { schedule: ['0s', '50ms', '50ms'] };

const json = (status: number, body: unknown): ReturnType<Responder> => ({ status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/**
 * A stand-in for events.pagerduty.com/v2/enqueue. Like PagerDuty, a trigger whose
 * dedup_key matches an open alert only adds to it, resolve closes the open alert, and a resolve
 * for a key with no open alert is dropped (a later trigger with that key opens a new alert).
 * `override` answers a request differently (after the model has processed it, like a
 * response lost on the way back).
 */
async function fakePagerDuty(
  override: (req: ReceivedRequest, index: number) => ReturnType<Responder> | undefined = () => undefined,
  opts: { refuse?: (req: ReceivedRequest, index: number) => boolean } = {},
) {
  const open = new Set<string>();
  const incidents: string[] = [];
  const resolved: string[] = [];
  const receiver = await receiverForTest((req, index) => {
    const event = JSON.parse(req.body);
    if (req.url !== '/v2/enqueue') return json(404, { message: 'Not Found' });
    // PagerDuty limits an event to 512 KB (read here as the stricter 512,000 bytes).
    if (Buffer.byteLength(req.body) > 512_000) {
      return json(400, { status: 'invalid event', message: 'Event object is invalid', errors: ['Event object is too large'] });
    }
    if (typeof event.routing_key !== 'string' || event.routing_key.length !== 32) {
      return json(400, { status: 'invalid event', message: 'Event object is invalid', errors: ["Length of 'routing_key' is incorrect (should be 32 characters)"] });
    }
    // Not ingested at all (a 503 before PagerDuty took the event): the model does not change.
    if (opts.refuse?.(req, index)) return override(req, index);
    if (event.event_action === 'trigger' && !open.has(event.dedup_key)) {
      open.add(event.dedup_key);
      incidents.push(event.dedup_key);
    }
    if (event.event_action === 'resolve' && open.delete(event.dedup_key)) resolved.push(event.dedup_key);
    return override(req, index) ?? json(202, { status: 'success', message: 'Event processed', dedup_key: event.dedup_key });
  });
  return { ...receiver, incidents, resolved, open, events: () => receiver.requests.map((r) => JSON.parse(r.body)) };
}

async function subscribe(gw: TestGateway, fakeUrl: string, extra: Record<string, unknown> = {}) {
  return createSubscription(gw, {
    connector: 'pagerduty',
    connector_options: { routing_key: ROUTING_KEY, api_base_url: fakeUrl },
    events: ['signal.*', 'call.*'],
    retry: FAST,
    ...extra,
  });
}

async function post(gw: TestGateway, event: { event: string; id: string; timestamp: string; data: unknown }) {
  const res = await gw.api('POST', '/api/v1/events', event);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body as { id: string; deliveries: { id: string; subscription_id: string }[] };
}

function signalResolved(conversationId: string, signalType: string) {
  const example = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'catalog/events/signal.resolved.json'), 'utf8')).example;
  return { ...example, id: uniqueEventId('resolved'), data: { ...example.data, conversation_id: conversationId, signal_type: signalType } };
}

describe('pagerduty Events API v2', () => {
  it('cuts a near-1 MB event\'s custom_details to fit PagerDuty\'s 512 KB, says what was cut, and links the delivery in the dashboard', async () => {
    const gw = await gatewayForTest({ SLUICE_PUBLIC_URL: 'https://sluice.example.com/' });
    const pd = await fakePagerDuty();
    const sub = await subscribe(gw, pd.url);
    const base = eventFrom('call.failed');
    // Sluice takes events up to 1 MB: a 900 KB transcript in a call.failed.
    const transcript = 'Caller: hello, is anyone there? '.repeat(29_000);
    const big = { ...base, data: { ...base.data, transcript: { formatted: transcript } } };
    expect(Buffer.byteLength(JSON.stringify(big))).toBeGreaterThan(900_000);
    const deliveryId = deliveryFor(await post(gw, big), sub.id);

    const delivery = await waitForDelivery(gw, deliveryId);
    expect(delivery).toMatchObject({ status: 'delivered', attempt_count: 1, last_status_code: 202 });
    expect(Buffer.byteLength(pd.requests[0].body)).toBeLessThanOrEqual(512_000);
    const [sent] = pd.events();
    const details = sent.payload.custom_details;
    expect(details.call).toEqual(base.data.call);
    expect(details.transcript.formatted.startsWith('Caller: hello, is anyone there? ')).toBe(true);
    expect(details.transcript.formatted.endsWith('…')).toBe(true);
    expect(details._sluice_cut).toEqual({
      reason: expect.stringMatching(/^PagerDuty accepts events up to 512,000 bytes; this one was 9\d\d,\d{3}, so Sluice cut its largest fields/),
      cuts: [expect.stringMatching(/^custom_details\.transcript\.formatted: cut from 9\d\d,\d{3} to \d{3},\d{3} bytes$/)],
    });
    expect(sent).toMatchObject({ client: 'Sluice', client_url: `https://sluice.example.com/#/deliveries/${deliveryId}` });
  }, 20_000); // a 900 KB event through ingest, the template and the cut: more than the default 5 s on a busy machine

  it('sends no client_url without SLUICE_PUBLIC_URL', async () => {
    const gw = await gatewayForTest();
    const pd = await fakePagerDuty();
    const sub = await subscribe(gw, pd.url);
    await waitForDelivery(gw, deliveryFor(await post(gw, eventFrom('call.failed')), sub.id));
    expect(pd.events()[0]).toMatchObject({ client: 'Sluice' });
    expect(pd.events()[0].client_url).toBeUndefined();
  });

  it('triggers on a signal and resolves it with the same dedup_key on signal.resolved', async () => {
    const gw = await gatewayForTest();
    const pd = await fakePagerDuty();
    const sub = await subscribe(gw, pd.url);
    expect(sub.connector_options).toEqual({ routing_key: '********', api_base_url: pd.url });

    const spike = eventFrom('signal.frustration_spike');
    const triggered = await waitForDelivery(gw, deliveryFor(await post(gw, spike), sub.id));
    expect(triggered).toMatchObject({ status: 'delivered', attempt_count: 1, last_status_code: 202 });
    expect(pd.incidents).toEqual(['sluice-conv_84302-frustration_spike']);

    const resolved = await waitForDelivery(gw, deliveryFor(await post(gw, signalResolved('conv_84302', 'frustration_spike')), sub.id));
    expect(resolved).toMatchObject({ status: 'delivered', attempt_count: 1, last_status_code: 202 });
    expect(pd.resolved).toEqual(['sluice-conv_84302-frustration_spike']);
    expect(pd.open.size).toBe(0);

    const [trigger, resolve] = pd.events();
    expect(trigger).toMatchObject({
      routing_key: ROUTING_KEY,
      event_action: 'trigger',
      dedup_key: 'sluice-conv_84302-frustration_spike',
      payload: { severity: 'error', source: 'conv_84302', class: 'signal.frustration_spike', custom_details: spike.data },
      client: 'Sluice',
    });
    expect(resolve).toEqual({ routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: 'sluice-conv_84302-frustration_spike' });
    expect(pd.requests.every((r) => r.headers['content-type'] === 'application/json' && !r.headers['webhook-signature'])).toBe(true);
  });

  it('ends the trigger (503, then retried) -> resolve sequence with no open incident: the resolve waits for its trigger', async () => {
    const gw = await gatewayForTest();
    // The trigger's first attempt meets a 503 (PagerDuty took nothing); everything after is accepted.
    const pd = await fakePagerDuty((req, index) => (index === 0 ? json(503, { status: 'unavailable' }) : undefined), { refuse: (_req, index) => index === 0 });
    const sub = await subscribe(gw, pd.url, { retry: { schedule: ['0s', '300ms'] } });
    expect(sub.ordering).toEqual(PAGERDUTY_ORDERING);
    const trigger = deliveryFor(await post(gw, eventFrom('signal.frustration_spike')), sub.id);
    await waitForDelivery(gw, trigger, (d) => d.attempts.length === 1);
    // The resolve is accepted while the trigger waits for its retry: it must not go first.
    const resolve = deliveryFor(await post(gw, signalResolved('conv_84302', 'frustration_spike')), sub.id);
    const waiting = await getDelivery(gw, resolve);
    expect(waiting).toMatchObject({ status: 'pending', ordering_key: 'sluice-conv_84302-frustration_spike', waiting_for: { delivery_id: trigger } });
    expect(await waitForDelivery(gw, resolve)).toMatchObject({ status: 'delivered' });
    expect(pd.events().map((e) => e.event_action)).toEqual(['trigger', 'trigger', 'resolve']);
    expect(pd.incidents).toEqual(['sluice-conv_84302-frustration_spike']);
    expect(pd.resolved).toEqual(['sluice-conv_84302-frustration_spike']);
    expect(pd.open.size).toBe(0);
  });

  it('shows why ordering is on: the same sequence unordered leaves an incident open that never resolves', async () => {
    const gw = await gatewayForTest();
    const pd = await fakePagerDuty((req, index) => (index === 0 ? json(503, { status: 'unavailable' }) : undefined), { refuse: (_req, index) => index === 0 });
    const sub = await subscribe(gw, pd.url, { retry: { schedule: ['0s', '300ms'] }, ordering: null });
    expect(sub.ordering).toBeNull();
    const trigger = deliveryFor(await post(gw, eventFrom('signal.frustration_spike')), sub.id);
    await waitForDelivery(gw, trigger, (d) => d.attempts.length === 1);
    const resolve = deliveryFor(await post(gw, signalResolved('conv_84302', 'frustration_spike')), sub.id);
    await waitForDelivery(gw, resolve);
    await waitForDelivery(gw, trigger);
    // PagerDuty dropped the resolve (no open alert yet); the retried trigger then opened one.
    expect(pd.events().map((e) => e.event_action)).toEqual(['trigger', 'resolve', 'trigger']);
    expect(pd.resolved).toEqual([]);
    expect([...pd.open]).toEqual(['sluice-conv_84302-frustration_spike']);
  });

  it('never writes the routing key to the delivery log', async () => {
    const gw = await gatewayForTest();
    const pd = await fakePagerDuty();
    const sub = await subscribe(gw, pd.url);
    const delivery = await waitForDelivery(gw, deliveryFor(await post(gw, eventFrom('signal.disclosure_missed')), sub.id));
    expect(delivery.status).toBe('delivered');
    // It was sent...
    expect(pd.events()[0].routing_key).toBe(ROUTING_KEY);
    // ...and the log shows the body as sent, with the key masked.
    const logged = JSON.parse(delivery.attempts[0].request.body);
    expect(logged).toMatchObject({ routing_key: '********', event_action: 'trigger', dedup_key: 'sluice-conv_84377-disclosure_missed', payload: { severity: 'critical' } });
    expect(JSON.stringify(delivery)).not.toContain(ROUTING_KEY);
    expect(JSON.stringify((await gw.api('GET', `/api/v1/webhooks/${sub.id}`)).body)).not.toContain(ROUTING_KEY);
    expect(JSON.stringify((await gw.api('GET', `/api/v1/webhooks/${sub.id}/deliveries`)).body)).not.toContain(ROUTING_KEY);
  });

  it('retries a 5xx with the same dedup_key, so a lost response never opens a second incident', async () => {
    const gw = await gatewayForTest();
    // PagerDuty took the first trigger but the answer was a 502.
    const pd = await fakePagerDuty((_req, index) => (index === 0 ? { status: 502, body: '<html>Bad Gateway</html>' } : undefined));
    const sub = await subscribe(gw, pd.url);
    const id = deliveryFor(await post(gw, eventFrom('call.failed')), sub.id);
    const delivery = await waitForDelivery(gw, id);
    expect(delivery.status).toBe('delivered');
    expect(delivery.attempts.map((a: any) => [a.outcome, a.response.status, a.error])).toEqual([
      ['retry', 502, 'PagerDuty answered 502'],
      ['success', 202, null],
    ]);
    const keys = pd.events().map((e) => e.dedup_key);
    expect(keys).toEqual([`sluice-${delivery.event_id}`, `sluice-${delivery.event_id}`]);
    expect(pd.incidents).toHaveLength(1);

    // A replay sends the same event again (ordered by its dedup_key: as a new delivery at the end
    // of the key's queue): same key again, still one incident.
    const replay = await gw.api('POST', `/api/v1/deliveries/${id}/replay`, {});
    expect(replay.status, JSON.stringify(replay.body)).toBeLessThan(300);
    expect(replay.body).toMatchObject({ replayed_as_new_delivery: true, replay_of: id });
    await waitForDelivery(gw, replay.body.id, (d) => d.status === 'delivered');
    expect(pd.events().map((e) => e.dedup_key)).toEqual([keys[0], keys[0], keys[0]]);
    expect(pd.incidents).toHaveLength(1);
  });

  it('fails on 400 with PagerDuty\'s errors in the reason, masking a routing key PagerDuty echoes', async () => {
    const gw = await gatewayForTest();
    const invalid = {
      status: 'invalid event',
      message: 'Event object is invalid',
      errors: [`'payload.summary' is missing or blank`, `routing_key ${ROUTING_KEY} is not an Events API v2 integration key`],
    };
    const pd = await fakePagerDuty(() => json(400, invalid));
    const sub = await subscribe(gw, pd.url);
    const delivery = await waitForDelivery(gw, deliveryFor(await post(gw, eventFrom('call.failed')), sub.id));
    expect(delivery).toMatchObject({ status: 'failed', attempt_count: 1, last_status_code: 400 });
    expect(delivery.attempts[0].outcome).toBe('fail');
    expect(delivery.last_error).toBe(
      "PagerDuty rejected the event (400): invalid event: Event object is invalid: 'payload.summary' is missing or blank; routing_key ******** is not an Events API v2 integration key",
    );
    expect(delivery.attempts[0].response.body).toContain('Event object is invalid');
    expect(JSON.stringify(delivery)).not.toContain(ROUTING_KEY);
    expect((await gw.api('GET', `/api/v1/webhooks/${sub.id}`)).body.enabled).toBe(true);
    // Not a fixed sleep: a later delivery to the same receiver arriving is the sign that no retry was queued before it.
    await sentinelArrives(gw, pd);
    expect(pd.requests.filter((r) => r.url !== '/sentinel')).toHaveLength(1);
  });

  it('waits at least 30 s after a 429, whatever the schedule says', async () => {
    const gw = await gatewayForTest();
    const pd = await fakePagerDuty(() => json(429, { status: 'throttle event', message: 'Requests for this service are arriving too quickly. Please retry later.' }));
    const sub = await subscribe(gw, pd.url);
    const id = deliveryFor(await post(gw, eventFrom('call.failed')), sub.id);
    const delivery = await waitForDelivery(gw, id, (d) => d.attempts.length === 1 && d.status === 'pending');
    expect(delivery.attempts[0]).toMatchObject({ outcome: 'retry', response: { status: 429 } });
    expect(delivery.attempts[0].error).toBe('PagerDuty rate limit (429): the event was not ingested; retrying in 30 s or later');
    const waitMs = Date.parse(delivery.next_attempt_at) - Date.parse(delivery.attempts[0].started_at);
    expect(waitMs).toBeGreaterThanOrEqual(30_000);
    expect(waitMs).toBeLessThan(31_000);
    expect((await getDelivery(gw, id)).attempts).toHaveLength(1);
  });

  it('pages on sluice.webhook.disabled when a destination disables another subscription', async () => {
    const gw = await gatewayForTest();
    const pd = await fakePagerDuty();
    const crm = await receiverForTest(() => ({ status: 410, body: '' }));
    const ops = await subscribe(gw, pd.url, { events: ['sluice.webhook.disabled'] });
    const gone = await createSubscription(gw, { url: `${crm.url}/hooks/sluice`, events: ['call.ended'], retry: FAST });
    const accepted = await post(gw, eventFrom('call.ended'));
    expect((await waitForDelivery(gw, deliveryFor(accepted, gone.id))).status).toBe('failed');

    await waitFor(() => pd.requests.length >= 1, 5_000, 'the alert');
    expect(pd.events()[0]).toMatchObject({
      routing_key: ROUTING_KEY,
      event_action: 'trigger',
      dedup_key: `sluice-${gone.id}-webhook_disabled`,
      payload: { severity: 'critical', group: 'sluice', class: 'sluice.webhook.disabled', component: gone.id, custom_details: { subscription_id: gone.id } },
    });
    expect(pd.events()[0].payload.summary).toMatch(new RegExp(`^Sluice disabled subscription ${gone.id}`));
    const delivered = await gw.api('GET', `/api/v1/webhooks/${ops.id}/deliveries`);
    expect(delivered.body.data).toHaveLength(1);
  });

  it('refuses a routing key that is not 32 characters, at create time', async () => {
    const gw = await gatewayForTest();
    const res = await gw.api('POST', '/api/v1/webhooks', { connector: 'pagerduty', connector_options: { routing_key: 'too-short' }, events: ['signal.*'] });
    expect(res.status).toBe(422);
    expect(res.body.error.details).toEqual([
      { path: '$.connector_options.routing_key', message: 'must be the 32-character Integration Key of an Events API V2 integration' },
    ]);
    expect(JSON.stringify(res.body)).not.toContain('too-short');
  });
});
