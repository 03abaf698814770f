import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiKeyService, generateApiKey, keyPrefix, ROLES, toPublicKey } from '../../src/services/api-keys.ts';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';
import type { ApiKeyRecord } from '../../src/storage/types.ts';
import { tempDir } from '../support/gateway.ts';

/**
 * The key service over a real SQLite file, with its clock driven by the test: who is let in, for
 * how long a verified key is trusted without asking the database (5 s), and what clears that trust
 * at once. A second service on the same file plays another instance or the CLI.
 */

const T0 = Date.UTC(2026, 11, 5, 12, 0, 0);
let clock = T0;
let storage: SqliteStorage;
let keys: ApiKeyService;
/** Another process on the same data dir (the CLI, another instance): its revocations do not reach `keys`' cache. */
let elsewhere: ApiKeyService;

beforeEach(async () => {
  clock = T0;
  storage = new SqliteStorage(path.join(tempDir(), 'sluice.db'));
  await storage.migrate();
  keys = new ApiKeyService(storage, () => clock);
  elsewhere = new ApiKeyService(storage, () => clock);
});

afterEach(async () => {
  await storage.close();
});

/** The error a call throws, or undefined. */
const thrown = (p: Promise<unknown>) => p.then(() => undefined, (err: unknown) => err as Record<string, unknown>);

describe('verify and its 5 s cache of verified keys', () => {
  it('trusts a verified key for 5 s: one revoked behind its back still passes at 4999 ms and is refused from 5000 ms on', async () => {
    const { record, key } = await keys.createUnchecked('read', 'cached');
    expect((await keys.verify(key))?.id).toBe(record.id);
    expect(await elsewhere.revoke(record.id)).toBeUndefined();
    expect(await elsewhere.verify(key)).toBeUndefined();

    clock = T0 + 4_999;
    expect((await keys.verify(key))?.id, 'still cached').toBe(record.id);
    clock = T0 + 5_000;
    expect(await keys.verify(key), 'the cache expired: the revocation is seen').toBeUndefined();
    clock = T0 + 60_000;
    expect(await keys.verify(key)).toBeUndefined();
  });

  it('forgets every verified key at once on its own revocation, on invalidate() and on a quota change', async () => {
    const a = await keys.createUnchecked('ingest', 'a');
    const b = await keys.createUnchecked('ingest', 'b');
    expect((await keys.verify(a.key))?.id).toBe(a.record.id);

    // Revoked through this service: refused at once, the same millisecond.
    await keys.revoke(a.record.id);
    expect(await keys.verify(a.key)).toBeUndefined();
    expect((await keys.verify(b.key))?.rate_limit).toBeNull();

    // Another instance changes b's quota: this one keeps its cached record until told.
    await elsewhere.setQuota(b.record.id, { rate_limit: 7 });
    expect((await keys.verify(b.key))?.rate_limit, 'cached').toBeNull();
    keys.invalidate();
    expect((await keys.verify(b.key))?.rate_limit).toBe(7);

    // A quota set through this service applies at once.
    await keys.setQuota(b.record.id, { rate_limit: 3, rate_burst: 5 });
    expect(await keys.verify(b.key)).toMatchObject({ rate_limit: 3, rate_burst: 5 });
  });

  it('does not cache a refusal: a key is refused while revoked and an unknown key while unknown', async () => {
    const known = generateApiKey('read');
    expect(await keys.verify(known)).toBeUndefined();
    const { record } = await elsewhere.createUnchecked('read', 'late', known);
    expect((await keys.verify(known))?.id, 'accepted as soon as it exists').toBe(record.id);
    expect(await keys.verify(known.slice(0, -1))).toBeUndefined();
    expect(await keys.verify('')).toBeUndefined();
  });

  it('holds at most about a thousand verified keys: the next one past 1001 empties the cache', async () => {
    const first = await keys.createUnchecked('read', 'first');
    await keys.verify(first.key);
    const others: string[] = [];
    for (let i = 0; i < 1_001; i++) others.push((await keys.createUnchecked('ingest', null)).key);
    for (const key of others.slice(0, 1_000)) expect(await keys.verify(key)).toBeDefined();
    // 1001 entries now. `first` is revoked elsewhere and still trusted from the cache...
    await elsewhere.revoke(first.record.id);
    expect((await keys.verify(first.key))?.id).toBe(first.record.id);
    // ...until one more verified key overflows it.
    expect(await keys.verify(others[1_000])).toBeDefined();
    expect(await keys.verify(first.key)).toBeUndefined();
  });
});

