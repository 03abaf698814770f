import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM sealing for secrets at rest. A sealed value reads
 * `v1.<iv b64url>.<tag b64url>.<ciphertext b64url>`; the key never leaves this object.
 */
export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('SecretBox needs a 32-byte key');
    this.#key = key;
  }

  /**
   * Accepts 64 hex chars or base64 of exactly 32 bytes as a raw key; any other string is a
   * passphrase stretched with SHA-256, so an operator can set a memorable SLUICE_MASTER_KEY.
   */
  static fromMasterKey(material: string): SecretBox {
    if (/^[0-9a-f]{64}$/i.test(material)) return new SecretBox(Buffer.from(material, 'hex'));
    const b64 = Buffer.from(material, 'base64');
    if (b64.length === 32 && /^[A-Za-z0-9+/_-]{43}=?$/.test(material)) return new SecretBox(b64);
    return new SecretBox(createHash('sha256').update(`sluice-master-key:${material}`).digest());
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.');
  }

  open(sealed: string): string {
    const [version, iv, tag, ciphertext] = sealed.split('.');
    if (version !== 'v1' || !iv || !tag || ciphertext === undefined) throw new Error('not a sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  }

  sealJson(value: unknown): string {
    return this.seal(JSON.stringify(value));
  }

  openJson<T>(sealed: string): T {
    return JSON.parse(this.open(sealed)) as T;
  }
}
