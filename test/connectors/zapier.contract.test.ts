/**
 * The zapier connector end to end: a real gateway delivering to a local fake of Zapier's hook
 * receiver (hooks.zapier.com answers 200 JSON while the Zap lives, 410 once it unsubscribed,
 * 429 over its rate limits), and the Zapier app in connectors/zapier/zapier-app driven against
 * the gateway with a stand-in for zapier-platform-core's `z` object.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadEventCatalog } from '../../src/catalog/event-catalog.ts';
import { MappingRegistry } from '../../src/services/mapping-registry.ts';
import { ROOMY_LIMITS } from '../support/limits.ts';
import { ADMIN_KEY, REPO_ROOT, fixture, waitFor, type TestGateway } from '../support/gateway.ts';
import type { ReceivedRequest, Responder } from '../support/receiver.ts';
import { createSubscription, deliveryFor, gatewayForTest, postEvent, receiverForTest, waitForDelivery } from '../delivery/delivery-helpers.ts';

const require = createRequire(import.meta.url);
const APP_DIR = path.join(REPO_ROOT, 'connectors/zapier/zapier-app');
const HOOK_PATH = '/hooks/standard/1234567/0a1b2c3d4e5f/';

let mappings: MappingRegistry;
const catalog = loadEventCatalog(path.join(REPO_ROOT, 'catalog/events'));

beforeAll(async () => {
  mappings = new MappingRegistry({ dir: path.join(REPO_ROOT, 'mappings'), limits: ROOMY_LIMITS });
  await mappings.load();
});

const flat = (envelope: { event: string; id: string; timestamp: string; data: unknown }) =>
  mappings.render('zapier/default', { event: envelope.event, id: envelope.id, timestamp: envelope.timestamp, data: envelope.data }, { connector: 'zapier', options: {} });

/** hooks.zapier.com's answer to an accepted payload. */
const accepted = (): ReturnType<Responder> => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ status: 'success', attempt: '0190b2a4-6a0e-7c39-9d1e-5a0c1e2f3a4b', id: '0190b2a4-6a0e-7c39-9d1e-5a0c1e2f3a4c', request_id: '0190b2a4-6a0e-7c39-9d1e-5a0c1e2f3a4d' }),
});

/** A fake Zapier hook receiver: 200 JSON unless the test says otherwise. */
async function fakeZapier(respond: Responder = () => accepted()) {
  return receiverForTest(respond);
}

async function subscribeHook(gw: TestGateway, targetUrl: string, event = 'call.ended') {
  const res = await gw.api('POST', '/api/v1/hooks', { target_url: targetUrl, event });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; signing_secret: string };
}

