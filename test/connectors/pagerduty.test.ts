import { Ajv } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { PAGERDUTY_ORDERING, RATE_LIMIT_FLOOR_MS, dashboardDeliveryUrl, enqueueUrl, pagerDutyConnector, pagerDutyDedupKey } from '../../connectors/pagerduty/index.ts';
import { compileOrderingKey, evaluateOrderingKey } from '../../src/core/mapping.ts';
import { ROOMY_LIMITS } from '../support/limits.ts';
import { orderingKeyValue } from '../../src/core/ordering.ts';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../support/gateway.ts';
import { CUT_NOTE_KEY, PAGERDUTY_MAX_EVENT_BYTES, fitEvent } from '../../connectors/pagerduty/fit-event.ts';
import type { ConnectorContext, ResponseInfo } from '../../src/delivery/connector.ts';
import { MappingRegistry } from '../../src/services/mapping-registry.ts';
import { ajvErrorsToDetails } from '../../src/services/subscription-input.ts';
import { fixture } from '../support/gateway.ts';
import { FIXTURE_EVENTS, type CatalogEvent, catalogExample, loadShippedMappings } from '../support/catalog.ts';

const ROUTING_KEY = 'R0UT1NGKEY0123456789abcdefABCDEF';
const ENQUEUE = 'https://events.pagerduty.com/v2/enqueue';
const FIXTURES = FIXTURE_EVENTS;

type Event = CatalogEvent;

let mappings: MappingRegistry;

beforeAll(async () => {
  mappings = await loadShippedMappings();
});

async function contextFor(event: Event, options: Record<string, unknown> = { routing_key: ROUTING_KEY }): Promise<ConnectorContext> {
  const visible = Object.fromEntries(Object.entries(options).filter(([k]) => !pagerDutyConnector.secretOptions.includes(k)));
  return {
    url: pagerDutyConnector.resolveUrl!(options),
    options,
    payload: await mappings.render(pagerDutyConnector.defaultMapping!, event, { connector: 'pagerduty', options: visible }),
    event,
    deliveryId: 'dlv_test',
    msgId: 'msg_test',
    headers: {},
  };
}

async function bodyFor(event: Event, options?: Record<string, unknown>): Promise<any> {
  return JSON.parse(pagerDutyConnector.buildRequest(await contextFor(event, options)).body!);
}

const response = (status: number, body = '', headers: Record<string, string> = {}): ResponseInfo => ({ status, headers, body });

