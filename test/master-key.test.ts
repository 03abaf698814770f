import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretBox } from '../src/core/secret-box.ts';
import { loadSecretBox } from '../src/master-key.ts';
import { SqliteStorage } from '../src/storage/sqlite/sqlite-storage.ts';
import { tempDir } from './support/gateway.ts';

const mode = (file: string) => fs.statSync(file).mode & 0o777;

describe('files on disk', () => {
  it('creates the data dir 0700, master.key 0600 and sluice.db 0600', async () => {
    const dataDir = path.join(tempDir(), 'data');
    loadSecretBox(undefined, dataDir);
    const storage = new SqliteStorage(path.join(dataDir, 'sluice.db'));
    await storage.migrate();
    await storage.close();
    expect(mode(dataDir)).toBe(0o700);
    expect(mode(path.join(dataDir, 'master.key'))).toBe(0o600);
    expect(mode(path.join(dataDir, 'sluice.db'))).toBe(0o600);
  });

  it('keeps the generated key across starts', () => {
    const dataDir = tempDir();
    const first = loadSecretBox(undefined, dataDir);
    const second = loadSecretBox(undefined, dataDir);
    expect(first.generated).toBe(true);
    expect(second.generated).toBe(false);
    expect(second.box.open(first.box.seal('kept'))).toBe('kept');
  });
});

describe('a passphrase master key', () => {
  const passphrase = 'correct horse battery staple';

  it('is stretched with scrypt and a stored salt (master.salt, 0600)', () => {
    const dataDir = tempDir();
    const { box } = loadSecretBox(passphrase, dataDir);
    const sealed = box.seal('whsec_x');
    const salt = fs.readFileSync(path.join(dataDir, 'master.salt'), 'utf8').trim();
    expect(mode(path.join(dataDir, 'master.salt'))).toBe(0o600);
    expect(sealed.startsWith(`v2.${salt}.`)).toBe(true);
    expect(loadSecretBox(passphrase, dataDir).box.open(sealed)).toBe('whsec_x');
    expect(() => loadSecretBox('another passphrase', dataDir).box.open(sealed)).toThrow();
    // The single SHA-256 of earlier versions cannot open it.
    expect(() => new SecretBox(createHash('sha256').update(`sluice-master-key:${passphrase}`).digest()).open(sealed)).toThrow();
  });

  it('still opens secrets sealed by earlier versions (single SHA-256), and values whose salt file is gone', () => {
    const dataDir = tempDir();
    const legacy = new SecretBox(createHash('sha256').update(`sluice-master-key:${passphrase}`).digest()).seal('sealed long ago');
    const { box } = loadSecretBox(passphrase, dataDir);
    expect(box.open(legacy)).toBe('sealed long ago');
    const sealed = box.seal('sealed today');
    fs.rmSync(path.join(dataDir, 'master.salt'));
    expect(loadSecretBox(passphrase, dataDir).box.open(sealed)).toBe('sealed today');
  });

  it('raw keys keep the v1 format', () => {
    const { box } = loadSecretBox('ab'.repeat(32), tempDir());
    expect(box.seal('x').startsWith('v1.')).toBe(true);
  });
});
