import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config.ts';
import { createSluice } from '../src/app.ts';
import { REPO_ROOT, tempDir } from './support/gateway.ts';

describe('createSluice', () => {
  it('with SLUICE_DATABASE_URL uses PostgreSQL, never a SQLite file; an unreachable server is a ConfigError at start', async () => {
    const dataDir = path.join(tempDir(), 'data');
    const config = loadConfig({ SLUICE_DATA_DIR: dataDir, SLUICE_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test', SLUICE_LOG_LEVEL: 'silent' }, REPO_ROOT);
    const sluice = await createSluice(config);
    expect(sluice.storage.engine).toBe('postgres');
    const started = sluice.start();
    await expect(started).rejects.toThrow(ConfigError);
    await expect(started).rejects.toThrow(/cannot reach PostgreSQL at postgres@127\.0\.0\.1:1\/test: connection refused/);
    await sluice.stop();
    expect(fs.existsSync(path.join(dataDir, 'sluice.db'))).toBe(false);
  });
});
