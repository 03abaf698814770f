import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, startGateway, tempDir } from '../support/gateway.ts';
import { expectError } from '../support/error-shape.ts';

/**
 * `sluice keys` against the data dir of a gateway in this process. Apart from auth.test.ts, which
 * runs wholly in its process (so a mutation run can use it), since this one starts the CLI.
 */

const run = promisify(execFile);

describe('keys CLI', () => {
  const cli = (args: string[], dataDir: string) =>
    run(process.execPath, ['bin/sluice.js', ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, SLUICE_DATA_DIR: dataDir },
      timeout: 20_000,
    });

  it('creates a key the gateway accepts, and revokes it', async () => {
    const dataDir = tempDir();
    const created = await cli(['keys', 'create', '--role', 'read', '--name', 'from the cli'], dataDir);
    const key = created.stdout.trim();
    expect(key).toMatch(/^sk_read_[A-Za-z0-9_-]{43}$/);
    const id = /\b(key_[A-Za-z0-9]+)/.exec(created.stderr)?.[1];
    expect(id, created.stderr).toBeDefined();

    const first = await startGateway({}, { dataDir });
    try {
      expect((await first.api('GET', '/api/v1/webhooks', undefined, key)).status).toBe(200);
      expectError(await first.api('POST', '/api/v1/webhooks', {}, key), 403, 'forbidden');
      const listed = (await first.api('GET', '/api/v1/keys')).body.data.find((k: { id: string }) => k.id === id);
      expect(listed).toMatchObject({ role: 'read', name: 'from the cli', revoked_at: null });
    } finally {
      await first.stop();
    }

    const revoked = await cli(['keys', 'revoke', id!], dataDir);
    expect(revoked.stdout).toContain(id);
    const second = await startGateway({}, { dataDir });
    try {
      expectError(await second.api('GET', '/api/v1/webhooks', undefined, key), 401, 'unauthorized');
    } finally {
      await second.stop();
    }
  }, 60_000);

  it('refuses an unknown role with a non-zero exit', async () => {
    await expect(cli(['keys', 'create', '--role', 'root'], tempDir())).rejects.toMatchObject({ code: expect.any(Number) });
  }, 20_000);
});
