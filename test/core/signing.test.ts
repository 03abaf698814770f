import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  buildSignatureHeaders,
  generateSigningSecret,
  SIGNATURE_HEADERS,
  secretPrefix,
  signSimple,
  signSimpleAll,
  signStandardWebhooks,
  verifySimpleSignature,
  verifyStandardSignature,
} from '../../src/core/signing.ts';

const body = JSON.stringify({ event: 'call.completed', data: { call_id: 'call_123', duration_seconds: 42, note: 'ünïcødé ✓' } });
const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('generateSigningSecret', () => {
  it('is whsec_ + base64 of 32 random bytes', () => {
    const secret = generateSigningSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const decoded = Buffer.from(secret.slice('whsec_'.length), 'base64');
    expect(decoded.length).toBe(32);
    expect(decoded.toString('base64')).toBe(secret.slice('whsec_'.length));
  });

  it('differs every time', () => {
    const secrets = new Set(Array.from({ length: 20 }, generateSigningSecret));
    expect(secrets.size).toBe(20);
  });
});

describe('secretPrefix', () => {
  it('keeps whsec_ and the next 6 characters', () => {
    expect(secretPrefix('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toBe('whsec_MfKQ9r');
  });

  it('is a prefix of generated secrets and reveals only 6 characters of them', () => {
    const secret = generateSigningSecret();
    const prefix = secretPrefix(secret);
    expect(prefix).toHaveLength(12);
    expect(secret.startsWith(prefix)).toBe(true);
  });
});

describe('signStandardWebhooks', () => {
  it('is accepted by the official standardwebhooks verifier', () => {
    const secret = generateSigningSecret();
    const ts = nowSeconds();
    const signature = signStandardWebhooks({ msgId: 'msg_1', timestampSeconds: ts, body, secrets: [secret] });
    expect(signature).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    const verified = new Webhook(secret).verify(body, {
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(ts),
      'webhook-signature': signature,
    });
    expect(verified).toEqual(JSON.parse(body));
  });

  it('matches what the official library signs', () => {
    const secret = generateSigningSecret();
    const ts = 1_700_000_000;
    const ours = signStandardWebhooks({ msgId: 'msg_2', timestampSeconds: ts, body, secrets: [secret] });
    expect(ours).toBe(new Webhook(secret).sign('msg_2', new Date(ts * 1000), body));
  });

  it('during a rotation, a receiver holding only the old or only the new secret accepts', () => {
    const oldSecret = generateSigningSecret();
    const newSecret = generateSigningSecret();
    const ts = nowSeconds();
    const signature = signStandardWebhooks({ msgId: 'msg_3', timestampSeconds: ts, body, secrets: [newSecret, oldSecret] });
    const parts = signature.split(' ');
    expect(parts).toHaveLength(2);
    expect(parts.every((p) => p.startsWith('v1,'))).toBe(true);
    const headers = { 'webhook-id': 'msg_3', 'webhook-timestamp': String(ts), 'webhook-signature': signature };
    expect(new Webhook(oldSecret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(new Webhook(newSecret).verify(body, headers)).toEqual(JSON.parse(body));
    // A third, unrelated secret is refused: both signatures really are secret-specific.
    expect(() => new Webhook(generateSigningSecret()).verify(body, headers)).toThrow();
  });

  it('is refused when the body, id or timestamp was tampered with', () => {
    const secret = generateSigningSecret();
    const ts = nowSeconds();
    const signature = signStandardWebhooks({ msgId: 'msg_4', timestampSeconds: ts, body, secrets: [secret] });
    const wh = new Webhook(secret);
    expect(() => wh.verify(body + ' ', { 'webhook-id': 'msg_4', 'webhook-timestamp': String(ts), 'webhook-signature': signature })).toThrow();
    expect(() => wh.verify(body, { 'webhook-id': 'msg_5', 'webhook-timestamp': String(ts), 'webhook-signature': signature })).toThrow();
    expect(() => wh.verify(body, { 'webhook-id': 'msg_4', 'webhook-timestamp': String(ts - 1), 'webhook-signature': signature })).toThrow();
  });

  it('refuses to sign with no secret', () => {
    expect(() => signStandardWebhooks({ msgId: 'm', timestampSeconds: 1, body, secrets: [] })).toThrow(/at least one secret/);
  });
});

describe('signSimple and verifySimpleSignature', () => {
  it('is v1= + hex HMAC-SHA256 of the raw body keyed with the whole secret string', () => {
    const secret = generateSigningSecret();
    const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(body, 'utf8')).digest('hex');
    expect(signSimple(body, secret)).toBe(`v1=${expected}`);
    expect(signSimple(body, secret)).toMatch(/^v1=[0-9a-f]{64}$/);
  });

  it('verifies a correct header and refuses wrong ones', () => {
    const secret = generateSigningSecret();
    const header = signSimple(body, secret);
    expect(verifySimpleSignature(body, secret, header)).toBe(true);
    expect(verifySimpleSignature(Buffer.from(body), secret, ` ${header} `)).toBe(true);
    expect(verifySimpleSignature(body + 'x', secret, header)).toBe(false);
    expect(verifySimpleSignature(body, generateSigningSecret(), header)).toBe(false);
    expect(verifySimpleSignature(body, secret, header.slice(0, -1))).toBe(false);
    expect(verifySimpleSignature(body, secret, header.replace('v1=', 'v0='))).toBe(false);
    expect(verifySimpleSignature(body, secret, '')).toBe(false);
    expect(verifySimpleSignature(body, secret, undefined)).toBe(false);
  });
});

describe('buildSignatureHeaders', () => {
  it('sets every header, signing both schemes once per secret (newest first)', () => {
    const newSecret = generateSigningSecret();
    const oldSecret = generateSigningSecret();
    const ts = nowSeconds();
    const headers = buildSignatureHeaders({
      msgId: 'msg_9',
      deliveryId: 'dlv_9',
      eventName: 'call.completed',
      timestampSeconds: ts,
      body,
      secrets: [newSecret, oldSecret],
    });
    expect(Object.keys(headers).sort()).toEqual(
      ['X-Webhook-Delivery', 'X-Webhook-Event', 'X-Webhook-Signature', 'webhook-id', 'webhook-signature', 'webhook-timestamp'].sort(),
    );
    expect(headers['webhook-id']).toBe('msg_9');
    expect(headers['webhook-timestamp']).toBe(String(ts));
    expect(headers['X-Webhook-Event']).toBe('call.completed');
    expect(headers['X-Webhook-Delivery']).toBe('dlv_9');
    expect(verifySimpleSignature(body, newSecret, headers['X-Webhook-Signature'])).toBe(true);
    expect(verifySimpleSignature(body, oldSecret, headers['X-Webhook-Signature'])).toBe(true);
    expect(headers['X-Webhook-Signature']).toBe(`${signSimple(body, newSecret)}, ${signSimple(body, oldSecret)}`);
    expect(verifySimpleSignature(body, generateSigningSecret(), headers['X-Webhook-Signature'])).toBe(false);
    expect(new Webhook(oldSecret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(new Webhook(newSecret).verify(body, headers)).toEqual(JSON.parse(body));
  });
});

describe('signSimpleAll', () => {
  it('refuses to sign with no secret', () => {
    expect(() => signSimpleAll(body, [])).toThrow('signSimpleAll needs at least one secret');
  });
});

describe('SIGNATURE_HEADERS', () => {
  it('names exactly the headers of buildSignatureHeaders that carry a signature (lower case, as the log masks them)', () => {
    const secret = generateSigningSecret();
    const headers = buildSignatureHeaders({ msgId: 'm', deliveryId: 'd', eventName: 'e', timestampSeconds: 1, body, secrets: [secret] });
    const carrying = Object.entries(headers)
      .filter(([, value]) => value.includes(signSimple(body, secret)) || value.includes(signStandardWebhooks({ msgId: 'm', timestampSeconds: 1, body, secrets: [secret] })))
      .map(([name]) => name.toLowerCase());
    expect([...SIGNATURE_HEADERS].sort()).toEqual(carrying.sort());
    expect([...SIGNATURE_HEADERS].sort()).toEqual(['webhook-signature', 'x-webhook-signature']);
  });
});

describe('verifyStandardSignature', () => {
  const secret = generateSigningSecret();
  const ts = 1_700_000_000;
  /** Signed by the official library, so the verifier is checked against an independent implementation. */
  const official = (msgId: string, timestampSeconds: number, payload = body, key = secret) =>
    new Webhook(key).sign(msgId, new Date(timestampSeconds * 1000), payload);
  const headersFor = (signature: string, timestamp = String(ts), id = 'msg_v') => ({ id, timestamp, signature });

  it('accepts what the standardwebhooks library signs, and the library accepts the same headers', () => {
    const signature = official('msg_v', ts);
    expect(verifyStandardSignature(body, secret, headersFor(signature), ts)).toEqual({ ok: true });
    expect(verifyStandardSignature(body, secret, headersFor(signature), ts, 0)).toEqual({ ok: true });
    // Cross-check: the official verifier agrees on the same input (its clock is real, so re-sign now).
    const now = Math.floor(Date.now() / 1000);
    const fresh = official('msg_v', now);
    expect(new Webhook(secret).verify(body, { 'webhook-id': 'msg_v', 'webhook-timestamp': String(now), 'webhook-signature': fresh })).toEqual(JSON.parse(body));
    expect(verifyStandardSignature(body, secret, headersFor(fresh, String(now)), now)).toEqual({ ok: true });
  });

  it('accepts a secret given without the whsec_ prefix, as the library does', () => {
    const signature = official('msg_v', ts);
    expect(verifyStandardSignature(body, secret.slice('whsec_'.length), headersFor(signature), ts)).toEqual({ ok: true });
  });

  it('refuses when a header is missing or empty, naming the headers', () => {
    const signature = official('msg_v', ts);
    const missing = { ok: false, reason: 'missing webhook-id, webhook-timestamp or webhook-signature' };
    expect(verifyStandardSignature(body, secret, { timestamp: String(ts), signature }, ts)).toEqual(missing);
    expect(verifyStandardSignature(body, secret, { id: 'msg_v', signature }, ts)).toEqual(missing);
    expect(verifyStandardSignature(body, secret, { id: 'msg_v', timestamp: String(ts) }, ts)).toEqual(missing);
    expect(verifyStandardSignature(body, secret, { id: '', timestamp: String(ts), signature }, ts)).toEqual(missing);
    expect(verifyStandardSignature(body, secret, { id: 'msg_v', timestamp: null, signature }, ts)).toEqual(missing);
    expect(verifyStandardSignature(body, secret, { id: 'msg_v', timestamp: String(ts), signature: '' }, ts)).toEqual(missing);
  });

  it('accepts a timestamp exactly at the tolerance on either side and refuses one a second beyond (replay guard)', () => {
    const outside = { ok: false, reason: 'timestamp outside the tolerance window' };
    for (const signedAt of [ts - 300, ts + 300]) {
      expect(verifyStandardSignature(body, secret, headersFor(official('msg_v', signedAt), String(signedAt)), ts)).toEqual({ ok: true });
    }
    for (const signedAt of [ts - 301, ts + 301]) {
      expect(verifyStandardSignature(body, secret, headersFor(official('msg_v', signedAt), String(signedAt)), ts)).toEqual(outside);
    }
    // A custom tolerance.
    expect(verifyStandardSignature(body, secret, headersFor(official('msg_v', ts - 10), String(ts - 10)), ts, 10)).toEqual({ ok: true });
    expect(verifyStandardSignature(body, secret, headersFor(official('msg_v', ts - 11), String(ts - 11)), ts, 10)).toEqual(outside);
  });

  it('refuses a timestamp that is not an integer number of seconds, even when the signature matches it', () => {
    const outside = { ok: false, reason: 'timestamp outside the tolerance window' };
    const content = (t: string) => `msg_v.${t}.${body}`;
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    for (const t of [`${ts}.5`, 'soon', `${ts}e0x`]) {
      const signature = `v1,${createHmac('sha256', key).update(content(t)).digest('base64')}`;
      expect(verifyStandardSignature(body, secret, headersFor(signature, t), ts)).toEqual(outside);
    }
  });

  it('refuses a tampered body, id or timestamp, another secret, and a truncated signature, without throwing', () => {
    const none = { ok: false, reason: 'no signature matches this secret' };
    const signature = official('msg_v', ts);
    expect(verifyStandardSignature(body + ' ', secret, headersFor(signature), ts)).toEqual(none);
    expect(verifyStandardSignature(body, secret, headersFor(signature, String(ts), 'msg_w'), ts)).toEqual(none);
    expect(verifyStandardSignature(body, secret, headersFor(signature, String(ts - 1)), ts)).toEqual(none);
    expect(verifyStandardSignature(body, generateSigningSecret(), headersFor(signature), ts)).toEqual(none);
    expect(verifyStandardSignature(body, secret, headersFor(signature.slice(0, -2)), ts)).toEqual(none);
    expect(verifyStandardSignature(body, secret, headersFor(signature.replace('v1,', 'v2,')), ts)).toEqual(none);
  });

  it('accepts when any one of several space-separated signatures matches (rotation overlap), tolerating surrounding whitespace', () => {
    const other = official('msg_v', ts, body, generateSigningSecret());
    const mine = official('msg_v', ts);
    expect(verifyStandardSignature(body, secret, headersFor(`${other} ${mine}`), ts)).toEqual({ ok: true });
    expect(verifyStandardSignature(body, secret, headersFor(`${mine} ${other}`), ts)).toEqual({ ok: true });
    expect(verifyStandardSignature(body, secret, headersFor(`${other} ${mine}\n`), ts)).toEqual({ ok: true });
    expect(verifyStandardSignature(body, secret, headersFor(other), ts)).toEqual({ ok: false, reason: 'no signature matches this secret' });
  });
});
