import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, fixture, startGateway, type TestGateway } from '../support/gateway.ts';
import { expectError } from '../support/error-shape.ts';

/**
 * No request, however malformed, may produce a 500: every answer is a 2xx/4xx, and every
 * 4xx uses the one error shape.
 */

let gw: TestGateway;
let subId = '';
let deliveryId = '';

interface Case {
  name: string;
  method: string;
  path: string;
  /** Sent as is (a string or Buffer), or JSON-encoded. */
  body?: unknown;
  headers?: Record<string, string>;
  /** null: no Authorization header. */
  key?: string | null;
  /** The exact status, when it is worth pinning down. */
  status?: number;
  code?: string;
}

async function send(c: Case): Promise<{ status: number; body: any; contentType: string | null }> {
  const raw = c.body === undefined || typeof c.body === 'string' || Buffer.isBuffer(c.body);
  const res = await fetch(gw.url + c.path.replace('{sub}', subId).replace('{dlv}', deliveryId), {
    method: c.method,
    headers: {
      ...(c.key === null ? {} : { authorization: `Bearer ${c.key ?? ADMIN_KEY}` }),
      ...(c.body !== undefined && !raw ? { 'content-type': 'application/json' } : {}),
      ...c.headers,
    },
    body: c.body === undefined ? undefined : Buffer.isBuffer(c.body) ? new Uint8Array(c.body) : typeof c.body === 'string' ? c.body : JSON.stringify(c.body),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // asserted below: errors must be JSON
  }
  return { status: res.status, body, contentType: res.headers.get('content-type') };
}

function check(c: Case, res: { status: number; body: any; contentType: string | null }): void {
  expect(res.status, `${c.method} ${c.path.slice(0, 80)} -> ${JSON.stringify(res.body).slice(0, 300)}`).toBeLessThan(500);
  if (c.status) expect(res.status).toBe(c.status);
  if (res.status >= 400) {
    expect(res.contentType).toMatch(/^application\/json/);
    expectError(res, res.status, c.code);
  }
}

const deep = (depth: number, leaf = '1') => '['.repeat(depth) + leaf + ']'.repeat(depth);
const deepObject = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
const HUGE = 'x'.repeat(200_000);

/** Routes that take a JSON body, with the role that may call them. */
const BODY_ROUTES: [string, string][] = [
  ['POST', '/api/v1/events'],
  ['POST', '/api/v1/events/batch'],
  ['POST', '/api/v1/webhooks'],
  ['PATCH', '/api/v1/webhooks/{sub}'],
  ['POST', '/api/v1/webhooks/{sub}/rotate-secret'],
  ['POST', '/api/v1/webhooks/{sub}/test'],
  ['POST', '/api/v1/webhooks/{sub}/replay'],
  ['POST', '/api/v1/deliveries/{dlv}/replay'],
  ['POST', '/api/v1/keys'],
];

/** Every subscription field, and values of each JSON type (plus extremes). */
const SUBSCRIPTION_FIELDS = ['url', 'events', 'description', 'enabled', 'headers', 'auth', 'filter', 'mapping', 'connector', 'connector_options', 'retry', 'timeout', 'rate_limit'];
const ODD_VALUES: unknown[] = [null, true, 0, -1, 1.5, 1e308, '', 'text', HUGE, [], [null], [1, 2], {}, { nested: { deeper: [1] } }, { __proto__: { polluted: true } }];

beforeAll(async () => {
  gw = await startGateway({ SLUICE_MAX_BODY_BYTES: String(1024 * 1024) });
  const sub = await gw.api('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['call.ended'], retry: { schedule: ['1h'] } });
  expect(sub.status).toBe(201);
  subId = sub.body.id;
  const accepted = await gw.api('POST', '/api/v1/events', fixture('call.ended'));
  expect(accepted.status).toBe(202);
  deliveryId = accepted.body.deliveries[0].id;
});

afterAll(async () => {
  await gw?.stop();
});

describe('unknown paths and wrong methods', () => {
  const cases: Case[] = [
    { name: 'unknown root path', method: 'GET', path: '/nope', status: 404, code: 'not_found' },
    { name: 'unknown API path', method: 'GET', path: '/api/v1/nope', status: 404, code: 'not_found' },
    { name: 'unknown API version', method: 'GET', path: '/api/v2/webhooks', status: 404, code: 'not_found' },
    { name: 'API root', method: 'GET', path: '/api/v1', status: 404, code: 'not_found' },
    { name: 'unknown path without a key', method: 'POST', path: '/api/v1/nope', key: null, body: {}, status: 401, code: 'unauthorized' },
    { name: 'PUT on webhooks', method: 'PUT', path: '/api/v1/webhooks', body: {}, status: 405, code: 'method_not_allowed' },
    { name: 'DELETE on the webhook list', method: 'DELETE', path: '/api/v1/webhooks', status: 405, code: 'method_not_allowed' },
    { name: 'GET on events', method: 'GET', path: '/api/v1/events', status: 405, code: 'method_not_allowed' },
    { name: 'PATCH on events', method: 'PATCH', path: '/api/v1/events', body: {}, status: 405, code: 'method_not_allowed' },
    { name: 'POST on event-types', method: 'POST', path: '/api/v1/event-types', body: {}, status: 405, code: 'method_not_allowed' },
    { name: 'PUT on a key', method: 'PUT', path: '/api/v1/keys/key_x', body: {}, status: 405, code: 'method_not_allowed' },
    { name: 'POST on healthz', method: 'POST', path: '/healthz', body: {} },
    { name: 'unknown subscription', method: 'GET', path: '/api/v1/webhooks/sub_does_not_exist', status: 404, code: 'not_found' },
    { name: 'unknown delivery', method: 'GET', path: '/api/v1/deliveries/dlv_does_not_exist', status: 404, code: 'not_found' },
    { name: 'deliveries of an unknown subscription', method: 'GET', path: '/api/v1/webhooks/sub_nope/deliveries', status: 404 },
    { name: 'a 10,000-character id', method: 'GET', path: `/api/v1/webhooks/${'s'.repeat(10_000)}`, status: 404 },
    { name: 'a path with a NUL byte', method: 'GET', path: '/api/v1/webhooks/%00', status: 404 },
    { name: 'a path with a dot segment', method: 'GET', path: '/api/v1/webhooks/%2e%2e', status: 404 },
  ];
  it.each(cases)('$name', async (c) => check(c, await send(c)));
});

describe('invalid percent-encoding in a path', () => {
  const cases: Case[] = [
    { name: 'truncated UTF-8 sequence', method: 'GET', path: '/api/v1/webhooks/%E0%A4%A', status: 400 },
    { name: 'lone percent', method: 'DELETE', path: '/api/v1/keys/%', status: 400 },
    { name: 'non-hex escape', method: 'GET', path: '/api/v1/deliveries/%ZZ', status: 400 },
    { name: 'invalid UTF-8', method: 'PATCH', path: '/api/v1/webhooks/%C0%AF', body: { description: 'x' }, status: 400 },
    { name: 'in a nested route', method: 'GET', path: '/api/v1/webhooks/%E0%A4%A/deliveries', status: 400 },
  ];
  it.each(cases)('$name', async (c) => check(c, await send(c)));
});

describe('bodies that are not what the route expects', () => {
  const shapes: [string, string, number?][] = [
    ['invalid JSON', '{"event": ', 400],
    ['a JSON string', '"hello"'],
    ['a JSON number', '42'],
    ['JSON null', 'null'],
    ['JSON true', 'true'],
    ['a JSON array', '[1, "two", null]'],
    ['an empty body', ''],
    ['whitespace only', '   \n  '],
    ['a trailing comma', '{"a": 1,}', 400],
    ['two JSON documents', '{} {}', 400],
    ['a lone surrogate', '{"event": "\\ud800", "data": {}}'],
  ];
  const cases = (): Case[] =>
    BODY_ROUTES.flatMap(([method, path]) =>
      shapes.map(([what, body, status]) => ({ name: `${method} ${path} with ${what}`, method, path, body, headers: { 'content-type': 'application/json' }, status })),
    );
  it('never answers 500', async () => {
    for (const c of cases()) check(c, await send(c));
  });
});

describe('wrong types for every subscription field', () => {
  it('on create', async () => {
    for (const field of SUBSCRIPTION_FIELDS) {
      for (const value of ODD_VALUES) {
        const c: Case = { name: `${field}=${JSON.stringify(value)?.slice(0, 40)}`, method: 'POST', path: '/api/v1/webhooks', body: { url: 'http://127.0.0.1:9/hook', events: ['call.ended'], [field]: value } };
        check(c, await send(c));
      }
    }
  });

  it('on patch', async () => {
    for (const field of SUBSCRIPTION_FIELDS) {
      for (const value of ODD_VALUES) {
        const c: Case = { name: `${field}=${JSON.stringify(value)?.slice(0, 40)}`, method: 'PATCH', path: '/api/v1/webhooks/{sub}', body: { [field]: value } };
        check(c, await send(c));
      }
    }
    // Whatever was refused or accepted, the subscription still reads back.
    expect((await gw.api('GET', `/api/v1/webhooks/${subId}`)).status).toBe(200);
  });

  it('inside nested objects', async () => {
    const nested: Record<string, unknown>[] = [
      { headers: { 'X-A': null } },
      { headers: { 'X-A': ['a'] } },
      { headers: { __proto__: 'x' } },
      { headers: { constructor: 'x', toString: 'y' } },
      { auth: { type: null } },
      { auth: { type: ['basic'] } },
      { auth: { type: 'basic', username: null, password: null } },
      { auth: { type: 'header', name: '', value: '' } },
      { retry: { schedule: null } },
      { retry: { schedule: [null, {}, [], true] } },
      { retry: { schedule: ['1e999s', '-0s', 'NaNs', '99999999999999999999h'] } },
      { retry: { max_attempts: 1e308 } },
      { events: [null] },
      { events: [''] },
      { events: ['*'.repeat(300)] },
      { events: Array.from({ length: 1000 }, () => 'call.ended') },
      { connector_options: { channel: { $gt: '' } } },
      { url: 'https://' + 'a'.repeat(3000) + '.example.com/' },
      { url: 'http://[::1' },
      { url: 'javascript:alert(1)' },
      { url: 'http://user:pass@127.0.0.1:9/hook' },
      { url: 'http://127.0.0.1:99999/hook' },
      { filter: '$$$' },
      { filter: '('.repeat(5000) },
      { mapping: '{'.repeat(5000) },
      { mapping: '../../etc/passwd' },
      { mapping: 'x'.repeat(100_001) },
    ];
    for (const body of nested) {
      const c: Case = { name: JSON.stringify(body).slice(0, 60), method: 'POST', path: '/api/v1/webhooks', body: { url: 'http://127.0.0.1:9/hook', events: ['call.ended'], ...body } };
      check(c, await send(c));
    }
  });
});

describe('huge and deep payloads', () => {
  const event = fixture('call.ended');
  const cases: Case[] = [
    { name: 'a body over the limit', method: 'POST', path: '/api/v1/events', body: { ...event, data: { ...event.data, blob: 'x'.repeat(1_100_000) } }, status: 413, code: 'payload_too_large' },
    { name: 'a body over the limit without a key', method: 'POST', path: '/api/v1/events', key: null, body: 'x'.repeat(1_100_000) },
    { name: 'a huge string field in an event', method: 'POST', path: '/api/v1/events', body: { ...event, id: 'evt_huge', data: { ...event.data, blob: 'x'.repeat(900_000) } } },
    { name: 'a huge event type', method: 'POST', path: '/api/v1/events', body: { event: HUGE, data: {} }, status: 422 },
    { name: 'a huge id', method: 'POST', path: '/api/v1/events', body: { ...event, id: HUGE }, status: 422 },
    { name: 'a huge description', method: 'POST', path: '/api/v1/webhooks', body: { url: 'http://127.0.0.1:9/x', events: ['call.ended'], description: HUGE }, status: 422 },
    { name: 'a huge key name', method: 'POST', path: '/api/v1/keys', body: { role: 'read', name: HUGE }, status: 422 },
    { name: 'a huge Idempotency-Key', method: 'POST', path: '/api/v1/events', body: { ...event, id: 'evt_idem_huge' }, headers: { 'idempotency-key': 'k'.repeat(6000) }, status: 422 },
    { name: 'many batch items at once', method: 'POST', path: '/api/v1/events/batch', body: Array.from({ length: 5000 }, () => 1), status: 422 },
    { name: 'deeply nested arrays as the body', method: 'POST', path: '/api/v1/events', body: deep(100_000), headers: { 'content-type': 'application/json' }, status: 422, code: 'json_too_deep' },
    { name: 'deeply nested objects as the body', method: 'POST', path: '/api/v1/webhooks', body: deepObject(50_000), headers: { 'content-type': 'application/json' }, status: 422, code: 'json_too_deep' },
    {
      name: 'deeply nested data in a valid event',
      method: 'POST',
      path: '/api/v1/events',
      body: `{"event":"call.ended","id":"evt_deep_data","data":{"call":${JSON.stringify(event.data.call)},"assistant":{"id":"a"},"deep":${deep(20_000)}}}`,
      headers: { 'content-type': 'application/json' },
      status: 422,
      code: 'json_too_deep',
    },
    {
      name: 'data nested 90 levels deep in a valid event',
      method: 'POST',
      path: '/api/v1/events',
      body: `{"event":"call.ended","id":"evt_deep_ok","data":{"call":${JSON.stringify(event.data.call)},"assistant":{"id":"a"},"deep":${deep(90)}}}`,
      headers: { 'content-type': 'application/json' },
      status: 202,
    },
    {
      name: 'deeply nested data in a batch',
      method: 'POST',
      path: '/api/v1/events/batch',
      body: `[{"event":"lead.created","id":"evt_deep_batch","data":{"lead":{"id":"l"},"deep":${deepObject(20_000)}}}]`,
      headers: { 'content-type': 'application/json' },
      status: 422,
      code: 'json_too_deep',
    },
    { name: 'deeply nested subscription headers', method: 'POST', path: '/api/v1/webhooks', body: `{"url":"http://127.0.0.1:9/x","events":["call.ended"],"headers":${deepObject(20_000)}}`, headers: { 'content-type': 'application/json' }, status: 422, code: 'json_too_deep' },
    { name: 'a huge Authorization header', method: 'GET', path: '/api/v1/webhooks', key: null, headers: { authorization: 'Bearer ' + 'k'.repeat(8000) }, status: 401 },
  ];
  it.each(cases)('$name', async (c) => check(c, await send(c)));
});

describe('content types and encodings', () => {
  const valid = JSON.stringify({ ...fixture('lead.created'), id: 'evt_ct' });
  const cases: Case[] = [
    { name: 'text/plain with JSON', method: 'POST', path: '/api/v1/events', body: valid, headers: { 'content-type': 'text/plain' } },
    { name: 'text/plain with prose', method: 'POST', path: '/api/v1/events', body: 'hello there', headers: { 'content-type': 'text/plain' }, status: 415, code: 'unsupported_media_type' },
    { name: 'a form body', method: 'POST', path: '/api/v1/webhooks', body: 'url=http://x&events=call.ended', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'unsupported_media_type' },
    { name: 'XML', method: 'POST', path: '/api/v1/events', body: '<event>call.ended</event>', headers: { 'content-type': 'application/xml' }, status: 415, code: 'unsupported_media_type' },
    { name: 'multipart', method: 'POST', path: '/api/v1/keys', body: '--b\r\nContent-Disposition: form-data; name="role"\r\n\r\nread\r\n--b--', headers: { 'content-type': 'multipart/form-data; boundary=b' }, status: 415, code: 'unsupported_media_type' },
    { name: 'binary garbage', method: 'POST', path: '/api/v1/events', body: Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80]), headers: { 'content-type': 'application/octet-stream' }, status: 415, code: 'unsupported_media_type' },
    { name: 'an unsupported charset', method: 'POST', path: '/api/v1/events', body: valid, headers: { 'content-type': 'application/json; charset=klingon' }, status: 415 },
    { name: 'a UTF-16 charset on UTF-8 bytes', method: 'POST', path: '/api/v1/events', body: valid, headers: { 'content-type': 'application/json; charset=utf-16' }, status: 400 },
    { name: 'a gzip body', method: 'POST', path: '/api/v1/events', body: gzipSync(JSON.stringify({ ...fixture('lead.created'), id: 'evt_gzip' })), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } },
    { name: 'a gzip header on plain bytes', method: 'POST', path: '/api/v1/events', body: valid, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } },
    { name: 'an unknown content encoding', method: 'POST', path: '/api/v1/events', body: valid, headers: { 'content-type': 'application/json', 'content-encoding': 'snappy' }, status: 415 },
    { name: 'a zip bomb over the limit', method: 'POST', path: '/api/v1/events', body: gzipSync(Buffer.alloc(5_000_000, 0x20)), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, status: 413 },
  ];
  it.each(cases)('$name', async (c) => check(c, await send(c)));
});