/** Node's request headers as Zapier hands them to perform: `Http-` prefixed, Camel-Case. */
function zapierRawHeaders(headers: ReceivedRequest['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const camel = name.split('-').map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join('-');
    out[['content-type', 'content-length'].includes(name) ? camel : `Http-${camel}`] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}

describe('deliveries to a Zapier hook', () => {
  it('are flat, signed JSON carrying the event id, delivered on a 200', async () => {
    const zapier = await fakeZapier();
    const gw = await gatewayForTest();
    const hook = await subscribeHook(gw, `${zapier.url}${HOOK_PATH}`);
    const event = fixture('call.ended');
    const delivery = deliveryFor(await postEvent(gw, 'call.ended', event.id), hook.id);

    const done = await waitForDelivery(gw, delivery);
    expect(done).toMatchObject({ status: 'delivered', attempt_count: 1, last_status_code: 200 });
    expect(zapier.requests).toHaveLength(1);
    const [received] = zapier.requests;
    expect(received.method).toBe('POST');
    expect(received.url).toBe(HOOK_PATH);
    expect(received.headers['content-type']).toBe('application/json');
    const body = JSON.parse(received.body);
    expect(body).toEqual(await flat(event));
    expect(body.id).toBe(event.id);
    expect(Object.values(body).some((v) => v !== null && typeof v === 'object' && !Array.isArray(v))).toBe(false);
    // The secret the hook got at subscribe verifies the Standard Webhooks signature.
    expect(() => new Webhook(hook.signing_secret).verify(received.body, received.headers as Record<string, string>)).not.toThrow();
  });

  it('a 410 deletes the subscription: gone from the API, no delivery for later events', async () => {
    const zapier = await fakeZapier(() => ({ status: 410, body: '' }));
    const gw = await gatewayForTest();
    const hook = await subscribeHook(gw, `${zapier.url}${HOOK_PATH}`);
    const delivery = deliveryFor(await postEvent(gw, 'call.ended'), hook.id);

    const done = await waitForDelivery(gw, delivery);
    expect(done).toMatchObject({ status: 'failed', attempt_count: 1, last_status_code: 410 });
    expect(done.attempts).toHaveLength(1);
    expect(done.attempts[0].outcome).toBe('gone');

    await waitFor(async () => (await gw.api('GET', `/api/v1/webhooks/${hook.id}`)).status === 404, 5_000, 'the subscription to be deleted');
    expect((await gw.api('GET', `/api/v1/hooks/${hook.id}`)).status).toBe(404);
    expect((await gw.api('GET', '/api/v1/webhooks')).body.data.map((s: { id: string }) => s.id)).not.toContain(hook.id);

    const later = await postEvent(gw, 'call.ended');
    expect(later.deliveries.map((d) => d.subscription_id)).not.toContain(hook.id);
    expect(zapier.requests).toHaveLength(1);

    // The gateway says so with its own operational event.
    const notice = await waitFor(async () => {
      const res = await gw.api('GET', '/api/v1/hooks/sample?event=sluice.webhook.disabled&connector=webhook');
      return res.body.find((e: any) => e.id !== catalog.get('sluice.webhook.disabled')!.example.id && e.data.subscription_id === hook.id);
    }, 5_000, 'sluice.webhook.disabled');
    expect(notice.data).toMatchObject({ subscription_id: hook.id, deleted: true });

    // Zapier retries unsubscribes; the hook is already gone, which is just as good.
    expect((await gw.api('DELETE', `/api/v1/hooks/${hook.id}`)).body).toEqual({ id: hook.id, deleted: true });
  });

  it('retries 429 (honouring Retry-After) and 5xx, then succeeds — a Catch Hook URL through /webhooks', async () => {
    const zapier = await fakeZapier((_req, i) =>
      i === 0
        ? { status: 429, headers: { 'retry-after': '0', 'content-type': 'application/json' }, body: '{"status":"error","message":"throttled"}' }
        : i === 1
          ? { status: 503, body: 'Service Unavailable' }
          : accepted(),
    );
    const gw = await gatewayForTest();
    const sub = await createSubscription(gw, { url: `${zapier.url}/hooks/catch/1234567/abcdef/`, events: ['lead.created'], connector: 'zapier', retry: { schedule: ['0s', '50ms', '50ms'] } });
    const delivery = deliveryFor(await postEvent(gw, 'lead.created'), sub.id);

    const done = await waitForDelivery(gw, delivery);
    expect(done).toMatchObject({ status: 'delivered', attempt_count: 3 });
    expect(done.attempts.map((a: any) => [a.outcome, a.response.status])).toEqual([['retry', 429], ['retry', 503], ['success', 200]]);
    // The same flat body, with the same id and webhook-id, on every try: Zapier deduplicates on id.
    const bodies = zapier.requests.map((r) => r.body);
    expect(new Set(bodies).size).toBe(1);
    expect(new Set(zapier.requests.map((r) => r.headers['webhook-id'])).size).toBe(1);
    expect(JSON.parse(bodies[0])).toMatchObject({ event: 'lead.created', data_lead_email: 'pat.nguyen@example.org' });
  });

  it('a 413 fails the delivery at once and keeps the subscription', async () => {
    const zapier = await fakeZapier(() => ({ status: 413, body: 'Request Entity Too Large' }));
    const gw = await gatewayForTest();
    const hook = await subscribeHook(gw, `${zapier.url}${HOOK_PATH}`, 'evaluation.completed');
    const done = await waitForDelivery(gw, deliveryFor(await postEvent(gw, 'evaluation.completed'), hook.id));
    expect(done).toMatchObject({ status: 'failed', attempt_count: 1, last_status_code: 413 });
    expect(done.attempts[0].outcome).toBe('fail');
    expect((await gw.api('GET', `/api/v1/hooks/${hook.id}`)).body).toMatchObject({ id: hook.id, enabled: true });
  });
});

// --- the Zapier app definition ---------------------------------------------------------------

class ZapierError extends Error {
  constructor(message: string, readonly code?: string, readonly status?: number) {
    super(message);
  }
}

type Bundle = Record<string, any>;

/** What the app uses of zapier-platform-core's `z`: request with the app's middleware, errors. */
function fakeZ(bundle: Bundle) {
  const middleware = require(path.join(APP_DIR, 'middleware.js'));
  const z: any = {
    errors: { Error: ZapierError },
    console: { log: () => undefined },
    async request(options: Record<string, any>) {
      let request: Record<string, any> = { method: 'GET', headers: {}, ...options };
      for (const before of middleware.befores) request = before(request, z, bundle);
      const url = new URL(request.url);
      for (const [key, value] of Object.entries(request.params ?? {})) url.searchParams.set(key, String(value));
      const res = await fetch(url, {
        method: request.method,
        headers: { ...request.headers, ...(request.body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: request.body !== undefined ? JSON.stringify(request.body) : undefined,
      });
      const content = await res.text();
      let response: Record<string, any> = { status: res.status, content, data: content ? JSON.parse(content) : undefined };
      for (const after of middleware.afters) response = after(response, z, bundle);
      // zapier-platform-core (v10+) throws for any 4xx/5xx the middleware let through.
      if (response.status >= 400) throw new ZapierError(`Got ${response.status} calling ${request.method} ${url}`, 'ResponseError', response.status);
      return response;
    },
  };
  return z;
}

const run = (fn: (z: any, bundle: Bundle) => unknown, bundle: Bundle) => fn(fakeZ(bundle), bundle) as Promise<any>;

const TRIGGERS = ['call-ended', 'evaluation-completed', 'lead-created', 'signal'].map((file) => require(path.join(APP_DIR, 'triggers', `${file}.js`)));

describe('the Zapier app (connectors/zapier/zapier-app)', () => {
  it('defines one REST-hook trigger per common event, with a sample that is the catalog example as Zapier receives it', async () => {
    expect(TRIGGERS.map((t) => t.key)).toEqual(['call_ended', 'evaluation_completed', 'lead_created', 'signal']);
    const subscribedEvents: string[] = [];
    for (const trigger of TRIGGERS) {
      expect(trigger.key).toMatch(/^[a-zA-Z][a-zA-Z0-9_]*$/);
      expect(trigger.operation.type).toBe('hook');
      for (const fn of ['performSubscribe', 'performUnsubscribe', 'perform', 'performList']) expect(trigger.operation[fn], fn).toBeTypeOf('function');
      // Which event does it subscribe to? Ask it, against a recorder.
      const recorder = await receiverForTest(() => ({ status: 201, headers: { 'content-type': 'application/json' }, body: '{"id":"sub_x"}' }));
      await run(trigger.operation.performSubscribe, { authData: { base_url: recorder.url, api_key: 'k' }, targetUrl: 'https://hooks.zapier.com/x', inputData: {}, meta: {} });
      const { event } = JSON.parse(recorder.requests[0].body);
      subscribedEvents.push(event);
      const example = catalog.get(catalog.matchPattern(event)[0])!.example;
      expect(trigger.operation.sample, trigger.key).toEqual(await flat(example));
    }
    expect(subscribedEvents).toEqual(['call.ended', 'evaluation.completed', 'lead.created', 'signal.*']);
  });

  it('authenticates with an admin key, and explains a wrong or non-admin key', async () => {
    const gw = await gatewayForTest();
    const authentication = require(path.join(APP_DIR, 'authentication.js'));
    const bundle = (api_key: string) => ({ authData: { base_url: `${gw.url}/`, api_key } });
    expect(await run(authentication.test, bundle(ADMIN_KEY))).toEqual([expect.objectContaining({ event: 'call.ended' })]);
    await expect(run(authentication.test, bundle('sk_wrong'))).rejects.toMatchObject({ code: 'AuthenticationError', status: 401 });
    const readKey = (await gw.api('POST', '/api/v1/keys', { role: 'read' })).body.key;
    await expect(run(authentication.test, bundle(readKey))).rejects.toMatchObject({ code: 'AuthenticationError', status: 403, message: expect.stringMatching(/admin/) });
  });

  it('subscribes, receives, verifies, lists and unsubscribes against a real gateway', async () => {
    const zapier = await fakeZapier();
    const gw = await gatewayForTest();
    const trigger = TRIGGERS[0];
    const authData = { base_url: gw.url, api_key: ADMIN_KEY };

    // Turning the Zap on.
    const subscribeData = await run(trigger.operation.performSubscribe, { authData, targetUrl: `${zapier.url}${HOOK_PATH}`, inputData: {}, meta: { zap: { id: 4242 } } });
    expect(subscribeData).toMatchObject({ id: expect.stringMatching(/^sub_/), event: 'call.ended', connector: 'zapier', signing_secret: expect.stringMatching(/^whsec_/) });
    expect((await gw.api('GET', `/api/v1/hooks/${subscribeData.id}`)).body.description).toBe('Zapier: Zap 4242');

    // An event arrives at the Zap; perform checks its signature and returns it as one item.
    const event = fixture('call.ended');
    await postEvent(gw, 'call.ended', event.id);
    await waitFor(() => zapier.requests.length === 1, 5_000, 'the delivery to the fake Zapier');
    const [received] = zapier.requests;
    const rawRequest = { method: 'POST', querystring: '', headers: zapierRawHeaders(received.headers), content: received.body };
    const items = await run(trigger.operation.perform, { authData, subscribeData, cleanedRequest: JSON.parse(received.body), rawRequest });
    expect(items).toEqual([await flat(event)]);
    await expect(
      run(trigger.operation.perform, { authData, subscribeData, cleanedRequest: {}, rawRequest: { ...rawRequest, content: received.body.replace('call_abc123', 'call_forged') } }),
    ).rejects.toMatchObject({ code: 'InvalidSignature' });
    // Without the raw request (or the secret) there is nothing to verify: refused, not let through.
    const unsigned = { authData, subscribeData, cleanedRequest: JSON.parse(received.body) };
    await expect(run(trigger.operation.perform, unsigned)).rejects.toMatchObject({ code: 'InvalidSignature' });
    await expect(run(trigger.operation.perform, { ...unsigned, rawRequest: { ...rawRequest, content: undefined } })).rejects.toMatchObject({ code: 'InvalidSignature' });
    await expect(run(trigger.operation.perform, { ...unsigned, rawRequest, subscribeData: { id: subscribeData.id } })).rejects.toMatchObject({ code: 'InvalidSignature' });

    // The Zap editor's samples: the real event, flat, with its id.
    const samples = await run(trigger.operation.performList, { authData, inputData: {}, meta: { isLoadingSample: true } });
    expect(samples).toEqual([await flat(event)]);

    // Turning the Zap off, twice (Zapier retries): both succeed, and nothing is delivered any more.
    for (let i = 0; i < 2; i++) {
      expect(await run(trigger.operation.performUnsubscribe, { authData, subscribeData, targetUrl: `${zapier.url}${HOOK_PATH}` })).toEqual({ id: subscribeData.id, deleted: true });
    }
    expect((await postEvent(gw, 'call.ended')).deliveries.map((d) => d.subscription_id)).not.toContain(subscribeData.id);
  });
});

// --- the app through zapier-platform-core itself: its schema validation and its real `z` ------

describe('the Zapier app under zapier-platform-core', () => {
  const core = require('zapier-platform-core');
  const { validateApp } = require('zapier-platform-core/src/tools/schema');
  const app = require(APP_DIR);
  const appTester = core.createAppTester(app);

  it('passes zapier-platform-core\'s schema validation (what `zapier validate` checks locally)', () => {
    expect(validateApp(app)).toEqual([]);
    expect(app.platformVersion).toBe(core.version);
    expect(Object.keys(app.triggers)).toEqual(['call_ended', 'evaluation_completed', 'lead_created', 'signal', 'new_event', 'event_type_list', 'postable_event_type_list']);
    expect(Object.keys(app.creates)).toEqual(['send_event']);
    expect(app.triggers.event_type_list.display.hidden).toBe(true);
    expect(app.triggers.postable_event_type_list.display.hidden).toBe(true);
    expect(app.triggers.new_event.operation.inputFields[0]).toMatchObject({ key: 'event_type', required: true, dynamic: 'event_type_list.id.name' });
    expect(app.creates.send_event.operation.inputFields[0]).toMatchObject({ key: 'event_type', required: true, dynamic: 'postable_event_type_list.id.name' });
  });

  it('New Event: the dropdown lists the whole catalog, and the chosen type is subscribed, delivered, verified and listed', async () => {
    const zapier = await fakeZapier();
    const gw = await gatewayForTest();
    const authData = { base_url: gw.url, api_key: ADMIN_KEY };

    const choices = await appTester(app.triggers.event_type_list.operation.perform, { authData, inputData: {} });
    expect(choices.map((c: { id: string }) => c.id)).toEqual(catalog.list().map((t) => t.name).sort());
    expect(choices).toHaveLength(20);
    expect(choices.find((c: { id: string }) => c.id === 'review.received')).toMatchObject({ name: 'review.received', description: expect.stringMatching(/review/i) });
    const postable = await appTester(app.triggers.postable_event_type_list.operation.perform, { authData, inputData: {} });
    expect(postable.map((c: { id: string }) => c.id)).not.toContain('sluice.delivery.failed');
    expect(postable).toHaveLength(18);

    const trigger = app.triggers.new_event.operation;
    const inputData = { event_type: 'agent.status_changed' };
    const subscribeData = await appTester(trigger.performSubscribe, { authData, inputData, targetUrl: `${zapier.url}${HOOK_PATH}`, meta: { zap: { id: 77 } } });
    expect(subscribeData).toMatchObject({ event: 'agent.status_changed', connector: 'zapier', signing_secret: expect.stringMatching(/^whsec_/) });

    const event = fixture('agent.status_changed');
    await gw.api('POST', '/api/v1/events', event);
    await waitFor(() => zapier.requests.length === 1, 5_000, 'the delivery to the fake Zapier');
    const [received] = zapier.requests;
    const rawRequest = { method: 'POST', querystring: '', headers: zapierRawHeaders(received.headers), content: received.body };
    const items = await appTester(trigger.perform, { authData, inputData, subscribeData, cleanedRequest: JSON.parse(received.body), rawRequest });
    expect(items).toEqual([await flat(event)]);
    // Unsigned (no rawRequest): refused by the real core as well.
    await expect(appTester(trigger.perform, { authData, inputData, subscribeData, cleanedRequest: JSON.parse(received.body) })).rejects.toThrow(/raw request/);

    expect(await appTester(trigger.performList, { authData, inputData })).toEqual([await flat(event)]);
    expect(await appTester(trigger.performUnsubscribe, { authData, inputData, subscribeData })).toEqual({ id: subscribeData.id, deleted: true });
  });

  it('Send Event: posts the event to Sluice, which delivers it; the same Event ID twice is stored once', async () => {
    const receiver = await fakeZapier();
    const gw = await gatewayForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hooks/catch/1/2/`, events: ['signal.frustration_spike'], connector: 'zapier' });
    const authData = { base_url: `${gw.url}/`, api_key: ADMIN_KEY };
    const inputData = {
      event_type: 'signal.frustration_spike',
      id: 'evt_from_zap_0001',
      timestamp: '2026-04-27T17:45:03Z',
      data_json: JSON.stringify({ customer: { name: 'Dana Whitfield' }, frustration_score: 0.87 }),
      data: { conversation_id: 'conv_zap_1', agent: 'sam.k', severity: 'high' },
    };
    const created = await appTester(app.creates.send_event.operation.perform, { authData, inputData });
    expect(created).toMatchObject({ id: 'evt_from_zap_0001', event: 'signal.frustration_spike', duplicate: false, deliveries: [{ subscription_id: sub.id }] });
    await waitFor(() => receiver.requests.length === 1, 5_000, 'the delivery of the sent event');
    expect(JSON.parse(receiver.requests[0].body)).toMatchObject({
      id: 'evt_from_zap_0001',
      event: 'signal.frustration_spike',
      data_conversation_id: 'conv_zap_1',
      data_customer_name: 'Dana Whitfield',
      data_frustration_score: 0.87,
    });

    const again = await appTester(app.creates.send_event.operation.perform, { authData, inputData });
    expect(again).toMatchObject({ id: 'evt_from_zap_0001', duplicate: true, deliveries: created.deliveries });
    expect((await gw.api('GET', `/api/v1/webhooks/${sub.id}/deliveries`)).body.data).toHaveLength(1);
  });

  it('Send Event: explains bad input with Sluice\'s paths, and bad JSON before calling Sluice', async () => {
    const gw = await gatewayForTest();
    const authData = { base_url: gw.url, api_key: ADMIN_KEY };
    const send = (inputData: Record<string, unknown>) => appTester(app.creates.send_event.operation.perform, { authData, inputData });
    await expect(send({ event_type: 'lead.created', data_json: '{"lead": ' })).rejects.toThrow(/Data \(JSON\) is not valid JSON/);
    await expect(send({ event_type: 'lead.created', data_json: '[1, 2]' })).rejects.toThrow(/must be a JSON object/);
    await expect(send({ event_type: 'lead.created', data: { note: 'no lead' } })).rejects.toThrow(/Sluice refused the event: .*\$\.data/);
    await expect(send({ event_type: 'sluice.delivery.failed', data: {} })).rejects.toThrow(/Sluice refused the event/);
  });
});
