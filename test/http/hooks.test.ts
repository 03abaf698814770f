import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEventCatalog } from '../../src/catalog/event-catalog.ts';
import { MappingRegistry } from '../../src/services/mapping-registry.ts';
import { ROOMY_LIMITS } from '../support/limits.ts';
import { REPO_ROOT, fixture, startGateway, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';
import { errorPaths, expectError } from '../support/error-shape.ts';

const SECRET_PATTERN = /^whsec_[A-Za-z0-9+/]{43}=$/;

let receiver: Awaited<ReturnType<typeof startReceiver>>;
let gw: TestGateway;
let readKey: string;
let ingestKey: string;
let mappings: MappingRegistry;
const catalog = loadEventCatalog(path.join(REPO_ROOT, 'catalog/events'));

/** What the zapier connector's default template makes of an envelope. */
const flat = (envelope: { event: string; id: string; timestamp: string; data: unknown }) =>
  mappings.render('zapier/default', { event: envelope.event, id: envelope.id, timestamp: envelope.timestamp, data: envelope.data }, { connector: 'zapier', options: {} });

async function subscribe(body: Record<string, unknown>) {
  const res = await gw.api('POST', '/api/v1/hooks', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as Record<string, any>;
}

beforeAll(async () => {
  receiver = await startReceiver();
  gw = await startGateway();
  mappings = new MappingRegistry({ dir: path.join(REPO_ROOT, 'mappings'), limits: ROOMY_LIMITS });
  await mappings.load();
  readKey = (await gw.api('POST', '/api/v1/keys', { role: 'read' })).body.key;
  ingestKey = (await gw.api('POST', '/api/v1/keys', { role: 'ingest' })).body.key;
});

afterAll(async () => {
  await gw?.stop();
  await receiver?.close();
});

describe('POST /api/v1/hooks', () => {
  it('subscribes: 201 with the hook id, its URL and event, and the signing secret once', async () => {
    const hook = await subscribe({ target_url: `${receiver.url}/zap/1`, event: 'call.ended' });
    expect(hook).toMatchObject({ target_url: `${receiver.url}/zap/1`, event: 'call.ended', events: ['call.ended'], connector: 'zapier', enabled: true });
    expect(hook.id).toMatch(/^sub_/);
    expect(hook.signing_secret).toMatch(SECRET_PATTERN);
    expect(hook.signing_secret_prefix).toBe(hook.signing_secret.slice(0, hook.signing_secret_prefix.length));

    // An ordinary subscription underneath, marked as a hook, with the connector's defaults.
    const sub = await gw.api('GET', `/api/v1/webhooks/${hook.id}`);
    expect(sub.status).toBe(200);
    expect(sub.body).toMatchObject({ id: hook.id, url: `${receiver.url}/zap/1`, events: ['call.ended'], connector: 'zapier', source: 'hook', rate_limit: 25 });
    expect(sub.body).not.toHaveProperty('signing_secret');
  });

  it('accepts events: [...], the legacy subscription_url alias, a filter and a mapping', async () => {
    const hook = await subscribe({ subscription_url: `${receiver.url}/zap/2`, events: ['call.*', 'lead.created'], filter: 'data.call.duration > 60', mapping: 'call-summary', description: 'my zap' });
    expect(hook).toMatchObject({ target_url: `${receiver.url}/zap/2`, events: ['call.*', 'lead.created'], filter: 'data.call.duration > 60', mapping: 'call-summary', description: 'my zap' });
    expect(hook).not.toHaveProperty('event');
    // Zapier's legacy REST hooks send the same URL under both names.
    const both = await subscribe({ target_url: `${receiver.url}/zap/3`, subscription_url: `${receiver.url}/zap/3`, event: 'lead.created' });
    expect(both.target_url).toBe(`${receiver.url}/zap/3`);
    // n8n's trigger node subscribes through the same API with its own connector.
    const n8n = await subscribe({ target_url: `${receiver.url}/webhook/abc`, events: ['lead.created'], connector: 'n8n' });
    expect(n8n.connector).toBe('n8n');
    expect((await gw.api('GET', `/api/v1/webhooks/${n8n.id}`)).body).toMatchObject({ connector: 'n8n', source: 'hook' });
  });

  it('refuses bad input with 422 and each problem\'s path, in the caller\'s words', async () => {
    const cases: [unknown, string[]][] = [
      [{}, ['$.target_url', '$.event']],
      [[], ['$']],
      [{ target_url: `${receiver.url}/z`, event: 'call.nope' }, ['$.event']],
      [{ target_url: `${receiver.url}/z`, events: ['call.ended', 'nope.nope'] }, ['$.events[1]']],
      [{ target_url: 'ftp://example.com/hook', event: 'call.ended' }, ['$.target_url']],
      [{ subscription_url: 'not a url', event: 'call.ended' }, ['$.subscription_url']],
      [{ target_url: `${receiver.url}/a`, subscription_url: `${receiver.url}/b`, event: 'call.ended' }, ['$.subscription_url']],
      [{ target_url: `${receiver.url}/z`, event: 'call.ended', events: ['call.ended'] }, ['$.events']],
      [{ target_url: `${receiver.url}/z`, event: 'call.ended', connector: 'slack' }, ['$.connector']],
      [{ target_url: `${receiver.url}/z`, event: 'call.ended', style: 'x' }, ['$.style']],
      [{ target_url: 42, event: 'call.ended' }, ['$.target_url']],
      [{ target_url: `${receiver.url}/z`, event: 'call.ended', filter: 'data.(' }, ['$.filter']],
      [{ target_url: `${receiver.url}/z`, event: 'call.ended', mapping: 'no-such-template' }, ['$.mapping']],
    ];
    for (const [body, paths] of cases) {
      const res = await gw.api('POST', '/api/v1/hooks', body);
      expectError(res, 422);
      expect(errorPaths(res), JSON.stringify(body)).toEqual(expect.arrayContaining(paths));
    }
  });
});

describe('GET and DELETE /api/v1/hooks/{id}', () => {
  it('GET returns the hook without its secret', async () => {
    const hook = await subscribe({ target_url: `${receiver.url}/zap/get`, event: 'lead.created' });
    const res = await gw.api('GET', `/api/v1/hooks/${hook.id}`);
    expect(res.status).toBe(200);
    const { signing_secret: _secret, ...expected } = hook;
    expect(res.body).toEqual(expected);
  });

  it('DELETE unsubscribes, and answers the same for an id already gone or never known', async () => {
    const hook = await subscribe({ target_url: `${receiver.url}/zap/del`, event: 'call.ended' });
    for (let i = 0; i < 2; i++) {
      const res = await gw.api('DELETE', `/api/v1/hooks/${hook.id}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ id: hook.id, deleted: true });
    }
    expectError(await gw.api('GET', `/api/v1/hooks/${hook.id}`), 404, 'not_found');
    expectError(await gw.api('GET', `/api/v1/webhooks/${hook.id}`), 404, 'not_found');
    expect((await gw.api('DELETE', '/api/v1/hooks/sub_never_existed')).body).toEqual({ id: 'sub_never_existed', deleted: true });

    // No delivery for it any more.
    const posted = await gw.api('POST', '/api/v1/events', fixture('call.ended'));
    expect(posted.body.deliveries.map((d: { subscription_id: string }) => d.subscription_id)).not.toContain(hook.id);
  });

  it('leaves subscriptions made through /webhooks alone', async () => {
    const sub = await gw.api('POST', '/api/v1/webhooks', { url: `${receiver.url}/ops`, events: ['call.ended'] });
    expectError(await gw.api('GET', `/api/v1/hooks/${sub.body.id}`), 404, 'not_found');
    expectError(await gw.api('DELETE', `/api/v1/hooks/${sub.body.id}`), 409, 'not_a_hook');
    expect((await gw.api('GET', `/api/v1/webhooks/${sub.body.id}`)).status).toBe(200);
    await gw.api('DELETE', `/api/v1/webhooks/${sub.body.id}`);
  });
});

describe('GET /api/v1/hooks/sample', () => {
  it('returns the newest three real events of the type, newest first, shaped as Zapier deliveries', async () => {
    const base = fixture('evaluation.completed');
    const events = [1, 2, 3, 4].map((n) => ({ ...base, id: `evt_sample_eval_${n}`, data: { ...base.data, score: 90 + n } }));
    for (const event of events) expect((await gw.api('POST', '/api/v1/events', event, ingestKey)).status).toBe(202);

    const res = await gw.api('GET', '/api/v1/hooks/sample?event=evaluation.completed');
    expect(res.status).toBe(200);
    expect(res.body).toEqual(await Promise.all([events[3], events[2], events[1]].map(flat)));
    expect(res.body[0]).toMatchObject({ id: 'evt_sample_eval_4', data_score: 94, data_criteria: base.data.criteria });
  });

  it('falls back to the catalog example, as a one-element array', async () => {
    const res = await gw.api('GET', '/api/v1/hooks/sample?event=lead.updated');
    expect(res.status).toBe(200);
    expect(res.body).toEqual([await flat(catalog.get('lead.updated')!.example)]);
  });

  it('covers every type of a wildcard', async () => {
    const frustration = fixture('signal.frustration_spike');
    await gw.api('POST', '/api/v1/events', frustration);
    const res = await gw.api('GET', '/api/v1/hooks/sample?event=signal.*');
    expect(res.status).toBe(200);
    expect(res.body).toEqual([await flat(frustration)]);
  });

  it('shapes samples by the connector, or by a hook\'s own mapping', async () => {
    const envelope = (await gw.api('GET', '/api/v1/hooks/sample?event=lead.updated&connector=webhook')).body;
    expect(envelope).toEqual([catalog.get('lead.updated')!.example]);

    const hook = await subscribe({ target_url: `${receiver.url}/zap/mapped`, event: 'lead.updated', mapping: '{"who": data.lead.email, "id": id}' });
    const mapped = await gw.api('GET', `/api/v1/hooks/sample?event=lead.updated&id=${hook.id}`);
    const example = catalog.get('lead.updated')!.example as { id: string; data: { lead: { email: string } } };
    expect(mapped.body).toEqual([{ who: example.data.lead.email, id: example.id }]);
  });

  it('refuses a missing or unknown event with 422 at its query path', async () => {
    for (const query of ['', '?event=', '?event=nope.nope', '?event=call.ended&event=lead.created']) {
      const res = await gw.api('GET', `/api/v1/hooks/sample${query}`);
      expectError(res, 422);
      expect(errorPaths(res)).toEqual(['query.event']);
    }
    const res = await gw.api('GET', '/api/v1/hooks/sample?event=call.ended&connector=nope');
    expectError(res, 422);
    expect(errorPaths(res)).toEqual(['query.connector']);
    expectError(await gw.api('GET', '/api/v1/hooks/sample?event=call.ended&id=sub_missing'), 404, 'not_found');
  });
});

describe('roles', () => {
  const routes: [string, string, unknown?][] = [
    ['POST', '/api/v1/hooks', { target_url: 'https://example.com/x', event: 'call.ended' }],
    ['GET', '/api/v1/hooks/sub_x'],
    ['DELETE', '/api/v1/hooks/sub_x'],
    ['GET', '/api/v1/hooks/sample?event=call.ended'],
  ];

  it.each(routes)('%s %s needs an admin key', async (method, route, body) => {
    expectError(await gw.api(method, route, body, null), 401, 'unauthorized');
    expectError(await gw.api(method, route, body, 'sk_not_a_real_key'), 401, 'unauthorized');
    expectError(await gw.api(method, route, body, readKey), 403, 'forbidden');
    expectError(await gw.api(method, route, body, ingestKey), 403, 'forbidden');
  });
});