describe('pagerduty: golden requests', () => {
  it('triggers signal.frustration_spike: high -> error, a conversation-derived dedup_key, the event data as custom_details', async () => {
    const event = fixture('signal.frustration_spike');
    const request = pagerDutyConnector.buildRequest(await contextFor(event));
    const expected = {
      routing_key: ROUTING_KEY,
      event_action: 'trigger',
      dedup_key: 'sluice-conv_84302-frustration_spike',
      payload: {
        summary: 'Frustration spike in conversation conv_84302 (agent sam.k): frustration 0.87 with Dana Whitfield',
        source: 'conv_84302',
        severity: 'error',
        timestamp: '2026-04-27T17:45:03Z',
        component: 'sam.k',
        group: 'signal',
        class: 'signal.frustration_spike',
        custom_details: event.data,
      },
      client: 'Sluice',
    };
    expect(request).toEqual({ method: 'POST', url: ENQUEUE, headers: { 'content-type': 'application/json' }, body: JSON.stringify(expected), sign: false });
  });

  it('resolves signal.resolved with the dedup_key its trigger used, and nothing else', async () => {
    const request = pagerDutyConnector.buildRequest(await contextFor(catalogExample('signal.resolved')));
    expect(request).toEqual({
      method: 'POST',
      url: ENQUEUE,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: 'sluice-conv_84302-frustration_spike' }),
      sign: false,
    });
  });

  it('triggers call.ended with a link to the recording and an event-id dedup_key', async () => {
    const event = fixture('call.ended');
    expect(await bodyFor(event)).toEqual({
      routing_key: ROUTING_KEY,
      event_action: 'trigger',
      dedup_key: 'sluice-evt_01HZX3K9Q2CALLENDED0001',
      payload: {
        summary: 'Call ended, inbound +1234567890: Customer inquired about order status',
        source: 'call_abc123',
        severity: 'info',
        timestamp: '2026-03-15T14:30:00Z',
        component: 'Customer Support',
        group: 'call',
        class: 'call.ended',
        custom_details: event.data,
      },
      links: [{ href: 'https://storage.example.com/recordings/call_abc123.mp3', text: 'Call recording' }],
      client: 'Sluice',
    });
  });

  it('turns sluice.delivery.failed into an error alert about the destination, one open alert per subscription', async () => {
    const event = catalogExample('sluice.delivery.failed');
    expect(await bodyFor(event)).toEqual({
      routing_key: ROUTING_KEY,
      event_action: 'trigger',
      dedup_key: 'sluice-sub_01HZX3K9Q2SUBSCRIPT0001-delivery_failed',
      payload: {
        summary: 'Sluice could not deliver call.ended to https://crm.example.com/hooks/sluice after 10 attempts (HTTP 503 Service Unavailable)',
        source: 'https://crm.example.com/hooks/sluice',
        severity: 'error',
        timestamp: '2026-03-16T14:41:12Z',
        component: 'sub_01HZX3K9Q2SUBSCRIPT0001',
        group: 'sluice',
        class: 'sluice.delivery.failed',
        custom_details: event.data,
      },
      client: 'Sluice',
    });
  });

  it.each([
    ['critical', 'critical'],
    ['high', 'error'],
    ['medium', 'warning'],
    ['low', 'info'],
    ['info', 'info'],
  ])('maps signal severity %s to %s', async (given, expected) => {
    const base = fixture('signal.disclosure_missed');
    expect((await bodyFor({ ...base, data: { ...base.data, severity: given } })).payload.severity).toBe(expected);
  });

  it.each([
    ['call.failed', 'error'],
    ['call.ended', 'info'],
    ['evaluation.completed', 'info'],
    ['lead.created', 'info'],
    ['agent.status_changed', 'info'],
    ['signal.product_qualified_lead', 'info'],
    ['signal.disclosure_missed', 'critical'],
  ])('%s is %s', async (name, severity) => {
    expect((await bodyFor(fixture(name))).payload.severity).toBe(severity);
  });

  it.each([
    [95, 'info'],
    [79, 'warning'],
    [59, 'error'],
  ])('evaluation.completed with score %i is %s', async (score, severity) => {
    const base = fixture('evaluation.completed');
    expect((await bodyFor({ ...base, data: { ...base.data, score } })).payload.severity).toBe(severity);
  });

  it.each(FIXTURES)('%s: a valid trigger (summary <= 1,024, source, severity, class, custom_details)', async (name) => {
    const event = fixture(name);
    const body = await bodyFor(event);
    expect(body).toMatchObject({ routing_key: ROUTING_KEY, event_action: 'trigger', dedup_key: pagerDutyDedupKey(event) });
    expect(Array.from(body.payload.summary as string).length).toBeLessThanOrEqual(1_024);
    expect(body.payload.source).toEqual(expect.any(String));
    expect(['critical', 'error', 'warning', 'info']).toContain(body.payload.severity);
    expect(body.payload.class).toBe(name);
    expect(body.payload.custom_details).toEqual(event.data);
  });

  it('cuts a long summary to 1,024 characters and marks test events', async () => {
    const base = fixture('signal.disclosure_missed');
    const body = await bodyFor({ ...base, test: true, data: { ...base.data, disclosure: 'x'.repeat(3_000) } });
    expect(Array.from(body.payload.summary as string)).toHaveLength(1_024);
    expect(body.payload.summary.startsWith('[test] Disclosure missed')).toBe(true);
    expect(body.payload.summary.endsWith('…')).toBe(true);
  });

  it('resolves whatever event types resolve_events names, and only those', async () => {
    const options = { routing_key: ROUTING_KEY, resolve_events: ['agent.status_changed'] };
    const agent = await bodyFor(fixture('agent.status_changed'), options);
    expect(agent).toEqual({ routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: 'sluice-evt_01HZX3K9Q2AGENTSTAT0001' });
    // No longer in the list: signal.resolved would open an alert of its own.
    expect((await bodyFor(catalogExample('signal.resolved'), options)).event_action).toBe('trigger');
  });

  it('lets a template set dedup_key and event_action itself', () => {
    const base = { url: ENQUEUE, options: { routing_key: ROUTING_KEY }, event: fixture('call.failed'), deliveryId: 'd', msgId: 'm', headers: {} };
    const payload = { summary: 'x', source: 'y', severity: 'warning' };
    const ack = pagerDutyConnector.buildRequest({ ...base, payload: { event_action: 'acknowledge', dedup_key: 'mine-1', payload } });
    expect(JSON.parse(ack.body!)).toEqual({ routing_key: ROUTING_KEY, event_action: 'acknowledge', dedup_key: 'mine-1' });
    const trigger = pagerDutyConnector.buildRequest({ ...base, payload: { dedup_key: 'mine-2', payload, routing_key: 'forged', extra: 1 } });
    expect(JSON.parse(trigger.body!)).toEqual({ routing_key: ROUTING_KEY, event_action: 'trigger', dedup_key: 'mine-2', payload });
  });

  it.each([
    ['a non-object', 'summary', /must produce an object with "payload"/],
    ['no payload', {}, /no "payload" object/],
    ['an empty summary', { payload: { summary: '', source: 's', severity: 'info' } }, /payload.summary must be a non-empty string/],
    ['a summary over 1,024 characters', { payload: { summary: 'x'.repeat(1_025), source: 's', severity: 'info' } }, /longer than PagerDuty's 1024 characters/],
    ['no source', { payload: { summary: 'x', severity: 'info' } }, /payload.source/],
    ['an unknown severity', { payload: { summary: 'x', source: 's', severity: 'high' } }, /payload.severity must be one of critical, error, warning, info, not "high"/],
    ['an unknown event_action', { event_action: 'snooze', payload: {} }, /event_action must be one of trigger, acknowledge, resolve/],
    ['a dedup_key over 255 characters', { dedup_key: 'k'.repeat(256), payload: {} }, /dedup_key must be a string of 1 to 255 characters/],
  ])('refuses to build a trigger from a template with %s', (_what, payload, message) => {
    const ctx = { url: ENQUEUE, options: { routing_key: ROUTING_KEY }, payload, event: fixture('call.failed'), deliveryId: 'd', msgId: 'm', headers: {} };
    expect(() => pagerDutyConnector.buildRequest(ctx)).toThrow(message);
  });
});

