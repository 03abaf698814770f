import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';

/**
 * AES-256-GCM sealing for secrets at rest; the key never leaves this object.
 *
 * A sealed value reads `v1.<iv>.<tag>.<ciphertext>` (base64url) under a raw key, or under a
 * passphrase stretched with a single SHA-256 (how earlier versions sealed, still opened), and
 * `v2.<salt>.<iv>.<tag>.<ciphertext>` under a passphrase stretched with scrypt and that salt.
 * Each v2 value carries its salt, so it opens even if the salt file is lost.
 */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

export class SecretBox {
  readonly #key: Buffer;
  readonly #passphrase: string | undefined;
  readonly #salt: Buffer | undefined;
  readonly #legacyKey: Buffer | undefined;
  readonly #derived = new Map<string, Buffer>();

  constructor(key: Buffer, passphrase?: { passphrase: string; salt: Buffer }) {
    if (key.length !== 32) throw new Error('SecretBox needs a 32-byte key');
    this.#key = key;
    if (passphrase) {
      this.#passphrase = passphrase.passphrase;
      this.#salt = passphrase.salt;
      this.#legacyKey = legacyPassphraseKey(passphrase.passphrase);
      this.#derived.set(passphrase.salt.toString('base64url'), key);
    }
  }

  /**
   * Accepts 64 hex chars or base64 of exactly 32 bytes as a raw key; any other string is a
   * passphrase, so an operator can set a memorable SLUICE_MASTER_KEY. With a `salt` the
   * passphrase is stretched with scrypt; without one, with the old single SHA-256.
   */
  static fromMasterKey(material: string, salt?: Buffer): SecretBox {
    if (/^[0-9a-f]{64}$/i.test(material)) return new SecretBox(Buffer.from(material, 'hex'));
    const b64 = Buffer.from(material, 'base64');
    if (b64.length === 32 && /^[A-Za-z0-9+/_-]{43}=?$/.test(material)) return new SecretBox(b64);
    if (!salt) return new SecretBox(legacyPassphraseKey(material));
    return new SecretBox(scryptSync(material, salt, 32, SCRYPT), { passphrase: material, salt });
  }

  /** Whether the material is a passphrase (not a raw key), i.e. needs a salt. */
  static isPassphrase(material: string): boolean {
    return !/^[0-9a-f]{64}$/i.test(material) && !(Buffer.from(material, 'base64').length === 32 && /^[A-Za-z0-9+/_-]{43}=?$/.test(material));
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const body = [iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')];
    return (this.#salt ? ['v2', this.#salt.toString('base64url'), ...body] : ['v1', ...body]).join('.');
  }

  open(sealed: string): string {
    const parts = sealed.split('.');
    let key: Buffer;
    let rest: string[];
    if (parts[0] === 'v1' && parts.length === 4) {
      key = this.#legacyKey ?? this.#key;
      rest = parts.slice(1);
    } else if (parts[0] === 'v2' && parts.length === 5 && this.#passphrase !== undefined) {
      key = this.#keyForSalt(parts[1]);
      rest = parts.slice(2);
    } else {
      throw new Error('not a sealed secret (or sealed under a passphrase, and this key is not one)');
    }
    const [iv, tag, ciphertext] = rest;
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  }

  sealJson(value: unknown): string {
    return this.seal(JSON.stringify(value));
  }

  openJson<T>(sealed: string): T {
    return JSON.parse(this.open(sealed)) as T;
  }

  #keyForSalt(salt: string): Buffer {
    let key = this.#derived.get(salt);
    if (!key) {
      key = scryptSync(this.#passphrase!, Buffer.from(salt, 'base64url'), 32, SCRYPT);
      this.#derived.set(salt, key);
    }
    return key;
  }
}

function legacyPassphraseKey(passphrase: string): Buffer {
  return createHash('sha256').update(`sluice-master-key:${passphrase}`).digest();
}
