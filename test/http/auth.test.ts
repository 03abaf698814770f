import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, fixture, startGateway, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';
import { errorPaths, expectError } from '../support/error-shape.ts';

let gw: TestGateway;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
const keys: Record<'ingest' | 'read' | 'admin', string> = { ingest: '', read: '', admin: ADMIN_KEY };

/** A subscription body the test gateway accepts; deliveries wait an hour so nothing is sent. */
const subscription = () => ({ url: `${receiver.url}/hook`, events: ['call.ended'], retry: { schedule: ['1h'] } });

beforeAll(async () => {
  receiver = await startReceiver();
  gw = await startGateway();
  for (const role of ['ingest', 'read'] as const) {
    const res = await gw.api('POST', '/api/v1/keys', { role, name: `${role} key` });
    expect(res.status).toBe(201);
    keys[role] = res.body.key;
  }
});

afterAll(async () => {
  await gw?.stop();
  await receiver?.close();
});

describe('authentication', () => {
  it('answers 401 without an Authorization header', async () => {
    const res = await gw.api('GET', '/api/v1/webhooks', undefined, null);
    expectError(res, 401, 'unauthorized');
  });

  it.each([
    ['a Basic scheme', `Basic ${Buffer.from('admin:pw').toString('base64')}`],
    ['Bearer without a token', 'Bearer'],
    ['Bearer with an empty token', 'Bearer   '],
    ['two tokens', `Bearer ${ADMIN_KEY} ${ADMIN_KEY}`],
    ['the key without a scheme', ADMIN_KEY],
    ['another scheme', `Token ${ADMIN_KEY}`],
  ])('answers 401 for a malformed header: %s', async (_what, header) => {
    const res = await gw.api('GET', '/api/v1/webhooks', undefined, null, { authorization: header });
    expectError(res, 401, 'unauthorized');
  });

  it.each([
    ['an unknown key', 'sk_admin_this_key_does_not_exist_anywhere'],
    ['a key differing in the last character', ADMIN_KEY.slice(0, -1) + (ADMIN_KEY.endsWith('f') ? 'e' : 'f')],
    ['a prefix of a real key', ADMIN_KEY.slice(0, 16)],
    ['a short key', 'x'],
  ])('answers 401 for %s', async (_what, key) => {
    const res = await gw.api('GET', '/api/v1/webhooks', undefined, key);
    expectError(res, 401, 'unauthorized');
  });

  it('accepts the scheme name in any case', async () => {
    const res = await gw.api('GET', '/api/v1/webhooks', undefined, null, { authorization: `bearer ${keys.read}` });
    expect(res.status).toBe(200);
  });

  it('authenticates before validating: an invalid event without a key is 401, not 422', async () => {
    const res = await gw.api('POST', '/api/v1/events', { event: 'call.ended' }, null);
    expectError(res, 401, 'unauthorized');
  });
});

describe('roles', () => {
  it.each([
    ['ingest', 'GET', '/api/v1/webhooks'],
    ['ingest', 'GET', '/api/v1/event-types'],
    ['ingest', 'GET', '/api/v1/keys'],
    ['read', 'POST', '/api/v1/webhooks'],
    ['read', 'POST', '/api/v1/events'],
    ['read', 'POST', '/api/v1/events/batch'],
    ['read', 'POST', '/api/v1/keys'],
    ['read', 'GET', '/api/v1/keys'],
    ['read', 'DELETE', '/api/v1/keys/key_whatever'],
    ['ingest', 'POST', '/api/v1/webhooks'],
  ] as const)('a %s key gets 403 on %s %s', async (role, method, route) => {
    const body = method === 'GET' || method === 'DELETE' ? undefined : {};
    const res = await gw.api(method, route, body, keys[role]);
    expectError(res, 403, 'forbidden');
    expect(res.body.error.message).toContain(role);
  });

  it('an ingest key posts events', async () => {
    const res = await gw.api('POST', '/api/v1/events', fixture('call.ended'), keys.ingest);
    expect([200, 202]).toContain(res.status);
    expect(res.body.event).toBe('call.ended');
  });

  it('a read key lists and inspects', async () => {
    const created = await gw.api('POST', '/api/v1/webhooks', subscription());
    expect(created.status).toBe(201);
    const list = await gw.api('GET', '/api/v1/webhooks', undefined, keys.read);
    expect(list.status).toBe(200);
    expect(list.body.data.map((s: { id: string }) => s.id)).toContain(created.body.id);
    const one = await gw.api('GET', `/api/v1/webhooks/${created.body.id}`, undefined, keys.read);
    expect(one.status).toBe(200);
    const types = await gw.api('GET', '/api/v1/event-types', undefined, keys.read);
    expect(types.status).toBe(200);
  });

  it('an admin key can do everything', async () => {
    const created = await gw.api('POST', '/api/v1/webhooks', subscription());
    expect(created.status).toBe(201);
    const id = created.body.id;
    expect((await gw.api('GET', '/api/v1/webhooks')).status).toBe(200);
    expect((await gw.api('GET', `/api/v1/webhooks/${id}`)).status).toBe(200);
    expect((await gw.api('PATCH', `/api/v1/webhooks/${id}`, { description: 'by admin' })).status).toBe(200);
    expect((await gw.api('POST', `/api/v1/webhooks/${id}/rotate-secret`)).status).toBe(200);
    expect((await gw.api('GET', '/api/v1/event-types')).status).toBe(200);
    const event = await gw.api('POST', '/api/v1/events', { ...fixture('call.ended'), id: 'evt_auth_admin_1' });
    expect(event.status).toBe(202);
    const batch = await gw.api('POST', '/api/v1/events/batch', [{ ...fixture('call.ended'), id: 'evt_auth_admin_2' }]);
    expect(batch.status).toBe(202);
    expect((await gw.api('GET', '/api/v1/keys')).status).toBe(200);
    expect((await gw.api('DELETE', `/api/v1/webhooks/${id}`)).status).toBe(200);
  });
});

