import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CONNECTORS } from '../../connectors/index.ts';
import { SecretBox } from '../../src/core/secret-box.ts';
import { secretHeaderNames, signingSecrets, subscriptionRequestHeaders, SubscriptionService, type RuntimeSubscription } from '../../src/services/subscriptions.ts';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';
import type { SubscriptionRecord } from '../../src/storage/types.ts';
import { tempDir } from '../support/gateway.ts';

/**
 * The secrets of a subscription: what the delivery engine sends (custom headers, then auth), which
 * header names the delivery log masks, which signing secrets are valid when, and what the service
 * returns and keeps, over a real SQLite file and a real secret box, with a driven clock.
 */

const T0 = Date.UTC(2026, 11, 5, 12, 0, 0);

function runtime(overrides: Partial<RuntimeSubscription> = {}, record: Partial<SubscriptionRecord> = {}): RuntimeSubscription {
  return {
    record: { headers: {}, previous_secret_expires_at: null, ...record } as SubscriptionRecord,
    auth: null, connectorOptions: {}, secretHeaders: {}, secret: 'whsec_new', previousSecret: null, schedule: [], ...overrides,
  };
}

describe('what a delivery sends, and what its log masks', () => {
  it('sends custom headers, then the sealed ones, then auth', () => {
    const sub = runtime({ secretHeaders: { 'X-Api-Key': 'k1' } }, { headers: { 'X-Team': 'ops' } });
    expect(subscriptionRequestHeaders(sub)).toEqual({ 'X-Team': 'ops', 'X-Api-Key': 'k1' });
    expect(subscriptionRequestHeaders({ ...sub, auth: { type: 'basic', username: 'u', password: 'p:w' } })).toEqual({ 'X-Team': 'ops', 'X-Api-Key': 'k1', authorization: `Basic ${Buffer.from('u:p:w').toString('base64')}` });
    expect(subscriptionRequestHeaders({ ...sub, auth: { type: 'bearer', token: 't0k' } })).toMatchObject({ authorization: 'Bearer t0k' });
    expect(subscriptionRequestHeaders({ ...sub, auth: { type: 'header', name: 'X-Api-Key', value: 'from-auth' } })).toEqual({ 'X-Team': 'ops', 'X-Api-Key': 'k1', 'x-api-key': 'from-auth' });
    expect(subscriptionRequestHeaders(runtime())).toEqual({});
  });

  it('masks authorization always, the auth header by its name and every sealed header, lower-cased', () => {
    expect(secretHeaderNames(runtime())).toEqual(['authorization']);
    expect(secretHeaderNames(runtime({ auth: { type: 'bearer', token: 't' } }))).toEqual(['authorization']);
    expect(secretHeaderNames(runtime({ auth: { type: 'header', name: 'X-Secret-Key', value: 'v' }, secretHeaders: { 'X-Api-Key': 'k', Cookie: 'c' } }))).toEqual(['authorization', 'x-secret-key', 'x-api-key', 'cookie']);
  });

  it('signs with the new and the previous secret while the overlap lasts, then with the new one only', () => {
    const rotated = runtime({ previousSecret: 'whsec_old' }, { previous_secret_expires_at: T0 + 1_000 });
    expect(signingSecrets(rotated, T0 + 999)).toEqual(['whsec_new', 'whsec_old']);
    expect(signingSecrets(rotated, T0 + 1_000)).toEqual(['whsec_new']);
    expect(signingSecrets(runtime({ previousSecret: null }, { previous_secret_expires_at: T0 + 1_000 }), T0)).toEqual(['whsec_new']);
    expect(signingSecrets(runtime({ previousSecret: 'whsec_old' }, { previous_secret_expires_at: null }), T0)).toEqual(['whsec_new']);
  });
});

