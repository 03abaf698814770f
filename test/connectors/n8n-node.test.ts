import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { IDataObject, IHookFunctions, IHttpRequestOptions, ILoadOptionsFunctions, IWebhookFunctions, IWebhookResponseData } from 'n8n-workflow';
import { SluiceTrigger } from '../../connectors/n8n/nodes/SluiceTrigger/SluiceTrigger.node.ts';
import { CATALOG_EVENTS, eventOptions } from '../../connectors/n8n/nodes/SluiceTrigger/event-catalog.ts';
import { standardSignature, verifyStandardWebhook } from '../../connectors/n8n/nodes/SluiceTrigger/verify-signature.ts';
import { SluiceApi } from '../../connectors/n8n/credentials/SluiceApi.credentials.ts';
import { ADMIN_KEY, REPO_ROOT, fixture, startGateway, waitFor, type TestGateway } from '../support/gateway.ts';

// n8n loads community nodes with require(), so the node runs here against n8n-workflow's
// CommonJS build too; its ESM build uses extensionless imports that only bundlers resolve.
vi.mock('n8n-workflow', async () => {
  const { createRequire } = await import('node:module');
  return createRequire(import.meta.url)('n8n-workflow');
});

/**
 * Drives the Sluice Trigger node as n8n would: its webhook methods against a real gateway, and
 * its webhook() handler inside a small stand-in for n8n's webhook server on a loopback port.
 */

const FAST_RETRY = { schedule: ['0s', '50ms', '50ms'] };
/** A Sluice Trigger as a new workflow gets it: version 2 (the default). */
const NODE = { id: 'node-1', name: 'Sluice Trigger', type: 'n8n-nodes-sluice.sluiceTrigger', typeVersion: 2, position: [0, 0] as [number, number], parameters: {} };

interface NodeParams {
  events?: string[];
  options?: { filter?: string; verifySignature?: boolean };
}

interface Credentials {
  baseUrl: string;
  apiKey: string;
}

