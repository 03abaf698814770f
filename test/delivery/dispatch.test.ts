import { describe, expect, it } from 'vitest';
import { TemplateError } from '../../src/errors.ts';
import { generateSigningSecret, signSimple, verifyStandardSignature } from '../../src/core/signing.ts';
import { destinationOf, dispatchAttempt, envelopeOf, loggableUrl, secretValues, type DispatchDeps } from '../../src/delivery/dispatch.ts';
import type { ConnectorContext, ConnectorDefinition, OutboundRequest, ResponseInfo, Verdict } from '../../src/delivery/connector.ts';
import type { HttpClient, SendResult } from '../../src/delivery/http-client.ts';
import type { RuntimeSubscription } from '../../src/services/subscriptions.ts';
import type { ClaimedDelivery, SubscriptionRecord } from '../../src/storage/types.ts';

/**
 * dispatchAttempt in process, with a recording HTTP client and connectors written here: what is
 * sent (headers, signatures, timeout), what the delivery log keeps (masked, scrubbed), and the
 * verdict of each kind of answer.
 */

const now = 1_700_000_000_500;
const MASK = '********';

function subscription(overrides: Partial<SubscriptionRecord> = {}, runtime: Partial<RuntimeSubscription> = {}): RuntimeSubscription {
  const record: SubscriptionRecord = {
    id: 'sub_d', url: 'https://hooks.example/in', events: ['call.ended'], description: null, enabled: true, disabled_reason: null,
    headers: {}, auth_sealed: null, filter: null, mapping: null, connector: 'test', connector_options: {}, connector_secrets_sealed: null,
    retry: null, timeout_seconds: null, rate_limit: null, secret_sealed: '', secret_prefix: 'whsec_',
    previous_secret_sealed: null, previous_secret_expires_at: null, source: 'api', created_at: now, updated_at: now,
    last_delivery_at: null, last_delivery_status: null, last_success_at: null, failing_since: null, deleted_at: null,
    ...overrides,
  } as SubscriptionRecord;
  return { record, auth: null, connectorOptions: {}, secretHeaders: {}, secret: generateSigningSecret(), previousSecret: null, schedule: [0, 60_000], ...runtime };
}

function claimedDelivery(test = false): ClaimedDelivery {
  return {
    delivery: {
      id: 'dlv_d', event_id: 'evt_d', subscription_id: 'sub_d', event: 'call.ended', msg_id: 'msg_d', status: 'delivering',
      attempts: 2, chain: 3, next_attempt_at: now, lease_until: now + 60_000, created_at: now, updated_at: now,
      last_attempt_at: null, last_status_code: null, last_error: null,
    },
    event: { id: 'evt_d', event: 'call.ended', timestamp: '2023-11-14T22:13:20.000Z', data: { call: { id: 'c1' } }, received_at: now, idempotency_key: null, test },
  } as ClaimedDelivery;
}

interface Sent {
  request: OutboundRequest;
  timeoutMs: number;
}

/** A client answering from a list of results (the last repeats), recording what it was asked to send. */
function recordingClient(...results: SendResult[]): { http: HttpClient; sent: Sent[] } {
  const sent: Sent[] = [];
  const http = {
    send: async (request: OutboundRequest, timeoutMs: number) => {
      sent.push({ request, timeoutMs });
      return results[Math.min(sent.length - 1, results.length - 1)];
    },
    close: async () => undefined,
  } as unknown as HttpClient;
  return { http, sent };
}

const answer = (status: number, body = '', headers: Record<string, string> = {}, latencyMs = 10): SendResult => ({
  ok: true,
  response: { status, headers, body },
  latencyMs,
});

function connector(overrides: Partial<ConnectorDefinition> = {}): ConnectorDefinition {
  return {
    name: 'test',
    title: 'Test',
    description: 'test connector',
    optionsSchema: {},
    secretOptions: [],
    url: 'required',
    buildRequest: (ctx) => ({ method: 'POST', url: ctx.url, headers: { 'content-type': 'application/json', ...ctx.headers }, body: JSON.stringify(ctx.payload), sign: true }),
    classifyResponse: (response: ResponseInfo): Verdict =>
      response.status < 300 ? { outcome: 'success' } : response.status >= 500 ? { outcome: 'retry', reason: `HTTP ${response.status}` } : { outcome: 'fail', reason: `HTTP ${response.status}: ${response.body}` },
    ...overrides,
  };
}