describe('pagerduty: dedup keys', () => {
  it('are the same for a signal and the signal.resolved that resolves it', () => {
    const trigger = fixture('signal.frustration_spike');
    const resolve = catalogExample('signal.resolved');
    expect(pagerDutyDedupKey(trigger)).toBe('sluice-conv_84302-frustration_spike');
    expect(pagerDutyDedupKey(resolve)).toBe(pagerDutyDedupKey(trigger));
    expect(pagerDutyDedupKey(fixture('signal.disclosure_missed'))).toBe('sluice-conv_84377-disclosure_missed');
  });

  it('use the event id for events without a conversation, and group Sluice alerts per subscription', () => {
    expect(pagerDutyDedupKey(fixture('signal.product_qualified_lead'))).toBe('sluice-evt_01HZX3K9Q2PQLSIGNAL00001');
    expect(pagerDutyDedupKey(fixture('lead.created'))).toBe('sluice-evt_01HZX3K9Q2LEADCREATE0001');
    expect(pagerDutyDedupKey(catalogExample('sluice.webhook.disabled'))).toBe('sluice-sub_01HZX3K9Q2SUBSCRIPT0001-webhook_disabled');
  });

  it('hash keys that would pass PagerDuty\'s 255 characters, deterministically', () => {
    const event = { id: 'evt_1', event: 'signal.frustration_spike', data: { conversation_id: 'c'.repeat(300) } };
    const key = pagerDutyDedupKey(event);
    expect(key).toMatch(/^sluice-sha256-[0-9a-f]{64}$/);
    expect(pagerDutyDedupKey({ ...event, id: 'evt_2' })).toBe(key);
  });
});

describe('pagerduty: ordered by dedup_key', () => {
  const orderingKey = compileOrderingKey(PAGERDUTY_ORDERING.key);
  const keyOf = async (event: Event) => orderingKeyValue(await evaluateOrderingKey(orderingKey, event, {}, ROOMY_LIMITS));

  it('is every new subscription\'s default ordering', () => {
    expect(pagerDutyConnector.subscriptionDefaults?.ordering).toEqual({ key: PAGERDUTY_ORDERING.key, on_failure: 'continue' });
  });

  it('gives each event the dedup_key the connector sends: every catalog example, every fixture, and the edge cases', async () => {
    const catalog = fs.readdirSync(path.join(REPO_ROOT, 'catalog/events')).map((file) => catalogExample(file.replace(/\.json$/, '')));
    const edges: Event[] = [
      { id: 'evt_e1', event: 'signal.resolved', timestamp: '', data: { conversation_id: 'c1' } },
      { id: 'evt_e2', event: 'signal.resolved', timestamp: '', data: { conversation_id: '', signal_type: 'x' } },
      { id: 'evt_e3', event: 'signal.frustration_spike', timestamp: '', data: { conversation_id: 42 } },
      { id: 'evt_e4', event: 'signal.frustration_spike', timestamp: '', data: 'not an object' },
      { id: 'evt_e5', event: 'sluice.delivery.failed', timestamp: '', data: {} },
      { id: 'evt_e6', event: 'sluice.webhook.disabled', timestamp: '', data: { subscription_id: 'sub_9' } },
      { id: 'evt_e7', event: 'call.ended', timestamp: '', data: { conversation_id: 'c1' } },
    ];
    const events = [...catalog, ...FIXTURES.map((name) => fixture(name)), ...edges];
    expect(events.length).toBeGreaterThan(25);
    for (const event of events) expect(await keyOf(event), event.event).toBe(pagerDutyDedupKey(event));
  });

  it('puts a trigger and the signal.resolved that resolves it on one key', async () => {
    expect(await keyOf(fixture('signal.frustration_spike'))).toBe(await keyOf(catalogExample('signal.resolved')));
  });
});