describe('revoke', () => {
  it('refuses to revoke the last active admin key (409) unless forced; revoked admin keys do not count', async () => {
    const a = await keys.createUnchecked('admin', 'a');
    const b = await keys.createUnchecked('admin', 'b');
    const reader = await keys.createUnchecked('read', 'reader');
    await keys.revoke(a.record.id);
    const refused = await thrown(keys.revoke(b.record.id));
    expect(refused).toMatchObject({
      status: 409, code: 'last_admin_key', message: 'This is the last active admin key; create another admin key before revoking it.', details: [],
    });
    expect(await keys.verify(b.key)).toBeDefined();
    // Other roles go freely while one admin key is left.
    await keys.revoke(reader.record.id);
    await keys.revoke(b.record.id, { force: true });
    expect(await keys.verify(b.key)).toBeUndefined();
  });

  it('counts the active admin keys, not the revoked ones: with one revoked and two active, one of the two may go', async () => {
    const a = await keys.createUnchecked('admin', 'a');
    const b = await keys.createUnchecked('admin', 'b');
    await keys.revoke(a.record.id);
    const c = await keys.createUnchecked('admin', 'c');
    expect(b.record.id).toMatch(/^key_[A-Za-z0-9]+$/);
    await keys.revoke(b.record.id);
    expect(await keys.verify(b.key)).toBeUndefined();
    expect(await keys.verify(c.key)).toBeDefined();
  });

  it('answers 404, naming the key, for an unknown or already revoked key (an already revoked admin key is not "the last one")', async () => {
    expect(await thrown(keys.revoke('key_nope'))).toMatchObject({ status: 404, code: 'not_found', message: 'API key key_nope was not found.' });
    const gone = await keys.createUnchecked('admin', 'gone');
    await keys.createUnchecked('admin', 'kept');
    await keys.revoke(gone.record.id);
    expect(await thrown(keys.revoke(gone.record.id))).toMatchObject({ status: 404, code: 'not_found', message: `API key ${gone.record.id} was not found.` });
  });
});

describe('ensureAdminKey (SLUICE_ADMIN_KEY)', () => {
  it('adds the key once, finds it present after, and never brings back a revoked one', async () => {
    const key = 'Sixteen-chars-ok';
    expect(await keys.ensureAdminKey(key)).toEqual({ outcome: 'added' });
    const [added] = await keys.list();
    expect(added).toMatchObject({ role: 'admin', name: 'bootstrap (SLUICE_ADMIN_KEY)', prefix: 'Sixt', revoked_at: null });
    expect((await keys.verify(key))?.id).toBe(added.id);
    expect(await keys.ensureAdminKey(key)).toEqual({ outcome: 'present' });
    expect(await keys.list()).toHaveLength(1);

    await keys.revoke(added.id, { force: true });
    const again = await keys.ensureAdminKey(key);
    expect(again).toMatchObject({ outcome: 'revoked', record: { id: added.id, revoked_at: T0 } });
    expect(await keys.list()).toHaveLength(1);
    expect(await keys.verify(key)).toBeUndefined();
  });
});