function deps(http: HttpClient, overrides: Partial<DispatchDeps> = {}): DispatchDeps {
  return { http, render: async (envelope) => envelope, defaultTimeoutMs: 7_000, userAgent: 'sluice-test/1', ...overrides };
}

describe('envelopeOf', () => {
  it('is event, id, timestamp and data, with test: true only for test events', () => {
    const claimed = claimedDelivery();
    expect(envelopeOf(claimed)).toEqual({ event: 'call.ended', id: 'evt_d', timestamp: '2023-11-14T22:13:20.000Z', data: { call: { id: 'c1' } } });
    expect(envelopeOf(claimedDelivery(true))).toEqual({ ...envelopeOf(claimed), test: true });
  });
});

describe('secretValues', () => {
  it('lists each credential with its base64, percent-encoded and JSON-escaped forms, longest first', () => {
    const sub = subscription({}, { auth: { type: 'basic', username: 'ann', password: 'p@ss/word' }, secretHeaders: { 'x-api-key': 'key"1234' } });
    const values = secretValues(sub, connector());
    expect(new Set(values)).toEqual(
      new Set([
        'p@ss/word', 'p%40ss%2Fword', 'p@ss\\/word',
        'YW5uOnBAc3Mvd29yZA==', 'YW5uOnBAc3Mvd29yZA%3D%3D', // base64 of ann:p@ss/word
        'key"1234', 'key%221234', 'key\\"1234',
      ]),
    );
    for (let i = 1; i < values.length; i++) expect(values[i - 1].length).toBeGreaterThanOrEqual(values[i].length);
  });

  it('covers bearer tokens, header auth, and secret connector options with a URL secret path', () => {
    expect(secretValues(subscription({}, { auth: { type: 'bearer', token: 'tok_abcd' } }), connector())).toEqual(['tok_abcd']);
    expect(secretValues(subscription({}, { auth: { type: 'header', name: 'X-Key', value: 'hdr_abcd' } }), connector())).toEqual(['hdr_abcd']);
    const withOptions = subscription({}, { connectorOptions: { webhook_url: 'https://hooks.example/services/T1/B2/xyz', token: 'opt_secret', public: 'not-secret-value' } });
    const values = secretValues(withOptions, connector({ secretOptions: ['webhook_url', 'token', 'missing'] }));
    expect(values).toContain('https://hooks.example/services/T1/B2/xyz');
    expect(values).toContain('https:\\/\\/hooks.example\\/services\\/T1\\/B2\\/xyz');
    expect(values).toContain(encodeURIComponent('https://hooks.example/services/T1/B2/xyz'));
    expect(values).toContain('/services/T1/B2/xyz');
    expect(values).toContain('opt_secret');
    expect(values).not.toContain('not-secret-value');
    expect(values.indexOf('https://hooks.example/services/T1/B2/xyz')).toBeLessThan(values.indexOf('/services/T1/B2/xyz'));
  });

  it('leaves out values shorter than 4 characters, non-strings, and URL paths shorter than 8', () => {
    const sub = subscription({}, { auth: { type: 'bearer', token: 'abc' }, secretHeaders: { 'x-a': 'abcd' }, connectorOptions: { n: 12345, u: 'https://a.example/short', v: 'https://a.example/1234567' } });
    const values = secretValues(sub, connector({ secretOptions: ['n', 'u', 'v'] }));
    expect(values).not.toContain('abc');
    expect(values).toContain('abcd');
    expect(values).toContain('/1234567');
    expect(values).not.toContain('/short');
    expect(values).not.toContain('12345');
  });
});

