import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, fixture, startGateway, waitFor, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';
import { errorPaths, expectError } from '../support/error-shape.ts';

const SECRET_PATTERN = /^whsec_[A-Za-z0-9+/]{43}=$/;
const PASSWORD = 'hunter2-very-secret-password';
const TOKEN = 'tok_bearer_very_secret_0123456789';
const HEADER_VALUE = 'hv_header_auth_very_secret_value';

let receiver: Awaited<ReturnType<typeof startReceiver>>;
/** Insecure URLs allowed (the test default): loopback receivers work. */
let gw: TestGateway;
/** SLUICE_ALLOW_INSECURE_URLS=false, as in production. */
let strict: TestGateway;

const valid = (extra: Record<string, unknown> = {}) => ({ url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule: ['1h'] }, ...extra });

async function create(body: Record<string, unknown>, on = gw) {
  const res = await on.api('POST', '/api/v1/webhooks', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as Record<string, any>;
}

/** Every file of the SQLite database (main file, WAL, shared memory) as one latin1 string. */
function databaseBytes(dataDir: string): string {
  return fs
    .readdirSync(dataDir)
    .filter((f) => f.startsWith('sluice.db'))
    .map((f) => fs.readFileSync(path.join(dataDir, f)).toString('latin1'))
    .join('\n');
}

beforeAll(async () => {
  receiver = await startReceiver();
  [gw, strict] = await Promise.all([startGateway(), startGateway({ SLUICE_ALLOW_INSECURE_URLS: 'false' })]);
});

afterAll(async () => {
  await Promise.all([gw?.stop(), strict?.stop()]);
  await receiver?.close();
});

describe('create', () => {
  it('answers 201 with the signing secret once, and its prefix', async () => {
    const body = await create(valid({ description: 'CRM sync', headers: { 'X-Team': 'ops' }, timeout: 5, rate_limit: 20 }));
    expect(body.id).toMatch(/^sub_/);
    expect(body).toMatchObject({
      url: `${receiver.url}/hook`,
      events: ['call.ended'],
      description: 'CRM sync',
      enabled: true,
      headers: { 'X-Team': 'ops' },
      auth: null,
      connector: 'webhook',
      retry: { schedule: ['1h'] },
      timeout: 5,
      rate_limit: 20,
      last_delivery_at: null,
      last_delivery_status: null,
    });
    expect(body.signing_secret).toMatch(SECRET_PATTERN);
    expect(Buffer.from(body.signing_secret.slice('whsec_'.length), 'base64')).toHaveLength(32);
    expect(body._warning).toMatch(/once/);
    expect(body.signing_secret_prefix).toBe(body.signing_secret.slice(0, 'whsec_'.length + 6));
    expect(Date.parse(body.created_at)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('gives every subscription its own secret', async () => {
    const [a, b] = [await create(valid()), await create(valid())];
    expect(a.signing_secret).not.toBe(b.signing_secret);
  });

  it('accepts call.* and * wildcards', async () => {
    const body = await create(valid({ events: ['call.*', '*'] }));
    expect(body.events).toEqual(['call.*', '*']);
  });

  it('never returns the secret again: not in GET one, nor in the list', async () => {
    const body = await create(valid());
    const secret: string = body.signing_secret;
    const secretBody = secret.slice('whsec_'.length);
    const one = await gw.api('GET', `/api/v1/webhooks/${body.id}`);
    expect(one.status).toBe(200);
    expect(one.body.signing_secret_prefix).toBe(body.signing_secret_prefix);
    expect(one.body).not.toHaveProperty('signing_secret');
    const list = await gw.api('GET', '/api/v1/webhooks');
    expect(list.body.data.some((s: { id: string }) => s.id === body.id)).toBe(true);
    for (const res of [one, list]) {
      const text = JSON.stringify(res.body);
      expect(text).not.toContain(secret);
      expect(text).not.toContain(secretBody);
      expect(text).not.toContain(secretBody.slice(10, 30));
    }
  });
});

describe('credentials are masked in every response', () => {
  const authCases = [
    ['basic', { type: 'basic', username: 'crm-user', password: PASSWORD }, PASSWORD, { type: 'basic', username: 'crm-user' }],
    ['bearer', { type: 'bearer', token: TOKEN }, TOKEN, { type: 'bearer' }],
    ['header', { type: 'header', name: 'X-Api-Key', value: HEADER_VALUE }, HEADER_VALUE, { type: 'header', name: 'X-Api-Key' }],
  ] as const;

  it.each(authCases)('%s auth', async (_type, auth, secret, visible) => {
    const created = await create(valid({ auth }));
    const responses = [
      created,
      (await gw.api('GET', `/api/v1/webhooks/${created.id}`)).body,
      (await gw.api('GET', '/api/v1/webhooks')).body,
      (await gw.api('PATCH', `/api/v1/webhooks/${created.id}`, { description: 'patched' })).body,
      (await gw.api('POST', `/api/v1/webhooks/${created.id}/rotate-secret`)).body,
    ];
    for (const body of responses) expect(JSON.stringify(body)).not.toContain(secret);
    expect(created.auth).toMatchObject(visible);
    expect(responses[1].auth).toMatchObject(visible);
    // The credential is still there, just not shown: the delivery engine decrypts it.
    const runtime = await gw.sluice.subscriptions.runtime(created.id);
    expect(runtime?.auth).toEqual(auth);
  });
});

describe('patch', () => {
  it('changes fields, and not the secret', async () => {
    const created = await create(valid({ description: 'before' }));
    const res = await gw.api('PATCH', `/api/v1/webhooks/${created.id}`, {
      url: `${receiver.url}/other`,
      events: ['lead.created', 'call.*'],
      description: 'after',
      enabled: false,
      headers: { 'X-Env': 'staging' },
      auth: { type: 'bearer', token: TOKEN },
      retry: { max_attempts: 3 },
      timeout: 7,
      rate_limit: 2,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({
      id: created.id,
      url: `${receiver.url}/other`,
      events: ['lead.created', 'call.*'],
      description: 'after',
      enabled: false,
      headers: { 'X-Env': 'staging' },
      auth: { type: 'bearer' },
      retry: { max_attempts: 3 },
      timeout: 7,
      rate_limit: 2,
      signing_secret_prefix: created.signing_secret_prefix,
    });
    expect(res.body).not.toHaveProperty('signing_secret');
    const runtime = await gw.sluice.subscriptions.runtime(created.id);
    expect(runtime?.secret).toBe(created.signing_secret);

    const again = await gw.api('GET', `/api/v1/webhooks/${created.id}`);
    expect(again.body).toMatchObject({ description: 'after', enabled: false, events: ['lead.created', 'call.*'] });
  });

  it('keeps untouched fields and can clear nullable ones', async () => {
    const created = await create(valid({ description: 'keep me', auth: { type: 'basic', username: 'u', password: PASSWORD }, filter: 'data.call.duration > 1' }));
    const res = await gw.api('PATCH', `/api/v1/webhooks/${created.id}`, { auth: null, filter: null });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ description: 'keep me', auth: null, filter: null, url: created.url, events: created.events });
  });

  it('keeps the stored secrets when a read is sent back: the mask means unchanged', async () => {
    const hits = receiver.requests.length;
    const created = await create(valid({ retry: { schedule: ['0s'] }, auth: { type: 'bearer', token: TOKEN } }));
    const read = (await gw.api('GET', `/api/v1/webhooks/${created.id}`)).body;
    expect(read.auth).toEqual({ type: 'bearer', token: '********' });
    const { url, events, description, headers, auth, connector_options, retry, timeout, rate_limit } = read;
    const res = await gw.api('PATCH', `/api/v1/webhooks/${created.id}`, { url, events, description: 'edited', headers, auth, connector_options, retry, timeout, rate_limit });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect((await gw.sluice.subscriptions.runtime(created.id))?.auth).toEqual({ type: 'bearer', token: TOKEN });

    const sent = await gw.api('POST', '/api/v1/events', { ...fixture('call.ended'), id: `evt_mask_${Date.now().toString(36)}` });
    expect(sent.status).toBe(202);
    const request = await waitFor(() => receiver.requests.slice(hits).find((r) => r.headers['webhook-id'] && r.url === '/hook' && r.headers.authorization?.startsWith('Bearer ')), 5_000, 'the delivery');
    expect(request.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('merges a partial auth object of the stored type, and refuses a mask with nothing behind it', async () => {
    const created = await create(valid({ auth: { type: 'basic', username: 'u', password: PASSWORD } }));
    const renamed = await gw.api('PATCH', `/api/v1/webhooks/${created.id}`, { auth: { username: 'ops' } });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    expect((await gw.sluice.subscriptions.runtime(created.id))?.auth).toEqual({ type: 'basic', username: 'ops', password: PASSWORD });

    const otherType = await gw.api('PATCH', `/api/v1/webhooks/${created.id}`, { auth: { type: 'bearer', token: '********' } });
    expectError(otherType, 422);
    expect(errorPaths(otherType)).toEqual(['$.auth.token']);
    expect((await gw.sluice.subscriptions.runtime(created.id))?.auth).toEqual({ type: 'basic', username: 'ops', password: PASSWORD });
  });

  it('merges connector options: a masked secret stays, null removes an option', async () => {
    const token = 'xoxb-stored-bot-token-0123456789';
    const created = await create({ events: ['call.ended'], connector: 'slack', connector_options: { bot_token: token, channel: '#ops' }, retry: { schedule: ['1h'] } });
    const read = (await gw.api('GET', `/api/v1/webhooks/${created.id}`)).body;
    expect(read.connector_options).toEqual({ bot_token: '********', channel: '#ops' });
    const apiBase = `${receiver.url}/slack-api`;
    const res = await gw.api('PATCH', `/api/v1/webhooks/${created.id}`, { connector_options: { ...read.connector_options, api_base_url: apiBase } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect((await gw.sluice.subscriptions.runtime(created.id))?.connectorOptions).toEqual({ bot_token: token, channel: '#ops', api_base_url: apiBase });
    const cleared = await gw.api('PATCH', `/api/v1/webhooks/${created.id}`, { connector_options: { api_base_url: null } });
    expect(cleared.status, JSON.stringify(cleared.body)).toBe(200);
    expect((await gw.sluice.subscriptions.runtime(created.id))?.connectorOptions).toEqual({ bot_token: token, channel: '#ops' });
    // A complete set of the other kind replaces the stored one rather than clashing with it.
    const webhookUrl = `${receiver.url}/services/T0/B0/secret`;
    const switched = await gw.api('PATCH', `/api/v1/webhooks/${created.id}`, { connector_options: { webhook_url: webhookUrl } });
    expect(switched.status, JSON.stringify(switched.body)).toBe(200);
    expect((await gw.sluice.subscriptions.runtime(created.id))?.connectorOptions).toEqual({ webhook_url: webhookUrl });
  });

  it('refuses to set the secret through patch', async () => {
    const created = await create(valid());
    const res = await gw.api('PATCH', `/api/v1/webhooks/${created.id}`, { signing_secret: 'whsec_' + 'A'.repeat(43) + '=' });
    expectError(res, 422);
    expect(errorPaths(res)).toEqual(['$.signing_secret']);
  });

  it('changes nothing when the patch is invalid', async () => {
    const created = await create(valid({ description: 'stable' }));
    const res = await gw.api('PATCH', `/api/v1/webhooks/${created.id}`, { description: 'changed', events: ['no.such.event'] });
    expectError(res, 422);
    expect(errorPaths(res)).toEqual(['$.events[0]']);
    expect((await gw.api('GET', `/api/v1/webhooks/${created.id}`)).body.description).toBe('stable');
  });

  it('refuses an empty patch', async () => {
    const created = await create(valid());
    expectError(await gw.api('PATCH', `/api/v1/webhooks/${created.id}`, {}), 422);
  });

  it('answers 404 for an unknown subscription', async () => {
    expectError(await gw.api('PATCH', '/api/v1/webhooks/sub_nope', { description: 'x' }), 404, 'not_found');
  });
});

describe('delete', () => {
  it('answers {id, deleted: true}, then 404, and cancels pending deliveries', async () => {
    const created = await create(valid({ retry: { schedule: ['1h'] } }));
    const event = { ...fixture('call.ended'), id: `evt_delete_${process.pid}` };
    const accepted = await gw.api('POST', '/api/v1/events', event);
    const mine = accepted.body.deliveries.filter((d: { subscription_id: string }) => d.subscription_id === created.id);
    expect(mine).toHaveLength(1);
    expect((await gw.sluice.storage.getDelivery(mine[0].id))?.status).toBe('pending');

    const res = await gw.api('DELETE', `/api/v1/webhooks/${created.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: created.id, deleted: true });
    expect((await gw.sluice.storage.getDelivery(mine[0].id))?.status).toBe('cancelled');

    expectError(await gw.api('GET', `/api/v1/webhooks/${created.id}`), 404, 'not_found');
    expectError(await gw.api('DELETE', `/api/v1/webhooks/${created.id}`), 404, 'not_found');
    expectError(await gw.api('POST', `/api/v1/webhooks/${created.id}/rotate-secret`), 404, 'not_found');
    const list = await gw.api('GET', '/api/v1/webhooks');
    expect(list.body.data.map((s: { id: string }) => s.id)).not.toContain(created.id);

    // New events no longer fan out to it.
    const later = await gw.api('POST', '/api/v1/events', { ...fixture('call.ended'), id: `evt_delete_after_${process.pid}` });
    expect(later.body.deliveries.map((d: { subscription_id: string }) => d.subscription_id)).not.toContain(created.id);
  });
});

describe('rotate-secret', () => {
  it('shows a new secret once; the old one stays valid for 24 hours', async () => {
    const created = await create(valid());
    const before = Date.now();
    const res = await gw.api('POST', `/api/v1/webhooks/${created.id}/rotate-secret`);
    expect(res.status).toBe(200);
    const rotated = res.body;
    expect(rotated.signing_secret).toMatch(SECRET_PATTERN);
    expect(rotated.signing_secret).not.toBe(created.signing_secret);
    expect(rotated._warning).toMatch(/once/);
    expect(rotated.signing_secret_prefix).toBe(rotated.signing_secret.slice(0, 12));
    const expires = Date.parse(rotated.previous_secret_expires_at);
    expect(expires).toBeGreaterThanOrEqual(before + 24 * 3_600_000 - 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 24 * 3_600_000 + 1000);

    const runtime = await gw.sluice.subscriptions.runtime(created.id);
    expect(runtime?.secret).toBe(rotated.signing_secret);
    expect(runtime?.previousSecret).toBe(created.signing_secret);

    const one = await gw.api('GET', `/api/v1/webhooks/${created.id}`);
    expect(one.body.previous_secret_expires_at).toBe(rotated.previous_secret_expires_at);
    expect(one.body.signing_secret_prefix).toBe(rotated.signing_secret_prefix);
    const text = JSON.stringify(one.body);
    expect(text).not.toContain(rotated.signing_secret.slice(6));
    expect(text).not.toContain(created.signing_secret.slice(6));
  });

  it('honours SLUICE_SECRET_ROTATION_HOURS', async () => {
    const short = await startGateway({ SLUICE_SECRET_ROTATION_HOURS: '2' });
    try {
      const created = await create(valid(), short);
      const rotated = (await short.api('POST', `/api/v1/webhooks/${created.id}/rotate-secret`)).body;
      const overlap = Date.parse(rotated.previous_secret_expires_at) - Date.now();
      expect(overlap).toBeGreaterThan(2 * 3_600_000 - 60_000);
      expect(overlap).toBeLessThanOrEqual(2 * 3_600_000);
    } finally {
      await short.stop();
    }
  });
});

describe('validation: 422 with the field path', () => {
  const base = () => valid();
  const cases: [string, Record<string, unknown>, string][] = [
    ['an unknown event name', { events: ['call.ended', 'call.teleported'] }, '$.events[1]'],
    ['an unknown wildcard', { events: ['nothing.*'] }, '$.events[0]'],
    ['no events', { events: [] }, '$.events'],
    ['an unknown field', { colour: 'blue' }, '$.colour'],
    ['a header name with a space', { headers: { 'Bad Name': 'x' } }, '$.headers.Bad Name'],
    ['the Host header', { headers: { Host: 'evil.example' } }, '$.headers.Host'],
    ['the Content-Length header', { headers: { 'Content-Length': '1' } }, '$.headers.Content-Length'],
    ['a forged webhook-signature header', { headers: { 'webhook-signature': 'v1,forged' } }, '$.headers.webhook-signature'],
    ['a forged X-Webhook-Event header', { headers: { 'X-Webhook-Event': 'call.ended' } }, '$.headers.X-Webhook-Event'],
    ['a header value with CRLF', { headers: { 'X-Split': 'a\r\nInjected: yes' } }, '$.headers.X-Split'],
    ['a header value that is a number', { headers: { 'X-Num': 5 } }, '$.headers.X-Num'],
    ['headers that are a list', { headers: ['X-A: b'] }, '$.headers'],
    ['an unknown auth type', { auth: { type: 'digest', username: 'u' } }, '$.auth.type'],
    ['an auth object without a type', { auth: { username: 'u', password: 'p' } }, '$.auth.type'],
    ['basic auth without a password', { auth: { type: 'basic', username: 'u' } }, '$.auth.password'],
    ['basic auth with a colon in the username', { auth: { type: 'basic', username: 'a:b', password: 'p' } }, '$.auth.username'],
    ['bearer auth with a number token', { auth: { type: 'bearer', token: 12345 } }, '$.auth.token'],
    ['auth that is a string', { auth: 'basic' }, '$.auth'],
    ['an unknown field in header auth', { auth: { type: 'header', name: 'X-Key', value: 'v', extra: 1 } }, '$.auth.extra'],
    ['header auth naming a reserved header', { auth: { type: 'header', name: 'Host', value: 'x' } }, '$.auth.name'],
    ['an unparseable retry delay', { retry: { schedule: ['0s', 'soon', '5m'] } }, '$.retry.schedule[1]'],
    ['a negative retry delay', { retry: { schedule: [0, -30] } }, '$.retry.schedule[1]'],
    ['max_attempts of zero', { retry: { max_attempts: 0 } }, '$.retry.max_attempts'],
    ['an unknown retry option', { retry: { backoff: 'linear' } }, '$.retry.backoff'],
    ['a zero timeout', { timeout: 0 }, '$.timeout'],
    ['a string timeout', { timeout: '10' }, '$.timeout'],
    ['a negative rate limit', { rate_limit: -1 }, '$.rate_limit'],
    ['a vanishingly small rate limit', { rate_limit: 0.0000001 }, '$.rate_limit'],
    ['a rate limit above 10,000/s', { rate_limit: 10_001 }, '$.rate_limit'],
    ['enabled as a string', { enabled: 'yes' }, '$.enabled'],
    ['an unknown connector', { connector: 'carrier-pigeon' }, '$.connector'],
    ['a url that is not a string', { url: 42 }, '$.url'],
    ['a url that is not a URL', { url: 'not a url' }, '$.url'],
    ['an ftp url', { url: 'ftp://files.example.com/drop' }, '$.url'],
  ];

  it.each(cases)('%s', async (_what, override, path) => {
    const res = await gw.api('POST', '/api/v1/webhooks', { ...base(), ...override });
    expectError(res, 422);
    expect(errorPaths(res)).toContain(path);
  });

  it('says the rate limit range it accepts, on create and on patch', async () => {
    const created = await gw.api('POST', '/api/v1/webhooks', { ...base(), rate_limit: 0.0000001 });
    expectError(created, 422);
    expect(created.body.error.details).toEqual([{ path: '$.rate_limit', message: 'must be null or a number of deliveries per second from 0.001 to 10000' }]);
    const sub = await create(base());
    const patched = await gw.api('PATCH', `/api/v1/webhooks/${sub.id}`, { rate_limit: 1e-300 });
    expectError(patched, 422);
    expect(errorPaths(patched)).toEqual(['$.rate_limit']);
    expect((await gw.api('PATCH', `/api/v1/webhooks/${sub.id}`, { rate_limit: 0.001 })).status).toBe(200);
  });

  it('reports several problems at once', async () => {
    const res = await gw.api('POST', '/api/v1/webhooks', { ...base(), events: ['call.teleported'], headers: { Host: 'x' }, retry: { schedule: ['soon'] } });
    expectError(res, 422);
    expect(errorPaths(res)).toEqual(expect.arrayContaining(['$.events[0]', '$.headers.Host', '$.retry.schedule[0]']));
  });

  it.each([
    [{ type: 'basic', username: 'u' }, ['$.auth.password']],
    [{ type: 'bearer', token: 12345 }, ['$.auth.token']],
    [{ type: 'header', name: 'X-Key' }, ['$.auth.value']],
    [{ type: 'digest' }, ['$.auth.type']],
  ])('names only the problems of the auth type given: %j', async (auth, paths) => {
    const res = await gw.api('POST', '/api/v1/webhooks', { ...base(), auth });
    expectError(res, 422);
    expect(errorPaths(res)).toEqual(paths);
  });

  it('requires a url for the webhook connector', async () => {
    const { url: _omitted, ...rest } = base();
    const res = await gw.api('POST', '/api/v1/webhooks', rest);
    expectError(res, 422);
    expect(errorPaths(res)).toContain('$.url');
  });

  it('refuses a filter that is not valid JSONata, with its position', async () => {
    const res = await gw.api('POST', '/api/v1/webhooks', { ...base(), filter: 'data.call.duration > ' });
    expectError(res, 422);
    const detail = res.body.error.details.find((d: { path: string }) => d.path === '$.filter');
    expect(detail, JSON.stringify(res.body)).toBeDefined();
    expect(detail.line).toBeTypeOf('number');
    expect(detail.column).toBeTypeOf('number');
  });

  it('refuses an inline mapping that is not valid JSONata, with its position', async () => {
    const res = await gw.api('POST', '/api/v1/webhooks', { ...base(), mapping: '{\n  "text": $string(data.call.id\n}' });
    expectError(res, 422);
    const detail = res.body.error.details.find((d: { path: string }) => d.path === '$.mapping');
    expect(detail, JSON.stringify(res.body)).toBeDefined();
    expect(detail.line).toBeTypeOf('number');
    expect(detail.column).toBeTypeOf('number');
  });

  it('accepts a valid filter and inline mapping', async () => {
    const body = await create(valid({ filter: 'data.call.duration > 60', mapping: '{"text": "Call " & data.call.id & " ended"}' }));
    expect(body.filter).toBe('data.call.duration > 60');
    expect(body.mapping).toBe('{"text": "Call " & data.call.id & " ended"}');
  });
});

describe('destination policy (SLUICE_ALLOW_INSECURE_URLS=false)', () => {
  it.each([
    ['an http:// URL', 'http://hooks.example.com/in'],
    ['a loopback https URL', 'https://127.0.0.1/hook'],
    ['an IPv6 loopback https URL', 'https://[::1]/hook'],
    ['a private network https URL', 'https://10.1.2.3/hook'],
    ['the cloud metadata address', 'https://169.254.169.254/latest/meta-data'],
    ['localhost', 'https://localhost/hook'],
  ])('refuses %s at $.url', async (_what, url) => {
    const res = await strict.api('POST', '/api/v1/webhooks', { url, events: ['call.ended'] });
    expectError(res, 422);
    expect(errorPaths(res)).toContain('$.url');
  });

  it('refuses the same URLs on patch', async () => {
    const created = await create({ url: 'https://93.184.215.14/hook', events: ['call.ended'] }, strict);
    const res = await strict.api('PATCH', `/api/v1/webhooks/${created.id}`, { url: 'https://127.0.0.1/hook' });
    expectError(res, 422);
    expect(errorPaths(res)).toContain('$.url');
    expect((await strict.api('GET', `/api/v1/webhooks/${created.id}`)).body.url).toBe('https://93.184.215.14/hook');
  });
});

describe('secrets at rest', () => {
  it('stores neither auth credentials, signing secrets nor API keys in plaintext', async () => {
    const own = await startGateway();
    let apiKey = '';
    const secrets: string[] = [];
    try {
      apiKey = (await own.api('POST', '/api/v1/keys', { role: 'ingest' })).body.key;
      const basic = await create({ url: `${receiver.url}/at-rest`, events: ['call.ended'], auth: { type: 'basic', username: 'crm-user', password: PASSWORD } }, own);
      const bearer = await create({ url: `${receiver.url}/at-rest`, events: ['call.ended'], auth: { type: 'bearer', token: TOKEN } }, own);
      const rotated = (await own.api('POST', `/api/v1/webhooks/${bearer.id}/rotate-secret`)).body;
      secrets.push(basic.signing_secret, bearer.signing_secret, rotated.signing_secret);

      // A real delivery, so the delivery log holds a request made with those credentials.
      const accepted = await own.api('POST', '/api/v1/events', fixture('call.ended'), apiKey);
      expect(accepted.body.deliveries).toHaveLength(2);
      await waitFor(async () => {
        const rows = await Promise.all(accepted.body.deliveries.map((d: { id: string }) => own.sluice.storage.getDelivery(d.id)));
        return rows.every((r) => r?.status === 'delivered');
      }, 5_000, 'deliveries');
      const sent = receiver.requests.filter((r) => r.url === '/at-rest');
      expect(sent.map((r) => r.headers.authorization).sort()).toEqual([`Basic ${Buffer.from(`crm-user:${PASSWORD}`).toString('base64')}`, `Bearer ${TOKEN}`].sort());
    } finally {
      await own.stop();
    }

    const bytes = databaseBytes(own.dataDir);
    // The files really hold our data (events are stored as sent), just not the secrets.
    expect(bytes).toContain('call_abc123');
    const forbidden = [
      PASSWORD,
      TOKEN,
      Buffer.from(`crm-user:${PASSWORD}`).toString('base64'),
      ADMIN_KEY,
      apiKey,
      ...secrets,
      ...secrets.map((s) => s.slice('whsec_'.length)),
    ];
    for (const value of forbidden) expect(bytes.includes(value), `plaintext ${value.slice(0, 12)}… in the database`).toBe(false);
  });

  it('keeps working across a restart with the same SLUICE_MASTER_KEY', async () => {
    const env = { SLUICE_MASTER_KEY: 'correct horse battery staple' };
    const first = await startGateway(env);
    const created = await create({ ...valid(), auth: { type: 'basic', username: 'crm-user', password: PASSWORD } }, first);
    await first.stop();
    // With a master key set, no key file is written beside the database.
    expect(fs.existsSync(path.join(first.dataDir, 'master.key'))).toBe(false);
    expect(databaseBytes(first.dataDir)).not.toContain(PASSWORD);

    const second = await startGateway(env, { dataDir: first.dataDir });
    try {
      const one = await second.api('GET', `/api/v1/webhooks/${created.id}`);
      expect(one.status).toBe(200);
      expect(one.body).toMatchObject({ id: created.id, auth: { type: 'basic', username: 'crm-user' }, signing_secret_prefix: created.signing_secret_prefix });
      const runtime = await second.sluice.subscriptions.runtime(created.id);
      expect(runtime?.secret).toBe(created.signing_secret);
      expect(runtime?.auth).toEqual({ type: 'basic', username: 'crm-user', password: PASSWORD });
      const rotated = await second.api('POST', `/api/v1/webhooks/${created.id}/rotate-secret`);
      expect(rotated.status).toBe(200);
      expect((await second.sluice.subscriptions.runtime(created.id))?.previousSecret).toBe(created.signing_secret);
    } finally {
      await second.stop();
    }
  });

  it('refuses to start with a different SLUICE_MASTER_KEY, rather than fail every request', async () => {
    const first = await startGateway({ SLUICE_MASTER_KEY: 'the original key' });
    await create(valid(), first);
    await first.stop();
    await expect(startGateway({ SLUICE_MASTER_KEY: 'some other key' }, { dataDir: first.dataDir })).rejects.toThrow(/master key/i);
    // The right key still opens everything.
    const again = await startGateway({ SLUICE_MASTER_KEY: 'the original key' }, { dataDir: first.dataDir });
    try {
      expect((await again.api('GET', '/api/v1/webhooks')).status).toBe(200);
    } finally {
      await again.stop();
    }
  });

  it('keeps working across a restart with the generated key file', async () => {
    const first = await startGateway();
    const created = await create({ ...valid(), auth: { type: 'bearer', token: TOKEN } }, first);
    await first.stop();
    const keyFile = path.join(first.dataDir, 'master.key');
    expect(fs.existsSync(keyFile)).toBe(true);
    expect(fs.statSync(keyFile).mode & 0o077).toBe(0);

    const second = await startGateway({}, { dataDir: first.dataDir });
    try {
      expect((await second.api('GET', `/api/v1/webhooks/${created.id}`)).status).toBe(200);
      expect((await second.sluice.subscriptions.runtime(created.id))?.auth).toEqual({ type: 'bearer', token: TOKEN });
    } finally {
      await second.stop();
    }
  });
});

describe('validation messages in words', () => {
  it('says what is wrong as a person would, with the field path', async () => {
    const gw = await startGateway();
    try {
      const res = await gw.api('POST', '/api/v1/webhooks', { url: '', events: [], timeout: 0, description: 'x'.repeat(1001), auth: { type: 'basic', username: 'a:b', password: 'p' } });
      expectError(res, 422);
      const byPath = Object.fromEntries(res.body.error.details.map((d: { path: string; message: string }) => [d.path, d.message]));
      expect(byPath).toMatchObject({
        '$.url': 'must not be empty',
        '$.events': 'must list at least one item',
        '$.timeout': 'must be more than 0',
        '$.description': 'must be at most 1000 characters long',
        '$.auth.username': 'must be 1 to 256 characters without a colon',
      });
      expect(JSON.stringify(res.body)).not.toMatch(/must NOT/);
    } finally {
      await gw.stop();
    }
  });
});