describe('create and setQuota: what a request may ask for', () => {
  it('creates a key of each role, labelled with its role, stored by hash and a short prefix', async () => {
    expect(ROLES).toEqual(['ingest', 'read', 'admin']);
    for (const role of ROLES) {
      const { record, key } = await keys.create({ role, name: `${role} key` });
      expect(key).toMatch(new RegExp(`^sk_${role}_[A-Za-z0-9_-]{43}$`));
      expect(record).toMatchObject({ role, name: `${role} key`, prefix: key.slice(0, `sk_${role}_`.length + 4), created_at: T0, revoked_at: null, rate_limit: null, rate_burst: null });
      expect(record.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(JSON.stringify(await keys.list())).not.toContain(key);
    }
    expect((await keys.create({ role: 'read', name: null })).record.name).toBeNull();
    expect((await keys.create({ role: 'read', name: 'n'.repeat(200) })).record.name).toHaveLength(200);
  });

  it('refuses a role, a name or a field it does not know, each at its path', async () => {
    const refused = async (body: unknown) => {
      const err = await thrown(keys.create(body));
      expect(err, JSON.stringify(body)).toMatchObject({ status: 422, code: 'validation_failed', message: 'Invalid API key request.' });
      return (err as { details: unknown }).details;
    };
    const role = { path: '$.role', message: 'must be one of ingest, read, admin' };
    for (const body of [{ role: 'superuser' }, { role: 'ADMIN' }, { role: 3 }, {}, null, ['admin']]) expect(await refused(body)).toEqual([role]);
    expect(await refused({ role: 'read', name: 42 })).toEqual([{ path: '$.name', message: 'must be a string of at most 200 characters' }]);
    expect(await refused({ role: 'read', name: 'n'.repeat(201) })).toEqual([{ path: '$.name', message: 'must be a string of at most 200 characters' }]);
    expect(await refused({ role: 'read', hash: 'x', admin: true })).toEqual([
      { path: '$.hash', message: 'is not a known field (role, name, rate_limit, rate_burst)' },
      { path: '$.admin', message: 'is not a known field (role, name, rate_limit, rate_burst)' },
    ]);
    expect(await keys.list()).toEqual([]);
  });

  it('takes a quota within its range, and says what is wrong with one outside it', async () => {
    const rateMessage = 'must be null or a number of events per second from 0.001 to 1000000';
    const burstMessage = 'must be null or a whole number of events from 1 to 1000000';
    const quota = async (q: Record<string, unknown>) => (await keys.create({ role: 'ingest', ...q })).record;
    expect(await quota({ rate_limit: 0.001 })).toMatchObject({ rate_limit: 0.001, rate_burst: null });
    expect(await quota({ rate_limit: 1_000_000, rate_burst: 1_000_000 })).toMatchObject({ rate_limit: 1_000_000, rate_burst: 1_000_000 });
    expect(await quota({ rate_limit: 2, rate_burst: 1 })).toMatchObject({ rate_limit: 2, rate_burst: 1 });
    expect(await quota({ rate_limit: null, rate_burst: null })).toMatchObject({ rate_limit: null, rate_burst: null });

    const details = async (q: Record<string, unknown>) => ((await thrown(keys.create({ role: 'ingest', ...q }))) as { details: unknown }).details;
    for (const rate of [0.0009, 1_000_001, 'fast', Number.POSITIVE_INFINITY, Number.NaN]) {
      expect(await details({ rate_limit: rate }), String(rate)).toEqual([{ path: '$.rate_limit', message: rateMessage }]);
    }
    for (const burst of [0, 1_000_001, 2.5, '4']) {
      expect(await details({ rate_limit: 5, rate_burst: burst }), String(burst)).toEqual([{ path: '$.rate_burst', message: burstMessage }]);
    }
    expect(await details({ rate_burst: 10 })).toEqual([{ path: '$.rate_burst', message: 'needs rate_limit: a burst is the room above a rate' }]);
  });

  it('changes a quota only with something to change, on a key that exists, and answers with that key', async () => {
    clock = T0 - 1_000;
    await keys.createUnchecked('ingest', 'listed first');
    clock = T0;
    const { record } = await keys.createUnchecked('ingest', null);
    expect(await thrown(keys.setQuota(record.id, {}))).toMatchObject({
      status: 422, message: 'Invalid API key change.', details: [{ path: '$', message: 'give rate_limit (and optionally rate_burst), or rate_limit: null to lift the quota' }],
    });
    expect(await thrown(keys.setQuota(record.id, { role: 'admin' }))).toMatchObject({
      status: 422, details: [{ path: '$.role', message: 'is not a known field (rate_limit, rate_burst)' }],
    });
    expect(await thrown(keys.setQuota(record.id, null))).toMatchObject({ status: 422, details: [{ path: '$' }] });
    expect(await thrown(keys.setQuota('key_nope', { rate_limit: 3 }))).toMatchObject({ status: 404, message: 'API key key_nope was not found.' });
    expect(await keys.setQuota(record.id, { rate_limit: 4 })).toMatchObject({ id: record.id, role: 'ingest', rate_limit: 4, rate_burst: null });
    expect(await keys.setQuota(record.id, { rate_limit: null })).toMatchObject({ id: record.id, rate_limit: null, rate_burst: null });
  });
});

describe('how a key is shown', () => {
  const record = (overrides: Partial<ApiKeyRecord>): ApiKeyRecord => ({
    id: 'key_1', name: 'k', role: 'ingest', prefix: 'sk_ingest_AbCd', hash: 'f'.repeat(64), created_at: T0, revoked_at: null, rate_limit: null, rate_burst: null, ...overrides,
  });

  it('shows times as ISO strings, never the hash, and the burst in force (the default one when none was set)', () => {
    expect(toPublicKey(record({}))).toEqual({
      id: 'key_1', name: 'k', role: 'ingest', prefix: 'sk_ingest_AbCd', created_at: new Date(T0).toISOString(), revoked_at: null, rate_limit: null, rate_burst: null,
    });
    expect(toPublicKey(record({ revoked_at: T0 + 1_000 })).revoked_at).toBe(new Date(T0 + 1_000).toISOString());
    expect(toPublicKey(record({ rate_limit: 2.5 }))).toMatchObject({ rate_limit: 2.5, rate_burst: 3 });
    expect(toPublicKey(record({ rate_limit: 0.5 }))).toMatchObject({ rate_limit: 0.5, rate_burst: 1 });
    expect(toPublicKey(record({ rate_limit: 2, rate_burst: 9 }))).toMatchObject({ rate_limit: 2, rate_burst: 9 });
    expect(toPublicKey(record({ rate_limit: undefined as unknown as null, rate_burst: 9 }))).toMatchObject({ rate_limit: null, rate_burst: null });
  });

  it('keeps the role label and four characters as the prefix, and only four of an unlabelled key', () => {
    expect(keyPrefix('sk_ingest_AbCdEfGh')).toBe('sk_ingest_AbCd');
    expect(keyPrefix('sk_read_AbCdEfGh')).toBe('sk_read_AbCd');
    expect(keyPrefix('sk_admin_walkthrough_0123456789')).toBe('sk_admin_walk');
    expect(keyPrefix('sk_root_AbCdEfGh')).toBe('sk_r');
    expect(keyPrefix('xsk_admin_AbCdEfGh')).toBe('xsk_');
    expect(keyPrefix('0123456789abcdef')).toBe('0123');
  });
});
