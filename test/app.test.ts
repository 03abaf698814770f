import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config.ts';
import { createSluice } from '../src/app.ts';
import { REPO_ROOT, tempDir } from './support/gateway.ts';

describe('createSluice', () => {
  it('refuses SLUICE_DATABASE_URL instead of silently storing events in SQLite', async () => {
    const dataDir = path.join(tempDir(), 'data');
    const config = loadConfig({ SLUICE_DATA_DIR: dataDir, SLUICE_DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test', SLUICE_LOG_LEVEL: 'silent' }, REPO_ROOT);
    await expect(createSluice(config)).rejects.toThrow(ConfigError);
    await expect(createSluice(config)).rejects.toThrow(/PostgreSQL backend is not part of this version/);
    // Nothing was created on disk either.
    expect(fs.existsSync(dataDir)).toBe(false);
  });
});
