import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  buildSignatureHeaders,
  generateSigningSecret,
  secretPrefix,
  signSimple,
  signStandardWebhooks,
  verifySimpleSignature,
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