describe('pagerduty: options', () => {
  const validate = new Ajv({ allErrors: true, strict: false }).compile(pagerDutyConnector.optionsSchema);
  const errorsFor = (options: Record<string, unknown>) => (validate(options) ? [] : ajvErrorsToDetails(validate.errors, '$.connector_options', pagerDutyConnector.optionsSchema));

  it('need a 32-character routing key, and take resolve_events and api_base_url', () => {
    expect(errorsFor({ routing_key: ROUTING_KEY })).toEqual([]);
    expect(errorsFor({ routing_key: ROUTING_KEY, resolve_events: ['signal.resolved', 'call.ended'], api_base_url: 'https://events.eu.pagerduty.com' })).toEqual([]);
    expect(errorsFor({})).toEqual([{ path: '$.connector_options.routing_key', message: 'is required' }]);
    expect(errorsFor({ routing_key: 'short' })).toEqual([
      { path: '$.connector_options.routing_key', message: 'must be the 32-character Integration Key of an Events API V2 integration' },
    ]);
    expect(errorsFor({ routing_key: ROUTING_KEY, resolve_events: 'signal.resolved' })).toEqual([{ path: '$.connector_options.resolve_events', message: 'must be array' }]);
  });

  it('keep the routing key secret and derive the destination from the base URL', () => {
    expect(pagerDutyConnector.secretOptions).toEqual(['routing_key']);
    expect(pagerDutyConnector.url).toBe('none');
    expect(pagerDutyConnector.resolveUrl!({ routing_key: ROUTING_KEY })).toBe(ENQUEUE);
    expect(enqueueUrl({ api_base_url: 'http://127.0.0.1:9999/' })).toBe('http://127.0.0.1:9999/v2/enqueue');
  });
});

describe('pagerduty: what each response means', () => {
  const classify = (r: ResponseInfo) =>
    pagerDutyConnector.classifyResponse(r, { url: ENQUEUE, options: { routing_key: ROUTING_KEY }, payload: {}, event: fixture('call.failed'), deliveryId: 'd', msgId: 'm', headers: {} }, {
      method: 'POST',
      url: ENQUEUE,
      headers: {},
      body: '{}',
      sign: false,
    });

  it('202 is delivered', () => {
    expect(classify(response(202, '{"status":"success","message":"Event processed","dedup_key":"sluice-evt_1"}'))).toEqual({ outcome: 'success' });
  });

  it('400 fails the delivery with PagerDuty\'s errors in the reason', () => {
    const body = { status: 'invalid event', message: 'Event object is invalid', errors: ["'payload.summary' is missing or blank", "'payload.severity' is invalid"] };
    expect(classify(response(400, JSON.stringify(body)))).toEqual({
      outcome: 'fail',
      reason: "PagerDuty rejected the event (400): invalid event: Event object is invalid: 'payload.summary' is missing or blank; 'payload.severity' is invalid",
    });
    expect(classify(response(400, 'Bad Request'))).toEqual({ outcome: 'fail', reason: 'PagerDuty rejected the event (400): Bad Request' });
  });

  it('429 is retried no sooner than 30 s', () => {
    expect(classify(response(429, ''))).toEqual({
      outcome: 'retry',
      reason: 'PagerDuty rate limit (429): the event was not ingested; retrying in 30 s or later',
      minDelayMs: RATE_LIMIT_FLOOR_MS,
    });
    expect(RATE_LIMIT_FLOOR_MS).toBe(30_000);
  });

  it.each([500, 502, 503, 504, 408])('%i is retried', (status) => {
    expect(classify(response(status, 'oops'))).toEqual({ outcome: 'retry', reason: `PagerDuty answered ${status}` });
  });

  it('other statuses fail the delivery', () => {
    expect(classify(response(404, '{"message":"Not Found"}'))).toEqual({ outcome: 'fail', reason: 'PagerDuty answered 404: Not Found' });
  });
});

