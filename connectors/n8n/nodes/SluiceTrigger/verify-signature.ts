import { createHmac, timingSafeEqual } from 'crypto';

/**
 * Standard Webhooks verification, as Sluice signs every delivery: `webhook-signature` holds one
 * or more space-separated `v1,<base64 HMAC-SHA256>` of `<webhook-id>.<webhook-timestamp>.<raw
 * body>`, keyed with the base64-decoded part of the `whsec_...` secret. Two signatures appear
 * while a secret rotation overlaps; either may match. Kept free of n8n imports so it can be
 * tested on its own.
 */

/** How far `webhook-timestamp` may be from the receiver's clock: guards against replays. */
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

const SECRET_PREFIX = 'whsec_';

export type VerifyResult = { ok: true } | { ok: false; reason: string };

export interface VerifyInput {
  /** The body exactly as received, before any JSON parsing. */
  rawBody: Buffer | string;
  /** Request headers, names lower-cased (as Node and n8n give them). */
  headers: Record<string, string | string[] | undefined>;
  /** The hook's signing secret, `whsec_<base64>`. */
  secret: string;
  nowSeconds: number;
  toleranceSeconds?: number;
}

function header(headers: VerifyInput['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The HMAC key: the base64 part after `whsec_`, decoded. */
function signingKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64');
}

/** The signature Sluice would send for this message: `v1,<base64>`. */
export function standardSignature(secret: string, msgId: string, timestamp: string, rawBody: Buffer | string): string {
  const mac = createHmac('sha256', signingKey(secret)).update(`${msgId}.${timestamp}.`).update(rawBody).digest('base64');
  return `v1,${mac}`;
}

export function verifyStandardWebhook(input: VerifyInput): VerifyResult {
  const msgId = header(input.headers, 'webhook-id');
  const timestamp = header(input.headers, 'webhook-timestamp');
  const signatures = header(input.headers, 'webhook-signature');
  if (!msgId || !timestamp || !signatures) {
    return { ok: false, reason: 'missing webhook-id, webhook-timestamp or webhook-signature header' };
  }
  if (!input.secret) return { ok: false, reason: 'no signing secret is stored for this trigger' };
  if (!/^\d{1,15}$/.test(timestamp)) return { ok: false, reason: 'webhook-timestamp is not a unix time in seconds' };
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(input.nowSeconds - Number(timestamp)) > tolerance) {
    return { ok: false, reason: `webhook-timestamp is more than ${tolerance} seconds away from this server's clock` };
  }
  const expected = Buffer.from(standardSignature(input.secret, msgId, timestamp, input.rawBody));
  // Every candidate is compared, so the time taken does not reveal which one (if any) matched.
  let matched = false;
  for (const candidate of signatures.split(' ')) {
    const given = Buffer.from(candidate.trim());
    if (given.length === expected.length && timingSafeEqual(given, expected)) matched = true;
  }
  return matched ? { ok: true } : { ok: false, reason: 'no webhook-signature matches the signing secret' };
}