describe('loggableUrl and destinationOf', () => {
  const secretUrl = connector({ url: 'none', resolveUrl: (o) => String(o.webhook_url) });
  it('logs a URL whole unless the connector derives it from options and it is a credential', () => {
    expect(loggableUrl('https://hooks.example/a/b?c=d', connector())).toBe('https://hooks.example/a/b?c=d');
    expect(loggableUrl('https://api.example/v1/x', connector({ url: 'none', urlIsSecret: false }))).toBe('https://api.example/v1/x');
    expect(loggableUrl('https://hooks.slack.example/services/T/B/X', secretUrl)).toBe(`https://hooks.slack.example/${MASK}`);
    expect(loggableUrl('not a url', secretUrl)).toBe(MASK);
  });

  it('sends to the subscription URL, or to the one a url-none connector resolves', () => {
    const sub = subscription({ url: 'https://record.example/' }, { connectorOptions: { webhook_url: 'https://resolved.example/x' } });
    expect(destinationOf(sub, connector())).toBe('https://record.example/');
    expect(destinationOf(sub, secretUrl)).toBe('https://resolved.example/x');
    expect(destinationOf(sub, connector({ url: 'none' }))).toBe('https://record.example/');
    expect(destinationOf(sub, connector({ url: 'required', resolveUrl: () => 'https://other.example/' }))).toBe('https://record.example/');
  });
});

