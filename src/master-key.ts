import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { SecretBox } from './core/secret-box.ts';

/** The data dir holds the database and the key: only the gateway's user may read it. */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Reads a small file created with mode 0600 on first use. */
function readOrCreatePrivateFile(file: string, create: () => string): { content: string; created: boolean } {
  try {
    fs.writeFileSync(file, create(), { mode: 0o600, flag: 'wx' });
    return { content: fs.readFileSync(file, 'utf8'), created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { content: fs.readFileSync(file, 'utf8'), created: false };
  }
}

/**
 * SLUICE_MASTER_KEY when set; otherwise a random key kept in <data dir>/master.key (mode 0600),
 * generated on first start. Losing that file makes stored secrets unreadable, so say so loudly.
 * A passphrase is stretched with scrypt and a random salt kept in <data dir>/master.salt.
 */
export function loadSecretBox(masterKey: string | undefined, dataDir: string): { box: SecretBox; generated: boolean; file?: string } {
  ensurePrivateDir(dataDir);
  if (masterKey) {
    if (!SecretBox.isPassphrase(masterKey)) return { box: SecretBox.fromMasterKey(masterKey), generated: false };
    const salt = readOrCreatePrivateFile(path.join(dataDir, 'master.salt'), () => randomBytes(16).toString('base64url') + '\n');
    return { box: SecretBox.fromMasterKey(masterKey, Buffer.from(salt.content.trim(), 'base64url')), generated: false };
  }
  const file = path.join(dataDir, 'master.key');
  const key = readOrCreatePrivateFile(file, () => randomBytes(32).toString('hex') + '\n');
  return { box: SecretBox.fromMasterKey(key.content.trim()), generated: key.created, file };
}
