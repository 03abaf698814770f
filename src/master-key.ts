import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { SecretBox } from './core/secret-box.ts';

/**
 * SLUICE_MASTER_KEY when set; otherwise a random key kept in <data dir>/master.key (mode 0600),
 * generated on first start. Losing that file makes stored secrets unreadable, so say so loudly.
 */
export function loadSecretBox(masterKey: string | undefined, dataDir: string): { box: SecretBox; generated: boolean; file?: string } {
  if (masterKey) return { box: SecretBox.fromMasterKey(masterKey), generated: false };
  const file = path.join(dataDir, 'master.key');
  fs.mkdirSync(dataDir, { recursive: true });
  if (fs.existsSync(file)) return { box: SecretBox.fromMasterKey(fs.readFileSync(file, 'utf8').trim()), generated: false, file };
  const key = randomBytes(32).toString('hex');
  fs.writeFileSync(file, key + '\n', { mode: 0o600, flag: 'wx' });
  return { box: SecretBox.fromMasterKey(key), generated: true, file };
}