describe('dispatchAttempt', () => {
  it('sends the rendered body, signed with every valid secret, and records a successful attempt', async () => {
    const { http, sent } = recordingClient(answer(200, 'ok', { 'x-request-id': 'r1' }, 12.345));
    const previousSecret = generateSigningSecret();
    const sub = subscription({ previous_secret_expires_at: now + 1 }, { previousSecret });
    const result = await dispatchAttempt(deps(http), claimedDelivery(), sub, connector(), now);
    expect(sent).toHaveLength(1);
    const { request, timeoutMs } = sent[0];
    expect(timeoutMs).toBe(7_000);
    const body = JSON.stringify(envelopeOf(claimedDelivery()));
    expect(request.body).toBe(body);
    expect(request.headers['user-agent']).toBe('sluice-test/1');
    expect(request.headers['webhook-id']).toBe('msg_d');
    expect(request.headers['webhook-timestamp']).toBe('1700000000');
    expect(request.headers['X-Webhook-Event']).toBe('call.ended');
    expect(request.headers['X-Webhook-Delivery']).toBe('dlv_d');
    const standard = { id: request.headers['webhook-id'], timestamp: request.headers['webhook-timestamp'], signature: request.headers['webhook-signature'] };
    expect(verifyStandardSignature(body, sub.secret, standard, 1_700_000_000)).toEqual({ ok: true });
    expect(verifyStandardSignature(body, previousSecret, standard, 1_700_000_000)).toEqual({ ok: true });
    expect(request.headers['X-Webhook-Signature']).toBe(`${signSimple(body, sub.secret)}, ${signSimple(body, previousSecret)}`);

    expect(result.verdict).toEqual({ outcome: 'success' });
    expect(result.retryAfterMs).toBeUndefined();
    const { attempt } = result;
    expect(attempt.id).toMatch(/^att_/);
    expect(attempt).toMatchObject({
      delivery_id: 'dlv_d', chain: 3, number: 3, started_at: now, method: 'POST', url: 'https://hooks.example/in', request_body: body,
      response_status: 200, response_headers: { 'x-request-id': 'r1' }, response_body: 'ok', latency_ms: 12.35, error: null, steps: null,
    });
    // Signatures are a replayable credential: masked in the log, the rest kept.
    expect(attempt.request_headers).toEqual({
      'user-agent': 'sluice-test/1', 'content-type': 'application/json', 'webhook-id': 'msg_d', 'webhook-timestamp': '1700000000',
      'webhook-signature': MASK, 'X-Webhook-Signature': MASK, 'X-Webhook-Event': 'call.ended', 'X-Webhook-Delivery': 'dlv_d',
    });
  });

  it('signs with the current secret alone once the previous one expired, and uses the subscription timeout', async () => {
    const { http, sent } = recordingClient(answer(204));
    const sub = subscription({ previous_secret_expires_at: now, timeout_seconds: 3 }, { previousSecret: generateSigningSecret() });
    await dispatchAttempt(deps(http), claimedDelivery(), sub, connector(), now);
    expect(sent[0].timeoutMs).toBe(3_000);
    expect(sent[0].request.headers['X-Webhook-Signature']).toBe(signSimple(sent[0].request.body!, sub.secret));
  });

  it('adds no signature to unsigned requests or requests without a body, and masks authorization on unsigned ones', async () => {
    const { http, sent } = recordingClient(answer(200));
    const unsigned = connector({ buildRequest: (ctx) => ({ method: 'POST', url: ctx.url, headers: { authorization: 'Bearer vendor_token_1' }, body: '{}', sign: false }) });
    const result = await dispatchAttempt(deps(http), claimedDelivery(), subscription(), unsigned, now);
    expect(Object.keys(sent[0].request.headers).sort()).toEqual(['authorization', 'user-agent']);
    expect(result.attempt.request_headers).toEqual({ 'user-agent': 'sluice-test/1', authorization: MASK });

    const bodiless = connector({ buildRequest: (ctx) => ({ method: 'GET', url: ctx.url, headers: {}, body: null, sign: true }) });
    const got = await dispatchAttempt(deps(http), claimedDelivery(), subscription(), bodiless, now);
    expect(Object.keys(sent[1].request.headers)).toEqual(['user-agent']);
    expect(got.attempt).toMatchObject({ method: 'GET', request_body: null });
  });

  it('lets the request headers override the user agent, and masks secret header names in any case', async () => {
    const { http, sent } = recordingClient(answer(200));
    const sub = subscription({ headers: { 'x-plain': 'visible' } }, { secretHeaders: { 'X-Api-Key': 'key_123456' }, auth: { type: 'header', name: 'X-Token', value: 'tok_123456' } });
    const custom = connector({ buildRequest: (ctx) => ({ method: 'PUT', url: ctx.url, headers: { 'user-agent': 'vendor-sdk', ...ctx.headers }, body: '{}', sign: true }) });
    const result = await dispatchAttempt(deps(http), claimedDelivery(), sub, custom, now);
    expect(sent[0].request.headers['user-agent']).toBe('vendor-sdk');
    expect(sent[0].request.headers['x-token']).toBe('tok_123456');
    expect(result.attempt.request_headers).toMatchObject({ 'x-plain': 'visible', 'X-Api-Key': MASK, 'x-token': MASK, 'user-agent': 'vendor-sdk' });
  });

  it('passes the connector the destination, options, payload, event, ids, headers and public URL', async () => {
    const { http } = recordingClient(answer(200));
    let seen: ConnectorContext | undefined;
    const spy = connector({ buildRequest: (ctx) => ((seen = ctx), { method: 'POST', url: ctx.url, headers: {}, body: '{}', sign: true }) });
    const sub = subscription({ headers: { 'x-h': 'v' } }, { connectorOptions: { channel: '#c' } });
    await dispatchAttempt(deps(http, { render: async () => ({ mapped: true }), publicUrl: 'https://sluice.example' }), claimedDelivery(), sub, spy, now);
    expect(seen).toEqual({
      url: 'https://hooks.example/in', options: { channel: '#c' }, payload: { mapped: true },
      event: { id: 'evt_d', event: 'call.ended', timestamp: '2023-11-14T22:13:20.000Z', data: { call: { id: 'c1' } } },
      deliveryId: 'dlv_d', msgId: 'msg_d', headers: { 'x-h': 'v' }, publicUrl: 'https://sluice.example',
      // Unordered: no key, so no connector state for it.
      orderingKey: null, state: null,
    });
  });

  it('renders with the subscription mapping, else the connector default (an empty mapping counts as none), else null', async () => {
    const { http } = recordingClient(answer(200));
    const mappings: (string | null)[] = [];
    const render = async (envelope: Record<string, unknown>, _sub: RuntimeSubscription, mapping: string | null) => (mappings.push(mapping), envelope);
    await dispatchAttempt(deps(http, { render }), claimedDelivery(), subscription({ mapping: '{"a": 1}' }), connector({ defaultMapping: 'default' }), now);
    await dispatchAttempt(deps(http, { render }), claimedDelivery(), subscription({ mapping: '' }), connector({ defaultMapping: 'default' }), now);
    await dispatchAttempt(deps(http, { render }), claimedDelivery(), subscription({ mapping: null }), connector(), now);
    expect(mappings).toEqual(['{"a": 1}', 'default', null]);
  });

  it('fails at once, sending nothing, when the template fails on the event, with its position', async () => {
    const { http, sent } = recordingClient(answer(200));
    const failing = (details: ConstructorParameters<typeof TemplateError>[1]) => async () => {
      throw new TemplateError('bad template', details, 'template_runtime_error');
    };
    const withToken = await dispatchAttempt(deps(http, { render: failing([{ path: '$', message: 'm', line: 2, column: 5, token: 'x' }]) }), claimedDelivery(), subscription(), connector(), now);
    expect(withToken.verdict).toEqual({ outcome: 'fail', reason: 'template error [template_runtime_error]: bad template (line 2, column 5, token "x")' });
    expect(withToken.attempt.error).toBe(withToken.verdict.outcome === 'fail' ? withToken.verdict.reason : '');
    const noToken = await dispatchAttempt(deps(http, { render: failing([{ path: '$', message: 'm', line: 1, column: 3 }]) }), claimedDelivery(), subscription(), connector(), now);
    expect(noToken.attempt.error).toBe('template error [template_runtime_error]: bad template (line 1, column 3)');
    const noLine = await dispatchAttempt(deps(http, { render: failing([]) }), claimedDelivery(), subscription(), connector(), now);
    expect(noLine.attempt.error).toBe('template error [template_runtime_error]: bad template');
    expect(sent).toHaveLength(0);
    expect(withToken.attempt).toMatchObject({ outcome: 'fail', method: 'POST', url: 'https://hooks.example/in', request_headers: {}, response_status: null, steps: null, request_body: null });
  });

  it('lets other render errors through (the worker retries them)', async () => {
    const { http } = recordingClient(answer(200));
    const render = async () => {
      throw new Error('evaluator pool closed');
    };
    await expect(dispatchAttempt(deps(http, { render }), claimedDelivery(), subscription(), connector(), now)).rejects.toThrow('evaluator pool closed');
  });

  it('fails when the connector cannot build the request', async () => {
    const { http, sent } = recordingClient(answer(200));
    const broken = connector({ name: 'broken', buildRequest: () => { throw new Error('channel is required'); } });
    const result = await dispatchAttempt(deps(http), claimedDelivery(), subscription(), broken, now);
    expect(result.verdict).toEqual({ outcome: 'fail', reason: 'connector broken could not build the request: channel is required' });
    expect(result.attempt.error).toBe('connector broken could not build the request: channel is required');
    // Nothing was sent: the attempt shows the delivery's destination and the default method.
    expect(result.attempt).toMatchObject({ method: 'POST', url: 'https://hooks.example/in', response_status: null, latency_ms: 0, steps: null });
    expect(sent).toHaveLength(0);
  });

  it('retries transport errors, but fails SSRF refusals', async () => {
    const transport = await dispatchAttempt(deps(recordingClient({ ok: false, error: 'ECONNRESET: socket hang up', code: 'ECONNRESET', latencyMs: 3 }).http), claimedDelivery(), subscription(), connector(), now);
    expect(transport.verdict).toEqual({ outcome: 'retry', reason: 'ECONNRESET: socket hang up' });
    expect(transport.attempt).toMatchObject({ error: 'ECONNRESET: socket hang up', response_status: null, response_headers: null, response_body: null, latency_ms: 3 });
    const ssrf = await dispatchAttempt(deps(recordingClient({ ok: false, error: 'refused: loopback', code: 'ESSRF', latencyMs: 0 }).http), claimedDelivery(), subscription(), connector(), now);
    expect(ssrf.verdict).toEqual({ outcome: 'fail', reason: 'refused: loopback' });
  });

  it('reads Retry-After from the answer, and takes the larger of it and a connector floor', async () => {
    const retry = await dispatchAttempt(deps(recordingClient(answer(503, '', { 'retry-after': '120' })).http), claimedDelivery(), subscription(), connector(), now);
    expect(retry.verdict).toEqual({ outcome: 'retry', reason: 'HTTP 503' });
    expect(retry.retryAfterMs).toBe(120_000);
    expect(retry.attempt.error).toBe('HTTP 503');
    const dated = await dispatchAttempt(deps(recordingClient(answer(503, '', { 'retry-after': new Date(now + 30_000).toUTCString() })).http), claimedDelivery(), subscription(), connector(), now);
    expect(dated.retryAfterMs).toBe(29_500); // the date has whole seconds; now is .5 s past one
    const floored = (minDelayMs: number) => connector({ classifyResponse: () => ({ outcome: 'retry', reason: 'slow down', minDelayMs }) });
    const floor = await dispatchAttempt(deps(recordingClient(answer(429, '', { 'retry-after': '5' })).http), claimedDelivery(), subscription(), floored(60_000), now);
    expect(floor.retryAfterMs).toBe(60_000);
    const header = await dispatchAttempt(deps(recordingClient(answer(429, '', { 'retry-after': '90' })).http), claimedDelivery(), subscription(), floored(60_000), now);
    expect(header.retryAfterMs).toBe(90_000);
    const floorOnly = await dispatchAttempt(deps(recordingClient(answer(429)).http), claimedDelivery(), subscription(), floored(1_000), now);
    expect(floorOnly.retryAfterMs).toBe(1_000);
    // Retry-After is reported whatever the verdict; the worker decides what to do with it.
    const success = await dispatchAttempt(deps(recordingClient(answer(200, '', { 'retry-after': '7' })).http), claimedDelivery(), subscription(), connector(), now);
    expect(success.retryAfterMs).toBe(7_000);
    expect(success.attempt.error).toBeNull();
  });

  it('follows a multi-step connector, recording each step and summing latency', async () => {
    const { http, sent } = recordingClient(answer(200, '{"id":"1"}', {}, 1.114), answer(201, '{"id":"2"}', {}, 2.225));
    const twoStep = connector({
      url: 'none',
      urlIsSecret: false,
      resolveUrl: () => 'https://api.example/v1/contacts',
      buildRequest: (ctx) => ({ step: 'find', method: 'GET', url: ctx.url, headers: {}, body: null, sign: false }),
      classifyResponse: (response, _ctx, request): Verdict =>
        request.step === 'find' ? { outcome: 'continue', next: { step: 'create', method: 'POST', url: 'https://api.example/v1/notes', headers: {}, body: '{"n":1}', sign: false } } : { outcome: 'success', note: `created ${response.body}` },
    });
    const result = await dispatchAttempt(deps(http), claimedDelivery(), subscription(), twoStep, now);
    expect(sent.map((s) => [s.request.method, s.request.url])).toEqual([['GET', 'https://api.example/v1/contacts'], ['POST', 'https://api.example/v1/notes']]);
    expect(result.verdict).toEqual({ outcome: 'success', note: 'created {"id":"2"}' });
    expect(result.attempt).toMatchObject({ method: 'POST', url: 'https://api.example/v1/notes', request_body: '{"n":1}', response_status: 201, response_body: '{"id":"2"}', latency_ms: 3.34, error: null });
    expect(result.attempt.steps!.map((s) => [s.name, s.method, s.url, s.response_status, s.latency_ms])).toEqual([
      ['find', 'GET', 'https://api.example/v1/contacts', 200, 1.114],
      ['create', 'POST', 'https://api.example/v1/notes', 201, 2.225],
    ]);
  });

  it('names a step after the connector when the request has no step label', async () => {
    const { http } = recordingClient(answer(200));
    let first = true;
    const looping = connector({
      name: 'looper',
      classifyResponse: (): Verdict => (first ? ((first = false), { outcome: 'continue', next: { method: 'POST', url: 'https://hooks.example/2', headers: {}, body: '{}', sign: true } }) : { outcome: 'success' }),
    });
    const result = await dispatchAttempt(deps(http), claimedDelivery(), subscription(), looping, now);
    expect(result.attempt.steps!.map((s) => s.name)).toEqual(['looper', 'looper']);
  });

  it('stops a connector that keeps continuing after 10 requests', async () => {
    const { http, sent } = recordingClient(answer(200));
    const endless = connector({ name: 'endless', classifyResponse: (): Verdict => ({ outcome: 'continue', next: { method: 'POST', url: 'https://hooks.example/again', headers: {}, body: '{}', sign: true } }) });
    const result = await dispatchAttempt(deps(http), claimedDelivery(), subscription(), endless, now);
    expect(sent).toHaveLength(10);
    expect(result.verdict).toEqual({ outcome: 'fail', reason: 'connector endless exceeded 10 requests in one attempt' });
    expect(result.attempt.steps).toHaveLength(10);
    expect(result.attempt.error).toBe('connector endless exceeded 10 requests in one attempt');
  });

  it('scrubs secrets echoed anywhere in what the log keeps, and in the reason', async () => {
    const token = 'tok_SECRET_0123456789';
    const sub = subscription({}, { auth: { type: 'bearer', token } });
    const echo = answer(400, `bad token ${token}`, { 'x-echo': `Bearer ${encodeURIComponent(token)}` });
    const { http } = recordingClient(echo);
    const echoing = connector({ buildRequest: (ctx) => ({ method: 'POST', url: `${ctx.url}?t=${token}`, headers: { ...ctx.headers, 'x-copy': token }, body: JSON.stringify({ token }), sign: true }) });
    const result = await dispatchAttempt(deps(http), claimedDelivery(), sub, echoing, now);
    expect(JSON.stringify(result)).not.toContain('SECRET');
    expect(result.verdict).toEqual({ outcome: 'fail', reason: `HTTP 400: bad token ${MASK}` });
    expect(result.attempt.url).toBe(`https://hooks.example/in?t=${MASK}`);
    expect(result.attempt.request_body).toBe(`{"token":"${MASK}"}`);
    expect(result.attempt.request_headers['x-copy']).toBe(MASK);
    expect(result.attempt.request_headers.authorization).toBe(MASK);
    expect(result.attempt.response_headers).toEqual({ 'x-echo': `Bearer ${MASK}` });
    expect(result.attempt.error).toBe(`HTTP 400: bad token ${MASK}`);
  });

  it('logs a credential URL of a url-none connector by origin only', async () => {
    const { http, sent } = recordingClient(answer(500));
    const slackLike = connector({ url: 'none', resolveUrl: (o) => String(o.webhook_url), buildRequest: (ctx) => ({ method: 'POST', url: ctx.url, headers: {}, body: '{}', sign: true }) });
    const sub = subscription({ url: '' }, { connectorOptions: { webhook_url: 'https://hooks.slack.example/services/T1/B1/XYZ' } });
    const result = await dispatchAttempt(deps(http), claimedDelivery(), sub, slackLike, now);
    expect(sent[0].request.url).toBe('https://hooks.slack.example/services/T1/B1/XYZ');
    expect(result.attempt.url).toBe(`https://hooks.slack.example/${MASK}`);
    expect(result.verdict).toEqual({ outcome: 'retry', reason: 'HTTP 500' });
  });
});

