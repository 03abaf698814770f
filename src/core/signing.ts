import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signing: the Standard Webhooks scheme (`webhook-id`, `webhook-timestamp`,
 * `webhook-signature`) and, beside it, the simple `X-Webhook-Signature: v1=<hex>` scheme
 * for receivers that only want to HMAC the raw body.
 */

const SECRET_PREFIX = 'whsec_';
const SECRET_BYTES = 32;

/** A fresh signing secret: `whsec_` + base64 of 32 random bytes (the Standard Webhooks format). */
export function generateSigningSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_BYTES).toString('base64');
}

/** What the API shows instead of the secret: `whsec_` and the next 6 characters. */
export function secretPrefix(secret: string): string {
  const rest = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  return SECRET_PREFIX + rest.slice(0, 6);
}

/** The HMAC key of the Standard Webhooks scheme: the base64 part after `whsec_`, decoded. */
function standardKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  return Buffer.from(encoded, 'base64');
}

export interface StandardSignInput {
  msgId: string;
  timestampSeconds: number;
  body: string;
  /** Newest first; two during a rotation overlap, so receivers holding either secret accept. */
  secrets: string[];
}

/** The `webhook-signature` header value: `v1,<base64>` per secret, space separated. */
export function signStandardWebhooks({ msgId, timestampSeconds, body, secrets }: StandardSignInput): string {
  if (secrets.length === 0) throw new Error('signStandardWebhooks needs at least one secret');
  const content = `${msgId}.${timestampSeconds}.${body}`;
  return secrets
    .map((secret) => `v1,${createHmac('sha256', standardKey(secret)).update(content).digest('base64')}`)
    .join(' ');
}

/** The `X-Webhook-Signature` value: `v1=<hex HMAC-SHA256 of the raw body>`, keyed with the whole secret string. */
export function signSimple(body: string | Uint8Array, secret: string): string {
  return `v1=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * The whole `X-Webhook-Signature` value: one `v1=` per secret, comma separated, so during a
 * rotation overlap receivers holding either the new or the old secret find theirs.
 */
export function signSimpleAll(body: string | Uint8Array, secrets: string[]): string {
  if (secrets.length === 0) throw new Error('signSimpleAll needs at least one secret');
  return secrets.map((secret) => signSimple(body, secret)).join(', ');
}

/**
 * Checks an `X-Webhook-Signature` header in constant time: any of its comma-separated `v1=`
 * values may match. For receivers (and the n8n node): pass the raw body exactly as received,
 * before any JSON parsing.
 */
export function verifySimpleSignature(body: string | Uint8Array, secret: string, header: string | undefined | null): boolean {
  if (typeof header !== 'string') return false;
  const expected = Buffer.from(signSimple(body, secret));
  return header.split(',').some((candidate) => {
    const given = Buffer.from(candidate.trim());
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** Headers that carry signatures: a replayable credential for their body, so the delivery log masks them. */
export const SIGNATURE_HEADERS = ['webhook-signature', 'x-webhook-signature'];

export interface SignatureHeadersInput extends StandardSignInput {
  deliveryId: string;
  eventName: string;
}

/** Every signature-related header of one outbound request; both schemes sign once per valid secret. */
export function buildSignatureHeaders(input: SignatureHeadersInput): Record<string, string> {
  return {
    'webhook-id': input.msgId,
    'webhook-timestamp': String(input.timestampSeconds),
    'webhook-signature': signStandardWebhooks(input),
    'X-Webhook-Signature': signSimpleAll(input.body, input.secrets),
    'X-Webhook-Event': input.eventName,
    'X-Webhook-Delivery': input.deliveryId,
  };
}

/**
 * Checks Standard Webhooks headers in constant time: any of the space-separated `v1,` signatures
 * may match, and the timestamp must be within `toleranceSeconds` of `nowSeconds` (replay guard).
 */
export function verifyStandardSignature(
  body: string,
  secret: string,
  headers: { id?: string | null; timestamp?: string | null; signature?: string | null },
  nowSeconds: number,
  toleranceSeconds = 300,
): { ok: true } | { ok: false; reason: string } {
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature) return { ok: false, reason: 'missing webhook-id, webhook-timestamp or webhook-signature' };
  const ts = Number(timestamp);
  if (!Number.isInteger(ts) || Math.abs(nowSeconds - ts) > toleranceSeconds) return { ok: false, reason: 'timestamp outside the tolerance window' };
  const expected = Buffer.from(signStandardWebhooks({ msgId: id, timestampSeconds: ts, body, secrets: [secret] }));
  const match = signature.split(' ').some((candidate) => {
    const given = Buffer.from(candidate.trim());
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  return match ? { ok: true } : { ok: false, reason: 'no signature matches this secret' };
}