describe('query strings', () => {
  const cases: Case[] = [
    { name: 'limit that is not a number', method: 'GET', path: `/api/v1/webhooks/{sub}/deliveries?limit=abc`, status: 422 },
    { name: 'limit over 100', method: 'GET', path: `/api/v1/webhooks/{sub}/deliveries?limit=101`, status: 422 },
    { name: 'limit twice', method: 'GET', path: `/api/v1/webhooks/{sub}/deliveries?limit=1&limit=2` },
    { name: 'an unknown status', method: 'GET', path: `/api/v1/webhooks/{sub}/deliveries?status=exploded`, status: 422 },
    { name: 'status twice', method: 'GET', path: `/api/v1/deliveries?status=pending&status=failed` },
    { name: 'event twice', method: 'GET', path: `/api/v1/deliveries?event=a&event=b` },
    { name: 'a cursor that is garbage', method: 'GET', path: `/api/v1/deliveries?cursor=${encodeURIComponent('\'; DROP TABLE deliveries; --')}`, status: 200 },
    { name: 'bracket syntax', method: 'GET', path: `/api/v1/deliveries?status[$ne]=x&limit[]=1` },
    { name: 'invalid percent-encoding in the query', method: 'GET', path: '/api/v1/deliveries?status=%E0%A4%A' },
  ];
  it.each(cases)('$name', async (c) => check(c, await send(c)));
});

describe('afterwards', () => {
  it('the gateway is still healthy and its data intact', async () => {
    expect((await send({ name: 'healthz', method: 'GET', path: '/healthz', key: null })).status).toBe(200);
    expect((await send({ name: 'readyz', method: 'GET', path: '/readyz', key: null })).status).toBe(200);
    expect(await gw.sluice.storage.getDelivery(deliveryId)).toBeDefined();
    const list = await gw.api('GET', '/api/v1/webhooks');
    expect(list.status).toBe(200);
    expect(list.body.data.some((s: { id: string }) => s.id === subId)).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('error messages name the full route', () => {
  it('a 405 lists the allowed methods, and a 404 keeps the /api/v1 prefix', async () => {
    const wrong = await fetch(`${gw.url}/api/v1/events`, { method: 'GET', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect((await wrong.json()).error.message).toContain('/api/v1/events');
    const missing = await send({ name: 'unknown', method: 'GET', path: '/api/v1/nope' });
    expectError(missing, 404, 'not_found');
    expect(missing.body.error.message).toContain('GET /api/v1/nope');
  });
});
