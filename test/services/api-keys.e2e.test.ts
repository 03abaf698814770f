import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_KEY, REPO_ROOT, startGateway, tempDir, waitFor } from '../support/gateway.ts';
import { callApi, killGateways, spawnGateway } from '../support/gateway-process.ts';
import { ApiKeyService, keyPrefix } from '../../src/services/api-keys.ts';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';
import { SQLITE_MIGRATIONS } from '../../src/storage/sqlite/migrations.ts';

/** Attacks on API keys, against the gateway process and its CLI on the same data dir. */

const run = promisify(execFile);
const cli = (args: string[], dataDir: string) =>
  run(process.execPath, ['bin/sluice.js', ...args], { cwd: REPO_ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, SLUICE_DATA_DIR: dataDir }, timeout: 20_000 });

afterEach(killGateways);

describe('the bootstrap admin key', () => {
  it('once revoked through the API, a restart with the same environment does not bring it back', async () => {
    const dataDir = tempDir();
    const first = await spawnGateway(dataDir);
    const other = await callApi(first, 'POST', '/api/v1/keys', { role: 'admin', name: 'replacement' });
    const keys = await callApi(first, 'GET', '/api/v1/keys');
    const bootstrap = keys.body.data.find((k: { name: string }) => k.name === 'bootstrap (SLUICE_ADMIN_KEY)');
    expect((await callApi(first, 'DELETE', `/api/v1/keys/${bootstrap.id}`, undefined, other.body.key)).status).toBe(200);
    first.child.kill('SIGTERM');
    await first.exited;

    const second = await spawnGateway(dataDir);
    expect((await callApi(second, 'GET', '/api/v1/webhooks')).status).toBe(401);
    expect((await callApi(second, 'GET', '/api/v1/webhooks', undefined, other.body.key)).status).toBe(200);
    expect(second.output()).toContain('SLUICE_ADMIN_KEY was revoked and is refused');
    const after = await callApi(second, 'GET', '/api/v1/keys', undefined, other.body.key);
    expect(after.body.data.filter((k: { name: string }) => k.name === 'bootstrap (SLUICE_ADMIN_KEY)')).toHaveLength(1);
  }, 40_000);

  it('a 16-character key is stored and listed by a short prefix only, never whole', async () => {
    const dataDir = tempDir();
    const shortKey = 'Sixteen-chars-ok';
    const gw = await spawnGateway(dataDir, { SLUICE_ADMIN_KEY: shortKey });
    const list = await callApi(gw, 'GET', '/api/v1/keys', undefined, shortKey);
    expect(list.status).toBe(200);
    expect(list.body.data[0].prefix).toBe('Sixt');
    expect(JSON.stringify(list.body)).not.toContain(shortKey);
    const db = new Database(path.join(dataDir, 'sluice.db'), { readonly: true });
    try {
      expect(JSON.stringify(db.prepare('SELECT * FROM api_keys').all())).not.toContain(shortKey);
    } finally {
      db.close();
    }
  }, 30_000);
});

describe('keyPrefix', () => {
  it('keeps the role label and four characters', () => {
    expect(keyPrefix('sk_ingest_AbCdEfGh')).toBe('sk_ingest_AbCd');
    expect(keyPrefix('sk_admin_walkthrough_0123456789')).toBe('sk_admin_walk');
    expect(keyPrefix('0123456789abcdef')).toBe('0123');
  });

  it('a database from before shortens its stored prefixes, and its keys still verify', async () => {
    const file = path.join(tempDir(), 'sluice.db');
    const old = new Database(file);
    old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    for (const m of SQLITE_MIGRATIONS.filter((m) => m.version <= 2)) {
      old.exec(m.sql);
      old.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(m.version, m.name);
    }
    old.prepare("INSERT INTO api_keys VALUES ('key_old', 'bootstrap', 'admin', ?, ?, 0, NULL)").run('Sixteen-chars-ok', createHash('sha256').update('Sixteen-chars-ok').digest('hex'));
    old.close();

    const storage = new SqliteStorage(file);
    try {
      await storage.migrate();
      const [row] = await storage.listApiKeys();
      expect(row.prefix).toBe('Sixt');
      expect((await new ApiKeyService(storage).verify('Sixteen-chars-ok'))?.id).toBe('key_old');
    } finally {
      await storage.close();
    }
  });
});

describe('sluice keys revoke', () => {
  it('refuses the last admin key like the API does (exit 1), and revokes it with --force', async () => {
    const dataDir = tempDir();
    const gw = await spawnGateway(dataDir);
    const keys = await callApi(gw, 'GET', '/api/v1/keys');
    const id: string = keys.body.data[0].id;
    const refused = await cli(['keys', 'revoke', id], dataDir).then(() => undefined, (err: { code: number; stderr: string }) => err);
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toMatch(/last active admin key.*--force/);
    expect((await callApi(gw, 'GET', '/api/v1/webhooks', undefined, ADMIN_KEY)).status).toBe(200);

    const forced = await cli(['keys', 'revoke', id, '--force'], dataDir);
    expect(forced.stdout).toContain(`revoked ${id}`);
  }, 40_000);
});

describe('a key revoked from the CLI while the gateway runs', () => {
  it('stops working within 5 s (the verified-key cache), with no restart: gateway clock driven by the test', async () => {
    const dataDir = tempDir();
    let clock = Date.now();
    const gw = await startGateway({}, { dataDir, now: () => clock });
    try {
      const created = await gw.api('POST', '/api/v1/keys', { role: 'read', name: 'to be revoked' });
      expect(created.status).toBe(201);
      const key: string = created.body.key;
      // Used once: the gateway now holds it in its cache of verified keys.
      expect((await gw.api('GET', '/api/v1/webhooks', undefined, key)).status).toBe(200);

      const revoked = await cli(['keys', 'revoke', created.body.id], dataDir);
      expect(revoked.stdout).toContain(`revoked ${created.body.id}`);

      clock += 5_001;
      const refused = await gw.api('GET', '/api/v1/webhooks', undefined, key);
      expect(refused.status).toBe(401);
      // The gateway was not restarted: the admin key still works on the same instance.
      expect((await gw.api('GET', '/api/v1/webhooks')).status).toBe(200);
    } finally {
      await gw.stop();
    }
  }, 40_000);

  it('stops working on a gateway process, in real time, without a restart', async () => {
    const dataDir = tempDir();
    const gw = await spawnGateway(dataDir);
    const created = await callApi(gw, 'POST', '/api/v1/keys', { role: 'read', name: 'to be revoked' });
    const key: string = created.body.key;
    expect((await callApi(gw, 'GET', '/api/v1/webhooks', undefined, key)).status).toBe(200);
    await cli(['keys', 'revoke', created.body.id], dataDir);
    const revokedAt = Date.now();
    // 5 s is the promise; the bound here is generous so a loaded machine does not fail it.
    await waitFor(async () => (await callApi(gw, 'GET', '/api/v1/webhooks', undefined, key)).status === 401, 20_000, 'the revoked key to be refused');
    expect(Date.now() - revokedAt).toBeLessThan(20_000);
    expect(gw.child.exitCode).toBeNull();
    expect((await callApi(gw, 'GET', '/api/v1/webhooks')).status).toBe(200);
  }, 60_000);
});