describe('SubscriptionService: secrets kept, never returned', () => {
  let clock = T0;
  let storage: SqliteStorage;
  let subs: SubscriptionService;
  let changed = 0;

  beforeEach(async () => {
    clock = T0;
    changed = 0;
    storage = new SqliteStorage(path.join(tempDir(), 'sluice.db'));
    await storage.migrate();
    subs = new SubscriptionService({
      storage,
      secretBox: new SecretBox(randomBytes(32)),
      isKnownEventPattern: () => true,
      templates: { checkMapping: () => [], checkFilter: () => [], checkOrderingKey: () => [] },
      connectors: new Map(CONNECTORS.map((c) => [c.name, c])),
      checkDestination: async () => undefined,
      secretRotationMs: 3_600_000,
      onChanged: () => changed++,
      now: () => clock,
    });
  });
  afterEach(() => storage.close());

  const base = { url: 'https://hooks.example.com/h', events: ['call.ended'] };

  it('seals credential-like custom headers: masked when shown, kept when the mask comes back, replaced or dropped like any header', async () => {
    const { record } = await subs.create({ ...base, headers: { 'X-Team': 'ops', 'X-Api-Key': 'key-one', 'My-Token': 'tok-one' } });
    expect(record.headers).toEqual({ 'X-Team': 'ops' });
    expect(record.headers_sealed).toEqual(expect.any(String));
    expect(JSON.stringify(record)).not.toMatch(/key-one|tok-one/);
    const shown = subs.present(record);
    expect(shown.headers).toEqual({ 'X-Team': 'ops', 'X-Api-Key': '********', 'My-Token': '********' });
    expect((await subs.runtime(record.id))?.secretHeaders).toEqual({ 'X-Api-Key': 'key-one', 'My-Token': 'tok-one' });

    // What a GET shows, sent back: the stored values stay.
    await subs.update(record.id, { headers: shown.headers, description: 'edited' });
    expect((await subs.runtime(record.id))?.secretHeaders).toEqual({ 'X-Api-Key': 'key-one', 'My-Token': 'tok-one' });
    // A new value replaces; a header left out goes.
    await subs.update(record.id, { headers: { 'X-Team': 'ops', 'X-Api-Key': 'key-two' } });
    const after = await subs.runtime(record.id);
    expect(after?.secretHeaders).toEqual({ 'X-Api-Key': 'key-two' });
    expect(after?.record.headers).toEqual({ 'X-Team': 'ops' });
    // A patch that leaves headers out keeps them.
    await subs.update(record.id, { description: 'again' });
    expect((await subs.runtime(record.id))?.secretHeaders).toEqual({ 'X-Api-Key': 'key-two' });
    // A mask with nothing stored behind it (another subscription's GET, a new name) would be sent as is: refused.
    const masked = { path: '$.headers.X-Session-Token', message: 'is masked (********) and nothing is stored to keep: send the real value' };
    await expect(subs.update(record.id, { headers: { 'X-Api-Key': '********', 'X-Session-Token': '********' } })).rejects.toMatchObject({ status: 422, details: [masked] });
    await expect(subs.create({ ...base, headers: { 'X-Session-Token': '********', 'X-Team': '********' } })).rejects.toMatchObject({ status: 422, details: [masked] });
    expect((await subs.runtime(record.id))?.secretHeaders).toEqual({ 'X-Api-Key': 'key-two' });
    await subs.update(record.id, { headers: {} });
    const cleared = await subs.get(record.id);
    expect(cleared.headers_sealed).toBeNull();
    expect(subs.present(cleared).headers).toEqual({});
  });

  it('keeps a credential header of a row from before sealing when its mask comes back, and seals it', async () => {
    const { record } = await subs.create(base);
    await storage.updateSubscription({ ...record, headers: { 'X-Api-Key': 'legacy-key', 'X-Team': 'ops' }, headers_sealed: null });
    subs.invalidate();
    const old = await subs.get(record.id);
    const shown = subs.present(old);
    expect(shown.headers).toEqual({ 'X-Api-Key': '********', 'X-Team': 'ops' });
    expect((await subs.runtime(record.id))?.secretHeaders).toEqual({ 'X-Api-Key': 'legacy-key' });
    const patched = await subs.update(record.id, { headers: shown.headers });
    expect(patched.headers).toEqual({ 'X-Team': 'ops' });
    expect((await subs.runtime(record.id))?.secretHeaders).toEqual({ 'X-Api-Key': 'legacy-key' });
  });

  it('refuses auth beside an Authorization custom header, sealed or not, on create and on patch', async () => {
    const conflict = { status: 422, details: [{ path: '$.headers.Authorization', message: 'conflicts with auth; configure one or the other' }] };
    await expect(subs.create({ ...base, headers: { Authorization: 'Bearer x' }, auth: { type: 'bearer', token: 't' } })).rejects.toMatchObject(conflict);
    const { record } = await subs.create({ ...base, headers: { authorization: 'Bearer x' } });
    await expect(subs.update(record.id, { auth: { type: 'bearer', token: 't' } })).rejects.toMatchObject(conflict);
    await expect(subs.update(record.id, { auth: null })).resolves.toMatchObject({ auth_sealed: null });
  });

  it('refuses a header auth whose name or value HTTP refuses, and a bearer token with a line break', async () => {
    await expect(subs.create({ ...base, auth: { type: 'header', name: 'Bad Name', value: ' v' } })).rejects.toMatchObject({
      status: 422, details: [{ path: '$.auth.name', message: 'is not a valid header name' }, { path: '$.auth.value', message: 'must not start or end with a space or tab' }],
    });
    await expect(subs.create({ ...base, auth: { type: 'bearer', token: 'a\nb' } })).rejects.toMatchObject({ status: 422, details: [{ path: '$.auth.token', message: 'must not contain CR, LF or NUL' }] });
    const { record } = await subs.create({ ...base, auth: { type: 'header', name: 'X-Key', value: 'v-secret' } });
    expect(subs.present(record).auth).toEqual({ type: 'header', name: 'X-Key', value: '********' });
  });

  it('masks secret connector options, keeps a masked one, refuses a mask with nothing behind it', async () => {
    const token = 'xoxb-stored-bot-token-0123456789';
    const { record } = await subs.create({ events: ['call.ended'], connector: 'slack', connector_options: { bot_token: token, channel: '#ops' } });
    expect(record.connector_options).toEqual({ channel: '#ops' });
    expect(JSON.stringify(record)).not.toContain(token);
    expect(subs.present(record).connector_options).toEqual({ bot_token: '********', channel: '#ops' });
    await subs.update(record.id, { connector_options: { bot_token: '********', channel: '#eng' } });
    expect((await subs.runtime(record.id))?.connectorOptions).toEqual({ bot_token: token, channel: '#eng' });
    await expect(subs.update(record.id, { connector_options: { webhook_url: '********' } })).rejects.toMatchObject({
      status: 422, message: 'The subscription change is invalid.', details: [{ path: '$.connector_options.webhook_url', message: 'is masked (********) and nothing is stored to keep: send the real value' }],
    });
    await expect(subs.update(record.id, { auth: { type: 'basic', username: 'u', password: '********' } })).rejects.toMatchObject({
      details: [{ path: '$.auth.password', message: 'is masked (********) and nothing is stored to keep: send the real value' }],
    });
    expect((await subs.runtime(record.id))?.connectorOptions).toEqual({ bot_token: token, channel: '#eng' });
  });

  it('merges a partial auth or connector_options patch with what is stored, and says exactly what a mask cannot keep', async () => {
    const masked = (path: string) => ({ path, message: 'is masked (********) and nothing is stored to keep: send the real value' });
    const { record } = await subs.create({ ...base, auth: { type: 'basic', username: 'u', password: 'pw-secret' } });
    await subs.update(record.id, { auth: { username: 'ops', password: '********' } });
    expect((await subs.runtime(record.id))?.auth).toEqual({ type: 'basic', username: 'ops', password: 'pw-secret' });
    await expect(subs.update(record.id, { auth: { token: '********' } })).rejects.toMatchObject({ status: 422, details: [masked('$.auth.token')] });

    const token = 'xoxb-stored-bot-token-0123456789';
    const slack = (await subs.create({ events: ['call.ended'], connector: 'slack', connector_options: { bot_token: token, channel: '#ops', api_base_url: 'https://slack.example' } })).record;
    await subs.update(slack.id, { connector_options: { api_base_url: null } });
    expect((await subs.runtime(slack.id))?.connectorOptions).toEqual({ bot_token: token, channel: '#ops' });
    // Another connector: nothing stored is kept, so a mask is refused, whatever the old one stored.
    await expect(subs.update(slack.id, { connector: 'pagerduty', connector_options: { bot_token: '********' } })).rejects.toMatchObject({ status: 422, details: [masked('$.connector_options.bot_token')] });
    // An incomplete set is merged (and its own mistake reported), not taken alone.
    const wrong = await subs.update(slack.id, { connector_options: { channel: 5 } }).catch((err: { details: unknown }) => err.details);
    expect(wrong).toEqual([{ path: '$.connector_options.channel', message: 'must be string' }]);
    expect((await subs.runtime(slack.id))?.connectorOptions).toEqual({ bot_token: token, channel: '#ops' });
  });

  it('rotates the signing secret: the old one valid for the overlap, shown only as its expiry while it lasts; none kept without an overlap', async () => {
    const { record, secret } = await subs.create(base);
    expect(subs.present(record)).toMatchObject({ signing_secret_prefix: secret.slice(0, 12), previous_secret_expires_at: null });
    expect(subs.present(record)).not.toHaveProperty('signing_secret');
    clock = T0 + 10;
    const rotated = await subs.rotateSecret(record.id);
    expect(rotated.secret).not.toBe(secret);
    expect(rotated.record).toMatchObject({ previous_secret_expires_at: T0 + 10 + 3_600_000, secret_prefix: rotated.secret.slice(0, 12), updated_at: T0 + 10 });
    const live = await subs.runtime(record.id);
    expect(live).toMatchObject({ secret: rotated.secret, previousSecret: secret });
    expect(signingSecrets(live!, clock)).toEqual([rotated.secret, secret]);
    const shown = subs.present(rotated.record);
    expect(shown.previous_secret_expires_at).toBe(new Date(T0 + 10 + 3_600_000).toISOString());
    expect(JSON.stringify(shown)).not.toContain(secret.slice(6));
    expect(JSON.stringify(shown)).not.toContain(rotated.secret.slice(6));
    clock = T0 + 10 + 3_600_000;
    expect(subs.present(rotated.record).previous_secret_expires_at).toBeNull();

    const abrupt = await subs.rotateSecret(record.id, 0);
    expect(abrupt.record).toMatchObject({ previous_secret_sealed: null, previous_secret_expires_at: null });
    expect(await subs.runtime(record.id)).toMatchObject({ secret: abrupt.secret, previousSecret: null });
  });

  it('serves the runtime view from its cache until a write through it, which also tells the delivery engine', async () => {
    const { record } = await subs.create(base);
    expect(changed).toBe(1);
    const first = await subs.runtimeAll();
    expect(await subs.runtimeAll()).toBe(first);
    expect(first.get(record.id)?.record.description).toBeNull();
    // A write elsewhere (the delivery engine) is not seen until invalidate().
    await storage.updateSubscription({ ...record, description: 'elsewhere' });
    expect((await subs.runtime(record.id))?.record.description).toBeNull();
    subs.invalidate();
    expect((await subs.runtime(record.id))?.record.description).toBe('elsewhere');
    for (const write of [() => subs.update(record.id, { description: 'here' }), () => subs.rotateSecret(record.id), () => subs.remove(record.id)]) {
      const before = await subs.runtimeAll();
      const count = changed;
      await write();
      expect(changed).toBe(count + 1);
      expect(await subs.runtimeAll()).not.toBe(before);
    }
    expect(await subs.runtime(record.id)).toBeUndefined();
  });

  it('a PATCH changes only the fields it names, and each one it names', async () => {
    const full = {
      ...base, name: 'ops', description: 'all fields', filter: 'data.score > 1', mapping: '{ "a": 1 }', retry: { schedule: ['1s'] },
      ordering: { key: 'data.k', on_failure: 'block' }, timeout: 5, rate_limit: 2, headers: { 'X-Team': 'ops' },
    };
    const { record } = await subs.create(full);
    const shown = subs.present(record);
    expect(shown).toMatchObject({ name: 'ops', filter: 'data.score > 1', mapping: '{ "a": 1 }', retry: { schedule: ['1s'] }, ordering: { key: 'data.k', on_failure: 'block' }, timeout: 5, rate_limit: 2 });
    expect(subs.present(await subs.update(record.id, { description: 'changed' }))).toEqual({ ...shown, description: 'changed' });
    const changes: Record<string, unknown> = {
      name: 'ops-2', url: 'https://hooks.example.com/other', events: ['call.*'], filter: 'data.score > 2', mapping: '{ "b": 2 }',
      retry: { schedule: ['2s'] }, ordering: null, timeout: 7, rate_limit: null, headers: { 'X-Team': 'blue' },
    };
    for (const [field, value] of Object.entries(changes)) {
      const before = subs.present(await subs.get(record.id));
      expect(subs.present(await subs.update(record.id, { [field]: value })), field).toEqual({ ...before, [field]: value });
    }
  });

  it('disabling says who did it; enabling again clears the reason and restarts the failure clock', async () => {
    const { record } = await subs.create(base);
    const off = await subs.update(record.id, { enabled: false });
    expect(off).toMatchObject({ enabled: false, disabled_reason: 'disabled by an operator' });
    await storage.updateSubscription({ ...off, disabled_reason: 'no successful delivery for 5 days', failing_since: T0 - 86_400_000 });
    expect(await subs.update(record.id, { enabled: true })).toMatchObject({ enabled: true, disabled_reason: null, failing_since: null });
  });

  it('takes a connector\'s defaults unless the field is given (null turns one off), and checks its options on create and when the connector changes', async () => {
    const slack = await subs.create({ events: ['call.ended'], connector: 'slack', connector_options: { webhook_url: 'https://hooks.slack.com/services/T1/B1/x' } });
    expect(slack.record).toMatchObject({ rate_limit: 1, url: '' });
    expect((await subs.create({ events: ['call.ended'], connector: 'slack', connector_options: { webhook_url: 'https://hooks.slack.com/services/T1/B1/y' }, rate_limit: null })).record.rate_limit).toBeNull();
    const pagerduty = await subs.create({ events: ['call.ended'], connector: 'pagerduty', connector_options: { routing_key: 'R'.repeat(32) } });
    expect(pagerduty.record.ordering).not.toBeNull();
    expect((await subs.create({ events: ['call.ended'], connector: 'pagerduty', connector_options: { routing_key: 'R'.repeat(32) }, ordering: null })).record.ordering).toBeNull();
    // Options are checked on create even when none are given, and again when the connector changes.
    await expect(subs.create({ events: ['call.ended'], connector: 'slack' })).rejects.toMatchObject({ status: 422, details: [expect.objectContaining({ path: '$.connector_options' })] });
    const { record } = await subs.create(base);
    await expect(subs.update(record.id, { connector: 'slack' })).rejects.toMatchObject({ status: 422, details: [expect.objectContaining({ path: '$.connector_options' })] });
    const moved = await subs.update(record.id, { connector: 'slack', connector_options: { webhook_url: 'https://hooks.slack.com/services/T1/B1/z' } });
    expect(moved).toMatchObject({ connector: 'slack', url: '' });
    // A PATCH that leaves the options out keeps them.
    expect((await subs.update(record.id, { description: 'still slack' })).connector).toBe('slack');
  });
});