describe('pagerduty: events within PagerDuty\'s 512 KB', () => {
  const trigger = (customDetails: unknown) => ({
    routing_key: ROUTING_KEY,
    event_action: 'trigger',
    dedup_key: 'sluice-evt_big',
    payload: { summary: 'Big', source: 'sluice', severity: 'info', custom_details: customDetails },
  });
  const size = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

  it('leaves an event that fits untouched', () => {
    const event = trigger({ a: 'x'.repeat(1_000) });
    expect(fitEvent(event)).toBe(event);
  });

  it('shortens the largest string first, keeping its start, and notes the cut', () => {
    const details = { small: 'keep me', notes: 'n'.repeat(200_000), transcript: 't'.repeat(700_000) };
    const fitted = fitEvent(trigger(details)) as any;
    expect(size(fitted)).toBeLessThanOrEqual(PAGERDUTY_MAX_EVENT_BYTES);
    expect(fitted.payload.custom_details.small).toBe('keep me');
    expect(fitted.payload.custom_details.notes).toBe(details.notes);
    expect(fitted.payload.custom_details.transcript).toMatch(/^t+…$/);
    expect(fitted.payload.custom_details[CUT_NOTE_KEY].cuts).toEqual([expect.stringMatching(/^custom_details\.transcript: cut from 700,002 to \d{3},\d{3} bytes$/)]);
    // The template's output is not changed: the delivery log shows it as rendered.
    expect(details.transcript).toHaveLength(700_000);
  });

  it('drops the last parts of a large array (its start kept), then of the next largest field', () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => ({ at: i, text: 'ok' }));
    const fitted = fitEvent(trigger({ id: 'call_1', lines, blob: { parts: Array.from({ length: 3_000 }, () => 'p'.repeat(100)) } })) as any;
    expect(size(fitted)).toBeLessThanOrEqual(PAGERDUTY_MAX_EVENT_BYTES);
    const details = fitted.payload.custom_details;
    expect(details.id).toBe('call_1');
    expect(details.lines.length).toBeGreaterThan(0);
    expect(details.lines.length).toBeLessThan(20_000);
    expect(details.lines[0]).toEqual({ at: 0, text: 'ok' });
    expect(details[CUT_NOTE_KEY].cuts[0]).toMatch(/^custom_details\.lines: its last \d+ of 20,?000 fields removed$/);
  });

  it('handles multi-byte text and custom_details that is not an object', () => {
    const fitted = fitEvent(trigger('é😀'.repeat(200_000))) as any;
    expect(size(fitted)).toBeLessThanOrEqual(PAGERDUTY_MAX_EVENT_BYTES);
    expect(fitted.payload.custom_details.value).toMatch(/^(é😀)+(é)?…$/u);
    expect(fitted.payload.custom_details[CUT_NOTE_KEY].cuts).toHaveLength(1);
  });

  it('refuses, naming the template, an event too big outside custom_details', () => {
    const event = { ...trigger({}), links: [{ href: 'https://example.com', text: 'x'.repeat(600_000) }] };
    expect(() => fitEvent(event)).toThrow(/payload, links and images/);
  });

  it('adds client_url (the delivery in the dashboard) when SLUICE_PUBLIC_URL is set, unless the template chose one', async () => {
    const ctx = { ...(await contextFor(fixture('call.failed'))), deliveryId: 'dlv_01ABC', publicUrl: 'https://sluice.example.com' };
    expect(JSON.parse(pagerDutyConnector.buildRequest(ctx).body!)).toMatchObject({ client: 'Sluice', client_url: 'https://sluice.example.com/#/deliveries/dlv_01ABC' });
    expect(dashboardDeliveryUrl('https://ops.example.com/sluice/', 'dlv_1')).toBe('https://ops.example.com/sluice/#/deliveries/dlv_1');
    const own = { ...ctx, payload: { ...(ctx.payload as object), client_url: 'https://runbook.example.com' } };
    expect(JSON.parse(pagerDutyConnector.buildRequest(own).body!).client_url).toBe('https://runbook.example.com');
    expect(JSON.parse(pagerDutyConnector.buildRequest({ ...ctx, publicUrl: undefined }).body!).client_url).toBeUndefined();
  });
});