describe('keys API', () => {
  it('creates a key, shown once, listed by prefix only', async () => {
    const created = await gw.api('POST', '/api/v1/keys', { role: 'read', name: 'dashboard' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ role: 'read', name: 'dashboard', revoked_at: null });
    expect(created.body.id).toMatch(/^key_/);
    expect(created.body.key).toMatch(/^sk_read_/);
    expect(created.body.key.startsWith(created.body.prefix)).toBe(true);
    expect(created.body.prefix.length).toBeLessThan(created.body.key.length);

    const list = await gw.api('GET', '/api/v1/keys');
    expect(list.status).toBe(200);
    const listed = list.body.data.find((k: { id: string }) => k.id === created.body.id);
    expect(listed).toMatchObject({ id: created.body.id, role: 'read', prefix: created.body.prefix });
    expect(listed).not.toHaveProperty('key');
    expect(listed).not.toHaveProperty('hash');
    // Neither this key nor the bootstrap admin key appears anywhere in the listing.
    expect(JSON.stringify(list.body)).not.toContain(created.body.key);
    expect(JSON.stringify(list.body)).not.toContain(ADMIN_KEY);

    const works = await gw.api('GET', '/api/v1/webhooks', undefined, created.body.key);
    expect(works.status).toBe(200);
  });

  it('creates keys of every role, and a name is optional', async () => {
    for (const role of ['ingest', 'read', 'admin']) {
      const res = await gw.api('POST', '/api/v1/keys', { role });
      expect(res.status).toBe(201);
      expect(res.body.role).toBe(role);
      expect(res.body.name).toBeNull();
    }
  });

  it('revokes a key: it gets 401 at once', async () => {
    const created = await gw.api('POST', '/api/v1/keys', { role: 'ingest' });
    expect((await gw.api('POST', '/api/v1/events', { ...fixture('lead.created'), id: 'evt_auth_rev_1' }, created.body.key)).status).toBe(202);
    const revoked = await gw.api('DELETE', `/api/v1/keys/${created.body.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: created.body.id });
    const after = await gw.api('POST', '/api/v1/events', { ...fixture('lead.created'), id: 'evt_auth_rev_2' }, created.body.key);
    expectError(after, 401, 'unauthorized');
    const listed = (await gw.api('GET', '/api/v1/keys')).body.data.find((k: { id: string }) => k.id === created.body.id);
    expect(listed.revoked_at).not.toBeNull();
  });

  it('answers 404 for revoking an unknown or already revoked key', async () => {
    expectError(await gw.api('DELETE', '/api/v1/keys/key_nope'), 404, 'not_found');
    const created = await gw.api('POST', '/api/v1/keys', { role: 'read' });
    expect((await gw.api('DELETE', `/api/v1/keys/${created.body.id}`)).status).toBe(200);
    expectError(await gw.api('DELETE', `/api/v1/keys/${created.body.id}`), 404, 'not_found');
  });

  it('refuses to revoke the last admin key with 409', async () => {
    const own = await startGateway();
    try {
      const admins = (await own.api('GET', '/api/v1/keys')).body.data.filter((k: { role: string; revoked_at: string | null }) => k.role === 'admin' && !k.revoked_at);
      expect(admins).toHaveLength(1);
      const res = await own.api('DELETE', `/api/v1/keys/${admins[0].id}`);
      expectError(res, 409, 'last_admin_key');
      expect((await own.api('GET', '/api/v1/keys')).status).toBe(200);

      // With a second admin key the first can go, and then the second is the last.
      const second = await own.api('POST', '/api/v1/keys', { role: 'admin' });
      expect((await own.api('DELETE', `/api/v1/keys/${admins[0].id}`, undefined, second.body.key)).status).toBe(200);
      expectError(await own.api('GET', '/api/v1/keys'), 401, 'unauthorized');
      expectError(await own.api('DELETE', `/api/v1/keys/${second.body.id}`, undefined, second.body.key), 409, 'last_admin_key');
    } finally {
      await own.stop();
    }
  });

  it.each([
    [{ role: 'superuser' }],
    [{ role: 'ADMIN' }],
    [{ role: 3 }],
    [{}],
  ])('refuses an invalid role %j with 422 at $.role', async (body) => {
    const res = await gw.api('POST', '/api/v1/keys', body);
    expectError(res, 422);
    expect(errorPaths(res)).toContain('$.role');
  });

  it('refuses a non-string name with 422 at $.name', async () => {
    const res = await gw.api('POST', '/api/v1/keys', { role: 'read', name: 42 });
    expectError(res, 422);
    expect(errorPaths(res)).toEqual(['$.name']);
  });
});
