import { createHash, randomBytes, scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/core/secret-box.ts';

const rawKey = Buffer.alloc(32, 7);
const legacyKey = (passphrase: string) => createHash('sha256').update(`sluice-master-key:${passphrase}`).digest();
const B64URL = /^[A-Za-z0-9_-]+$/;

describe('SecretBox', () => {
  it('needs a 32-byte key', () => {
    expect(() => new SecretBox(Buffer.alloc(31))).toThrow('SecretBox needs a 32-byte key');
    expect(() => new SecretBox(Buffer.alloc(33))).toThrow('SecretBox needs a 32-byte key');
  });

  it('seals as v1.<iv>.<tag>.<ciphertext> in base64url, with a fresh IV each time, and opens it again', () => {
    const box = new SecretBox(rawKey);
    const sealed = box.seal('whsec_ünï');
    const parts = sealed.split('.');
    expect(parts).toHaveLength(4);
    expect(parts[0]).toBe('v1');
    expect(Buffer.from(parts[1], 'base64url')).toHaveLength(12);
    expect(Buffer.from(parts[2], 'base64url')).toHaveLength(16);
    for (const part of parts.slice(1)) expect(part).toMatch(B64URL);
    expect(sealed).not.toContain('whsec_');
    expect(box.open(sealed)).toBe('whsec_ünï');
    expect(box.seal('whsec_ünï')).not.toBe(sealed);
    expect(box.open(box.seal(''))).toBe('');
  });

  it('does not open under another key, nor a tampered value', () => {
    const sealed = new SecretBox(rawKey).seal('secret');
    expect(() => new SecretBox(Buffer.alloc(32, 8)).open(sealed)).toThrow();
    const [v, iv, tag, ciphertext] = sealed.split('.');
    const flipped = Buffer.from(ciphertext, 'base64url');
    flipped[0] ^= 1;
    expect(() => new SecretBox(rawKey).open([v, iv, tag, flipped.toString('base64url')].join('.'))).toThrow();
  });

  it('refuses what is not a sealed value', () => {
    const box = new SecretBox(rawKey);
    const message = 'not a sealed secret (or sealed under a passphrase, and this key is not one)';
    const [, iv, tag, ciphertext] = box.seal('x').split('.');
    expect(() => box.open('plain text')).toThrow(message);
    expect(() => box.open(['v1', iv, tag].join('.'))).toThrow(message);
    expect(() => box.open(['v1', iv, tag, ciphertext, 'more'].join('.'))).toThrow(message);
    expect(() => box.open(['v3', iv, tag, ciphertext].join('.'))).toThrow(message);
    // v2 values are sealed under a passphrase; a raw-key box cannot derive their key.
    expect(() => box.open(['v2', 'c2FsdA', iv, tag, ciphertext].join('.'))).toThrow(message);
  });

  it('seals and opens JSON', () => {
    const box = new SecretBox(rawKey);
    const value = { token: 'xoxb-1', n: [1, 2], nested: { ok: true } };
    expect(box.openJson(box.sealJson(value))).toEqual(value);
  });
});

describe('SecretBox.fromMasterKey and isPassphrase', () => {
  it('takes 64 hex characters (any case) as the raw key', () => {
    const hex = rawKey.toString('hex');
    for (const material of [hex, hex.toUpperCase()]) {
      expect(SecretBox.isPassphrase(material)).toBe(false);
      const sealed = SecretBox.fromMasterKey(material).seal('s');
      expect(new SecretBox(rawKey).open(sealed)).toBe('s');
    }
  });

  it('takes base64 or base64url of exactly 32 bytes as the raw key', () => {
    const key = randomBytes(32);
    for (const material of [key.toString('base64'), key.toString('base64url')]) {
      expect(SecretBox.isPassphrase(material)).toBe(false);
      expect(new SecretBox(key).open(SecretBox.fromMasterKey(material).seal('s'))).toBe('s');
    }
  });

  it('takes anything else as a passphrase: without a salt, stretched with the legacy single SHA-256', () => {
    for (const material of ['correct horse battery staple', rawKey.toString('hex').slice(1), Buffer.alloc(31, 1).toString('base64'), `${rawKey.toString('hex')}0`]) {
      expect(SecretBox.isPassphrase(material)).toBe(true);
      const sealed = SecretBox.fromMasterKey(material).seal('s');
      expect(sealed.startsWith('v1.')).toBe(true);
      expect(new SecretBox(legacyKey(material)).open(sealed)).toBe('s');
    }
    // Strings that decode to 32 bytes (the decoder skips what it cannot read) but are not base64 of them.
    const key = Buffer.alloc(32, 2).toString('base64').slice(0, 43);
    for (const near of [`${key}!`, `!${key}`]) {
      expect(SecretBox.isPassphrase(near)).toBe(true);
      expect(Buffer.from(near, 'base64')).toHaveLength(32);
      expect(new SecretBox(legacyKey(near)).open(SecretBox.fromMasterKey(near).seal('s'))).toBe('s');
    }
  });

  it('with a salt, stretches a passphrase with scrypt and seals v2.<salt>...; still opens legacy v1 values', () => {
    const passphrase = 'correct horse battery staple';
    const salt = Buffer.from('0123456789abcdef');
    const box = SecretBox.fromMasterKey(passphrase, salt);
    const sealed = box.seal('whsec_x');
    const parts = sealed.split('.');
    expect(parts).toHaveLength(5);
    expect(parts[0]).toBe('v2');
    expect(Buffer.from(parts[1], 'base64url')).toEqual(salt);
    expect(box.open(sealed)).toBe('whsec_x');
    // The scrypt parameters: N 2^15, r 8, p 1, 32 bytes.
    const derived = scryptSync(passphrase, salt, 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
    const [, , iv, tag, ciphertext] = parts;
    expect(new SecretBox(derived).open(['v1', iv, tag, ciphertext].join('.'))).toBe('whsec_x');
    // A value sealed before the salt existed (legacy key) still opens.
    expect(box.open(SecretBox.fromMasterKey(passphrase).seal('old'))).toBe('old');
    // A raw key is never a passphrase, salt or not.
    expect(SecretBox.fromMasterKey(rawKey.toString('hex'), salt).seal('r').startsWith('v1.')).toBe(true);
  });

  it('a passphrase box refuses malformed values before deriving any key', () => {
    const box = SecretBox.fromMasterKey('correct horse battery staple', Buffer.from('salt-one'));
    const message = 'not a sealed secret (or sealed under a passphrase, and this key is not one)';
    const [, salt, iv, tag, ciphertext] = box.seal('x').split('.');
    expect(() => box.open(['v3', salt, iv, tag, ciphertext].join('.'))).toThrow(message);
    expect(() => box.open(['v2', salt, iv, tag].join('.'))).toThrow(message);
    expect(() => box.open(['v2', salt, iv, tag, ciphertext, 'x'].join('.'))).toThrow(message);
    expect(box.open(['v2', salt, iv, tag, ciphertext].join('.'))).toBe('x');
  });

  it('opens a v2 value under its own salt, even when the box was made with another one', () => {
    const passphrase = 'correct horse battery staple';
    const sealed = SecretBox.fromMasterKey(passphrase, Buffer.from('salt-one')).seal('moved');
    const other = SecretBox.fromMasterKey(passphrase, Buffer.from('salt-two'));
    expect(other.open(sealed)).toBe('moved');
    expect(other.open(sealed)).toBe('moved');
    expect(() => SecretBox.fromMasterKey('another passphrase', Buffer.from('salt-two')).open(sealed)).toThrow();
  });
});