describe('dispatchAttempt with connector state per ordering key', () => {
  /** A key-state store recording its calls, starting with `initial` for every key. */
  function store(initial?: Record<string, string>, failSet?: string) {
    const calls: unknown[][] = [];
    const keyState: NonNullable<DispatchDeps['keyState']> = {
      get: async (subscriptionId, orderingKey) => (calls.push(['get', subscriptionId, orderingKey]), initial),
      set: async (subscriptionId, orderingKey, value) => {
        calls.push(['set', subscriptionId, orderingKey, value]);
        if (failSet) throw new Error(failSet);
      },
    };
    return { keyState, calls };
  }
  const ordered = (key: string | null | undefined): ClaimedDelivery => {
    const claimed = claimedDelivery();
    return { ...claimed, delivery: { ...claimed.delivery, ordering_key: key } } as ClaimedDelivery;
  };
  /** A connector that keeps state when its options say `thread: true`, returning `next` as the state to keep. */
  const threaded = (next: Record<string, string> | null | undefined, seen: ConnectorContext[] = []) =>
    connector({
      usesKeyState: (options) => options.thread === true,
      buildRequest: (ctx) => (seen.push(ctx), { method: 'POST', url: ctx.url, headers: {}, body: '{}', sign: true }),
      classifyResponse: (response): Verdict => (response.status < 300 ? (next === undefined ? { outcome: 'success' } : { outcome: 'success', state: next }) : { outcome: 'retry', reason: `HTTP ${response.status}` }),
    });
  const threadedSub = () => subscription({}, { connectorOptions: { thread: true } });

  it('hands the connector what the key last kept, and keeps what a success returns', async () => {
    const { keyState, calls } = store({ ts: '1.0' });
    const seen: ConnectorContext[] = [];
    const result = await dispatchAttempt(deps(recordingClient(answer(200)).http, { keyState }), ordered('call-1'), threadedSub(), threaded({ ts: '2.0' }, seen), now);
    expect(seen[0]).toMatchObject({ orderingKey: 'call-1', state: { ts: '1.0' } });
    expect(calls).toEqual([['get', 'sub_d', 'call-1'], ['set', 'sub_d', 'call-1', { ts: '2.0' }]]);
    expect(result.verdict).toEqual({ outcome: 'success', state: { ts: '2.0' } });
    expect(result.attempt.error).toBeNull();
  });

  it('gives null state when the key has none kept, and forgets it when a success returns null', async () => {
    const { keyState, calls } = store(undefined);
    const seen: ConnectorContext[] = [];
    await dispatchAttempt(deps(recordingClient(answer(200)).http, { keyState }), ordered('call-2'), threadedSub(), threaded(null, seen), now);
    expect(seen[0].state).toBeNull();
    expect(calls).toEqual([['get', 'sub_d', 'call-2'], ['set', 'sub_d', 'call-2', null]]);
  });

  it('leaves the kept state as it is when a success returns none, or the attempt is not a success', async () => {
    const { keyState, calls } = store({ ts: '1.0' });
    await dispatchAttempt(deps(recordingClient(answer(200)).http, { keyState }), ordered('k'), threadedSub(), threaded(undefined), now);
    await dispatchAttempt(deps(recordingClient(answer(503)).http, { keyState }), ordered('k'), threadedSub(), threaded({ ts: '9' }), now);
    expect(calls).toEqual([['get', 'sub_d', 'k'], ['get', 'sub_d', 'k']]);
  });

  it('reads and keeps nothing for unordered deliveries, connectors that do not use it, or without a store', async () => {
    const { keyState, calls } = store({ ts: '1.0' });
    const seen: ConnectorContext[] = [];
    const http = recordingClient(answer(200)).http;
    // No ordering key (null or absent).
    await dispatchAttempt(deps(http, { keyState }), ordered(null), threadedSub(), threaded({ ts: '2' }, seen), now);
    await dispatchAttempt(deps(http, { keyState }), ordered(undefined), threadedSub(), threaded({ ts: '2' }, seen), now);
    // The connector does not use key state with these options, or at all.
    await dispatchAttempt(deps(http, { keyState }), ordered('k'), subscription({}, { connectorOptions: { thread: false } }), threaded({ ts: '2' }, seen), now);
    await dispatchAttempt(deps(http, { keyState }), ordered('k'), threadedSub(), connector({ buildRequest: (ctx) => (seen.push(ctx), { method: 'POST', url: ctx.url, headers: {}, body: '{}', sign: true }), classifyResponse: () => ({ outcome: 'success', state: { ts: '2' } }) }), now);
    expect(calls).toEqual([]);
    // No store at all: the key is still passed on, with no state.
    await dispatchAttempt(deps(http), ordered('k'), threadedSub(), threaded({ ts: '2' }, seen), now);
    expect(seen.map((ctx) => [ctx.orderingKey, ctx.state])).toEqual([[null, null], [null, null], ['k', null], ['k', null], ['k', null]]);
  });

  it('still reports a success whose state could not be kept, saying so in the attempt', async () => {
    const { keyState, calls } = store(undefined, 'database is locked');
    const result = await dispatchAttempt(deps(recordingClient(answer(200)).http, { keyState }), ordered('call-3'), threadedSub(), threaded({ ts: '3.0' }), now);
    expect(calls).toHaveLength(2);
    expect(result.verdict).toEqual({ outcome: 'success', state: { ts: '3.0' } });
    expect(result.attempt.error).toBe('delivered, but what the connector keeps for key "call-3" could not be stored: database is locked');
  });
});