/** n8n's httpRequestWithAuthentication, for the options the node uses, over fetch. */
function httpRequestWithAuthentication(credentials: Credentials) {
  return async function (this: unknown, credentialType: string, options: IHttpRequestOptions): Promise<unknown> {
    expect(credentialType).toBe('sluiceApi');
    const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${credentials.apiKey}` };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(options.url, {
      method: options.method ?? 'GET',
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : '';
    } catch {
      // not JSON: keep the text
    }
    if (!options.ignoreHttpStatusErrors && response.status >= 400) throw new Error(`Request failed with status code ${response.status}`);
    return options.returnFullResponse ? { body, headers: Object.fromEntries(response.headers), statusCode: response.status, statusMessage: response.statusText } : body;
  };
}

function nodeParameter(params: NodeParams) {
  return (name: string, fallback?: unknown) => (name in params ? (params as Record<string, unknown>)[name] : fallback);
}

/** What IHookFunctions gives checkExists/create/delete, as far as the node uses it. */
function hookContext(opts: { credentials: Credentials; params: NodeParams; staticData: IDataObject; webhookUrl: string }): IHookFunctions {
  return {
    getNode: () => NODE,
    getNodeParameter: nodeParameter(opts.params),
    getNodeWebhookUrl: (name: string) => (name === 'default' ? opts.webhookUrl : undefined),
    getWorkflowStaticData: (type: string) => {
      expect(type).toBe('node');
      return opts.staticData;
    },
    getCredentials: async (type: string) => {
      expect(type).toBe('sluiceApi');
      return { ...opts.credentials };
    },
    helpers: { httpRequestWithAuthentication: httpRequestWithAuthentication(opts.credentials) },
  } as unknown as IHookFunctions;
}

function loadOptionsContext(credentials: Credentials): ILoadOptionsFunctions {
  return {
    getNode: () => NODE,
    getCredentials: async () => ({ ...credentials }),
    helpers: { httpRequestWithAuthentication: httpRequestWithAuthentication(credentials) },
  } as unknown as ILoadOptionsFunctions;
}

/** A request as n8n hands it to webhook(): lower-cased headers, the raw bytes, the parsed body. */
interface IncomingCall {
  headers: http.IncomingHttpHeaders;
  rawBody: Buffer;
}

/** An express-like response that records what webhook() writes on it. */
function recordingResponse() {
  const written: { status?: number; body?: unknown } = {};
  const res = {
    status(code: number) {
      written.status = code;
      return res;
    },
    json(body: unknown) {
      written.body = body;
      return res;
    },
    send(body: unknown) {
      written.body = body;
      return res;
    },
    end() {
      return res;
    },
  };
  return { res, written };
}

function webhookContext(call: IncomingCall, params: NodeParams, staticData: IDataObject, typeVersion = NODE.typeVersion) {
  const { res, written } = recordingResponse();
  const ctx = {
    getNode: () => ({ ...NODE, typeVersion }),
    getNodeParameter: nodeParameter(params),
    getWorkflowStaticData: () => staticData,
    getRequestObject: () => ({ headers: call.headers, rawBody: call.rawBody, body: JSON.parse(call.rawBody.toString('utf8')) }),
    getHeaderData: () => call.headers,
    getBodyData: () => JSON.parse(call.rawBody.toString('utf8')) as IDataObject,
    getResponseObject: () => res,
    helpers: {
      returnJsonArray: (data: IDataObject | IDataObject[]) => (Array.isArray(data) ? data : [data]).map((json) => ({ json })),
    },
  } as unknown as IWebhookFunctions;
  return { ctx, written };
}

async function runWebhook(node: SluiceTrigger, call: IncomingCall, params: NodeParams, staticData: IDataObject, typeVersion?: number) {
  const { ctx, written } = webhookContext(call, params, staticData, typeVersion);
  const result: IWebhookResponseData = await node.webhook.call(ctx);
  return { result, written };
}

/**
 * A stand-in for n8n's webhook server: a registered path runs the node's webhook() and answers
 * as n8n does (200 "Workflow was started", or the response webhook() wrote itself); any other
 * path gets n8n's 404 "not registered".
 */
async function startFakeN8n() {
  const calls: IncomingCall[] = [];
  const emitted: IDataObject[][] = [];
  const registered = new Map<string, { node: SluiceTrigger; params: NodeParams; staticData: IDataObject }>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const call: IncomingCall = { headers: req.headers, rawBody: Buffer.concat(chunks) };
      calls.push(call);
      const path = (req.url ?? '').replace(/^\/webhook\//, '');
      const workflow = registered.get(req.url ?? '');
      if (!workflow) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 404, message: `The requested webhook "${req.method} ${path}" is not registered.`, hint: "Click the 'Execute workflow' button on the canvas, then try again." }));
        return;
      }
      const { result, written } = await runWebhook(workflow.node, call, workflow.params, workflow.staticData);
      if (result.workflowData) emitted.push(result.workflowData[0].map((item) => item.json));
      if (result.noWebhookResponse) {
        res.writeHead(written.status ?? 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(written.body ?? {}));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'Workflow was started' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    calls,
    emitted,
    activate(webhookUrl: string, node: SluiceTrigger, params: NodeParams, staticData: IDataObject) {
      registered.set(new URL(webhookUrl).pathname, { node, params, staticData });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let gw: TestGateway;
let n8n: Awaited<ReturnType<typeof startFakeN8n>>;
let credentials: Credentials;
let pathCounter = 0;

beforeAll(async () => {
  gw = await startGateway();
  n8n = await startFakeN8n();
  credentials = { baseUrl: `${gw.url}/`, apiKey: ADMIN_KEY };
});

afterAll(async () => {
  await n8n?.close();
  await gw?.stop();
});

/** A fresh trigger node with its own webhook URL (n8n's `<webhookId>/webhook` path) and static data. */
function newTrigger(params: NodeParams = { events: ['call.ended'] }) {
  pathCounter += 1;
  const webhookUrl = `${n8n.base}/webhook/0b8c2f4e-${String(pathCounter).padStart(4, '0')}-4b8e-9c1d-5a7f3e2d1c0b/webhook`;
  const node = new SluiceTrigger();
  const staticData: IDataObject = {};
  const hook = () => hookContext({ credentials, params, staticData, webhookUrl });
  return { node, params, staticData, webhookUrl, hook, methods: node.webhookMethods.default };
}

async function postEvent(name: string, id: string): Promise<void> {
  const res = await gw.api('POST', '/api/v1/events', { ...fixture(name), id });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
}

async function deliveryOf(eventId: string, subscriptionId: string) {
  const list = await waitFor(async () => {
    const res = await gw.api('GET', `/api/v1/webhooks/${subscriptionId}/deliveries`);
    return (res.body.data as any[]).find((d) => d.event_id === eventId || d.event?.id === eventId);
  }, 5_000, `a delivery of ${eventId}`);
  return list;
}

async function finalDelivery(deliveryId: string) {
  return waitFor(async () => {
    const res = await gw.api('GET', `/api/v1/deliveries/${deliveryId}`);
    return res.body.status === 'delivered' || res.body.status === 'failed' ? res.body : undefined;
  }, 10_000, `delivery ${deliveryId} to finish`);
}

describe('activation: checkExists / create / delete against the hooks API', () => {
  it('creates a hook for the node URL on activation, finds it again, and deletes it idempotently', async () => {
    const t = newTrigger({ events: ['call.ended', 'call.*'], options: { filter: 'data.call.duration > 1' } });

    expect(await t.methods.checkExists.call(t.hook())).toBe(false);
    expect(await t.methods.create.call(t.hook())).toBe(true);
    expect(t.staticData.hookId).toEqual(expect.any(String));
    expect(t.staticData.signingSecret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);

    const list = await gw.api('GET', '/api/v1/webhooks');
    const sub = (list.body.data as any[]).find((s) => s.id === t.staticData.hookId);
    expect(sub).toMatchObject({ url: t.webhookUrl, events: ['call.ended', 'call.*'], connector: 'n8n', filter: 'data.call.duration > 1' });
    const hook = await gw.api('GET', `/api/v1/hooks/${t.staticData.hookId}`);
    expect(hook.body).toMatchObject({ id: t.staticData.hookId, target_url: t.webhookUrl, connector: 'n8n' });
    expect(hook.body.signing_secret).toBeUndefined();

    expect(await t.methods.checkExists.call(t.hook())).toBe(true);

    const hookId = t.staticData.hookId as string;
    expect(await t.methods.delete.call(t.hook())).toBe(true);
    expect(t.staticData).toEqual({});
    expect((await gw.api('GET', `/api/v1/hooks/${hookId}`)).status).toBe(404);
    expect(((await gw.api('GET', '/api/v1/webhooks')).body.data as any[]).some((s) => s.id === hookId)).toBe(false);

    // Again with nothing stored, and again with the stale id (n8n retries unsubscribes).
    expect(await t.methods.delete.call(t.hook())).toBe(true);
    t.staticData.hookId = hookId;
    expect(await t.methods.delete.call(t.hook())).toBe(true);
    expect(t.staticData).toEqual({});
  });

  it('checkExists is false and forgets the hook once Sluice no longer has it', async () => {
    const t = newTrigger();
    await t.methods.create.call(t.hook());
    const hookId = t.staticData.hookId as string;
    expect((await gw.api('DELETE', `/api/v1/hooks/${hookId}`)).status).toBe(200);

    expect(await t.methods.checkExists.call(t.hook())).toBe(false);
    expect(t.staticData).toEqual({});
  });

  it('checkExists deletes a stored hook that points at another URL, so it stops receiving deliveries', async () => {
    const t = newTrigger();
    await t.methods.create.call(t.hook());
    const oldHookId = t.staticData.hookId as string;
    // n8n now gives this node another URL (its base URL or path changed).
    const movedUrl = t.webhookUrl.replace('/webhook/', '/webhook-moved/');
    const moved = hookContext({ credentials, params: t.params, staticData: t.staticData, webhookUrl: movedUrl });
    expect(await t.methods.checkExists.call(moved)).toBe(false);
    expect(t.staticData).toEqual({});
    expect((await gw.api('GET', `/api/v1/hooks/${oldHookId}`)).status).toBe(404);
    expect(((await gw.api('GET', '/api/v1/webhooks')).body.data as any[]).some((s) => s.id === oldHookId)).toBe(false);

    // create() then subscribes the new URL, and only it is live.
    expect(await t.methods.create.call(moved)).toBe(true);
    expect((await gw.api('GET', `/api/v1/hooks/${t.staticData.hookId}`)).body).toMatchObject({ target_url: movedUrl });
    expect(await t.methods.checkExists.call(moved)).toBe(true);
    await t.methods.delete.call(moved);
  });

  it('replaces a hook whose signing secret was lost, since nothing it delivers could be verified', async () => {
    const t = newTrigger();
    await t.methods.create.call(t.hook());
    const hookId = t.staticData.hookId as string;
    delete t.staticData.signingSecret;

    expect(await t.methods.checkExists.call(t.hook())).toBe(false);
    expect(t.staticData).toEqual({});
    expect((await gw.api('GET', `/api/v1/hooks/${hookId}`)).status).toBe(404);
  });

  it('refuses to activate without events, and reports Sluice’s reason for a bad key', async () => {
    const none = newTrigger({ events: [] });
    await expect(none.methods.create.call(none.hook())).rejects.toThrow(/at least one event/);

    const t = newTrigger();
    const badKey = hookContext({ credentials: { ...credentials, apiKey: 'sk_wrong' }, params: t.params, staticData: t.staticData, webhookUrl: t.webhookUrl });
    await expect(t.methods.create.call(badKey)).rejects.toThrow(/Sluice answered 401 to POST \/api\/v1\/hooks/);
    expect(t.staticData).toEqual({});

    const unknownEvent = newTrigger({ events: ['call.nope'] });
    await expect(unknownEvent.methods.create.call(unknownEvent.hook())).rejects.toThrow(/Sluice answered 422/);
  });
});

describe('deliveries: a real event through the gateway to webhook()', () => {
  it('verifies the signature of a real delivery and emits the envelope with the delivery headers', async () => {
    const t = newTrigger();
    await t.methods.create.call(t.hook());
    n8n.activate(t.webhookUrl, t.node, t.params, t.staticData);
    const before = n8n.emitted.length;

    const eventId = `evt_n8n_ok_${Date.now().toString(36)}`;
    await postEvent('call.ended', eventId);
    const delivery = await deliveryOf(eventId, t.staticData.hookId as string);
    const done = await finalDelivery(delivery.id);

    expect(done.status).toBe('delivered');
    expect(done.attempts).toHaveLength(1);
    expect(done.attempts[0].response.status).toBe(200);
    const items = n8n.emitted.slice(before).find((batch) => (batch[0]?.body as IDataObject | undefined)?.id === eventId);
    const envelope = { event: 'call.ended', id: eventId, timestamp: fixture('call.ended').timestamp, data: fixture('call.ended').data };
    expect(items).toEqual([{ body: envelope, headers: expect.objectContaining({ 'content-type': 'application/json', 'x-webhook-event': 'call.ended' }) }]);
    // webhook-id is what a workflow deduplicates on: the one the gateway logged for this delivery.
    const headers = items![0].headers as Record<string, string>;
    expect(headers['webhook-id']).toBe(done.attempts[0].request.headers['webhook-id']);
    expect(headers['webhook-id']).toMatch(/^msg_/);

    // A version 1 node (a workflow built before version 2) still emits the body alone.
    const call = n8n.calls.find((c) => c.rawBody.toString('utf8').includes(eventId))!;
    const v1 = await runWebhook(t.node, call, t.params, t.staticData, 1);
    expect(v1.result.workflowData?.[0].map((item) => item.json)).toEqual([envelope]);
    await t.methods.delete.call(t.hook());
  });

  it('answers 401 and emits nothing when the body is tampered with or the secret is wrong', async () => {
    const t = newTrigger();
    await t.methods.create.call(t.hook());
    // Capture a genuine delivery without running the node, then replay variations of it.
    const eventId = `evt_n8n_capture_${Date.now().toString(36)}`;
    await postEvent('call.ended', eventId);
    const call = await waitFor(() => n8n.calls.find((c) => c.rawBody.toString('utf8').includes(eventId)), 5_000, 'the captured call');

    const genuine = await runWebhook(t.node, call, t.params, t.staticData);
    expect(genuine.result.workflowData?.[0]).toHaveLength(1);
    expect(genuine.written).toEqual({});

    const tampered = { ...call, rawBody: Buffer.from(call.rawBody.toString('utf8').replace('"call.ended"', '"call.failed"')) };
    const rejected = await runWebhook(t.node, tampered, t.params, t.staticData);
    expect(rejected.result).toEqual({ noWebhookResponse: true });
    expect(rejected.written.status).toBe(401);
    expect(rejected.written.body).toMatchObject({ error: { code: 'invalid_signature' } });

    const wrongSecret = await runWebhook(t.node, call, t.params, { ...t.staticData, signingSecret: 'whsec_' + Buffer.alloc(32, 7).toString('base64') });
    expect(wrongSecret.result.workflowData).toBeUndefined();
    expect(wrongSecret.written.status).toBe(401);

    const unsigned = { ...call, headers: { ...call.headers, 'webhook-signature': undefined } };
    expect((await runWebhook(t.node, unsigned, t.params, t.staticData)).written.status).toBe(401);

    // With verification turned off, the same tampered call goes through.
    const lax = await runWebhook(t.node, tampered, { ...t.params, options: { verifySignature: false } }, t.staticData);
    expect(lax.result.workflowData?.[0][0].json).toMatchObject({ body: { event: 'call.failed', id: eventId } });
    await t.methods.delete.call(t.hook());
  });

  it('the n8n connector fails (does not retry) a delivery the trigger answers 401', async () => {
    const t = newTrigger();
    await t.methods.create.call(t.hook());
    const patch = await gw.api('PATCH', `/api/v1/webhooks/${t.staticData.hookId}`, { retry: FAST_RETRY });
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);
    n8n.activate(t.webhookUrl, t.node, t.params, { ...t.staticData, signingSecret: 'whsec_' + Buffer.alloc(32, 1).toString('base64') });

    const eventId = `evt_n8n_401_${Date.now().toString(36)}`;
    await postEvent('call.ended', eventId);
    const done = await finalDelivery((await deliveryOf(eventId, t.staticData.hookId as string)).id);

    expect(done.status).toBe('failed');
    expect(done.attempts).toHaveLength(1);
    expect(done.attempts[0]).toMatchObject({ outcome: 'fail', response: { status: 401 } });
    expect(done.attempts[0].error).toMatch(/could not verify the signature/);
    await t.methods.delete.call(t.hook());
  });

  it('retries n8n’s 404 "not registered" until the workflow is active', async () => {
    const t = newTrigger();
    await t.methods.create.call(t.hook());
    const patch = await gw.api('PATCH', `/api/v1/webhooks/${t.staticData.hookId}`, { retry: { schedule: ['0s', '100ms', '100ms', '100ms', '100ms'] } });
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);

    const eventId = `evt_n8n_404_${Date.now().toString(36)}`;
    await postEvent('call.ended', eventId);
    const delivery = await deliveryOf(eventId, t.staticData.hookId as string);
    // The first attempt finds no active workflow; then the workflow is activated.
    await waitFor(async () => (await gw.api('GET', `/api/v1/deliveries/${delivery.id}`)).body.attempts?.length >= 1, 5_000, 'the first attempt');
    n8n.activate(t.webhookUrl, t.node, t.params, t.staticData);
    const done = await finalDelivery(delivery.id);

    expect(done.status, JSON.stringify(done.attempts, null, 1)).toBe('delivered');
    expect(done.attempts[0]).toMatchObject({ outcome: 'retry', response: { status: 404 } });
    expect(done.attempts.at(-1)).toMatchObject({ outcome: 'success', response: { status: 200 } });
    await t.methods.delete.call(t.hook());
  });
});

/**
 * n8n's "Test" button for the credential: the credential's `authenticate` header and `test`
 * request with its expressions resolved; any answer but 2xx fails the test (axios semantics).
 */
async function testCredential(creds: Credentials): Promise<number> {
  const credential = new SluiceApi();
  const resolve = (value: string) => value.replace(/^=/, '').replace(/\{\{\$credentials\.(\w+)\}\}/g, (_m, name: string) => String(creds[name as keyof Credentials]));
  const { request } = credential.test;
  const url = new URL(request.url!.replace(/^\//, ''), resolve(request.baseURL!).replace(/\/*$/, '/'));
  for (const [name, value] of Object.entries(request.qs ?? {})) url.searchParams.set(name, String(value));
  const headers = credential.authenticate.properties.headers as Record<string, string>;
  const response = await fetch(url, {
    method: request.method ?? 'GET',
    headers: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, resolve(value)])),
  });
  await response.arrayBuffer();
  return response.status;
}

describe('credential test', () => {
  it('passes with an admin key and fails with a read, ingest or wrong key', async () => {
    expect(await testCredential(credentials)).toBe(200);
    for (const role of ['read', 'ingest']) {
      const key = (await gw.api('POST', '/api/v1/keys', { role })).body.key as string;
      // A read key can list event types, so the old test passed it; activation then failed with 403.
      expect((await fetch(`${gw.url}/api/v1/event-types`, { headers: { authorization: `Bearer ${key}` } })).status === 200).toBe(role === 'read');
      expect(await testCredential({ ...credentials, apiKey: key }), role).toBe(403);
    }
    expect(await testCredential({ ...credentials, apiKey: 'sk_wrong' })).toBe(401);
  });
});

describe('event picker', () => {
  it('loads the live catalog from GET /api/v1/event-types, with wildcards first', async () => {
    const node = new SluiceTrigger();
    const options = await node.methods.loadOptions.getEventTypes.call(loadOptionsContext(credentials));
    const values = options.map((o) => o.value);
    expect(values.slice(0, 6)).toEqual(['*', 'call.*', 'lead.*', 'review.*', 'signal.*', 'sluice.*']);
    expect(values).toEqual(expect.arrayContaining(['*', 'call.*', 'signal.*', 'sluice.*', 'call.ended', 'sluice.delivery.failed']));
    expect(values).not.toContain('agent.*'); // a family of one gets no wildcard
    expect(options.find((o) => o.value === 'call.ended')?.description).toMatch(/A call finished normally/);
  });

  it('falls back to the shipped catalog when Sluice cannot be reached', async () => {
    const node = new SluiceTrigger();
    const offline = loadOptionsContext({ baseUrl: 'http://127.0.0.1:9', apiKey: ADMIN_KEY });
    expect(await node.methods.loadOptions.getEventTypes.call(offline)).toEqual(eventOptions(CATALOG_EVENTS));
  });

  it('ships the same event names as catalog/events/', () => {
    const dir = path.join(REPO_ROOT, 'catalog/events');
    const names = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')).name).sort();
    expect(CATALOG_EVENTS.map((e) => e.name).sort()).toEqual(names);
  });
});

describe('verifyStandardWebhook', () => {
  const secret = 'whsec_' + Buffer.alloc(32, 42).toString('base64');
  const body = '{"event":"call.ended","id":"evt_1"}';
  const now = 1_760_000_000;
  const signed = (overrides: Record<string, string | undefined> = {}) => ({
    'webhook-id': 'msg_1',
    'webhook-timestamp': String(now),
    'webhook-signature': standardSignature(secret, 'msg_1', String(now), body),
    ...overrides,
  });

  it('accepts the signature Sluice computes (the gateway’s own signer agrees)', async () => {
    const { signStandardWebhooks } = await import('../../src/core/signing.ts');
    expect(standardSignature(secret, 'msg_1', String(now), body)).toBe(signStandardWebhooks({ msgId: 'msg_1', timestampSeconds: now, body, secrets: [secret] }));
    expect(verifyStandardWebhook({ rawBody: body, headers: signed(), secret, nowSeconds: now })).toEqual({ ok: true });
    expect(verifyStandardWebhook({ rawBody: Buffer.from(body), headers: signed(), secret, nowSeconds: now })).toEqual({ ok: true });
  });

  it('accepts any one of several space-separated signatures (rotation overlap)', () => {
    const other = 'whsec_' + Buffer.alloc(32, 9).toString('base64');
    const both = `${standardSignature(other, 'msg_1', String(now), body)} ${standardSignature(secret, 'msg_1', String(now), body)}`;
    expect(verifyStandardWebhook({ rawBody: body, headers: signed({ 'webhook-signature': both }), secret, nowSeconds: now }).ok).toBe(true);
    expect(verifyStandardWebhook({ rawBody: body, headers: signed({ 'webhook-signature': `v2,abc ${both}` }), secret: other, nowSeconds: now }).ok).toBe(true);
  });

  it('rejects timestamps more than 5 minutes away, either side', () => {
    expect(verifyStandardWebhook({ rawBody: body, headers: signed(), secret, nowSeconds: now + 300 }).ok).toBe(true);
    expect(verifyStandardWebhook({ rawBody: body, headers: signed(), secret, nowSeconds: now + 301 })).toMatchObject({ ok: false, reason: expect.stringMatching(/300 seconds/) });
    expect(verifyStandardWebhook({ rawBody: body, headers: signed(), secret, nowSeconds: now - 301 }).ok).toBe(false);
    expect(verifyStandardWebhook({ rawBody: body, headers: signed({ 'webhook-timestamp': 'soon' }), secret, nowSeconds: now }).ok).toBe(false);
  });

  it('rejects a changed id, body or secret, and missing headers', () => {
    expect(verifyStandardWebhook({ rawBody: body, headers: signed({ 'webhook-id': 'msg_2' }), secret, nowSeconds: now }).ok).toBe(false);
    expect(verifyStandardWebhook({ rawBody: body + ' ', headers: signed(), secret, nowSeconds: now }).ok).toBe(false);
    expect(verifyStandardWebhook({ rawBody: body, headers: signed(), secret: 'whsec_' + Buffer.alloc(32, 1).toString('base64'), nowSeconds: now }).ok).toBe(false);
    expect(verifyStandardWebhook({ rawBody: body, headers: signed(), secret: '', nowSeconds: now }).ok).toBe(false);
    expect(verifyStandardWebhook({ rawBody: body, headers: signed({ 'webhook-signature': undefined }), secret, nowSeconds: now })).toMatchObject({ ok: false, reason: expect.stringMatching(/missing/) });
  });
});

describe('package', () => {
  it('describes the trigger and credential n8n loads from the package.json n8n field', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'connectors/n8n/package.json'), 'utf8'));
    expect(pkg).toMatchObject({
      name: 'n8n-nodes-sluice',
      license: 'MIT',
      keywords: expect.arrayContaining(['n8n-community-node-package']),
      n8n: { n8nNodesApiVersion: 1, credentials: ['dist/credentials/SluiceApi.credentials.js'], nodes: ['dist/nodes/SluiceTrigger/SluiceTrigger.node.js'] },
      peerDependencies: { 'n8n-workflow': '*' },
    });
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.devDependencies['n8n-workflow']).toBe('1.104.0');

    const description = new SluiceTrigger().description;
    expect(description.credentials).toEqual([{ name: new SluiceApi().name, required: true }]);
    expect(description.webhooks).toEqual([expect.objectContaining({ name: 'default', httpMethod: 'POST' })]);
    expect(description.version).toEqual([1, 2]);
    expect(description.defaultVersion).toBe(2);
    // Light and dark icons for the node and the credential, each path relative to its own file.
    const icons = [
      ['connectors/n8n/nodes/SluiceTrigger', description.icon],
      ['connectors/n8n/credentials', new SluiceApi().icon],
    ] as const;
    for (const [dir, icon] of icons) {
      expect(icon).toEqual({ light: expect.stringMatching(/^file:.+\.svg$/), dark: expect.stringMatching(/^file:.+\.svg$/) });
      for (const file of Object.values(icon as Record<string, string>)) expect(fs.existsSync(path.join(REPO_ROOT, dir, file.replace('file:', ''))), file).toBe(true);
    }
    expect(pkg.author).toEqual({ name: expect.any(String), email: expect.stringContaining('@') });
    expect(pkg.homepage).toMatch(/^https:\/\//);
  });
});
