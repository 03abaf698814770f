'use strict';
/**
 * REST-hook triggers, all built the same way, for one Sluice event type (or wildcard), or for
 * the type the Zap's user picks (`event: null`: the `event_type` input field):
 * - performSubscribe   POST   /api/v1/hooks {target_url, event, connector: "zapier"} -> {id, signing_secret, ...}
 * - performUnsubscribe DELETE /api/v1/hooks/{id} (idempotent on Sluice's side)
 * - perform            the flat payload Sluice POSTed to the Zap, after its signature is checked
 * - performList        GET    /api/v1/hooks/sample?event=... (recent real events, else the catalog example)
 */
const crypto = require('crypto');

/** `https://sluice.example.com/` + `/hooks` -> `https://sluice.example.com/api/v1/hooks`. */
const apiUrl = (bundle, path) => `${String(bundle.authData.base_url).trim().replace(/\/+$/, '')}/api/v1${path}`;

/** Zapier hands webhook headers over as `Http-Webhook-Id` etc.; read them case-insensitively. */
const headerValue = (headers, name) => {
  const wanted = [`http-${name}`, name];
  for (const [key, value] of Object.entries(headers || {})) {
    if (wanted.includes(key.toLowerCase())) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
};

/**
 * Standard Webhooks: `webhook-signature` holds one or more `v1,<base64 HMAC-SHA256>` of
 * `id.timestamp.body`, keyed with the base64 part of the `whsec_` secret. No timestamp window:
 * Zapier may run perform long after it received the request, and it deduplicates on `id`.
 */
const signatureMatches = (secret, rawRequest) => {
  const headers = rawRequest.headers;
  const id = headerValue(headers, 'webhook-id');
  const timestamp = headerValue(headers, 'webhook-timestamp');
  const signatures = headerValue(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) return false;
  const key = Buffer.from(String(secret).replace(/^whsec_/, ''), 'base64');
  const expected = crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${rawRequest.content}`).digest();
  return String(signatures)
    .split(' ')
    .some((entry) => {
      const [version, value] = entry.split(',');
      if (version !== 'v1' || !value) return false;
      const given = Buffer.from(value, 'base64');
      return given.length === expected.length && crypto.timingSafeEqual(given, expected);
    });
};

/** The trigger's own event type, or the one the user picked in the Zap. */
const eventOf = (event, bundle) => event || (bundle.inputData && bundle.inputData.event_type);

const subscribe = (event) => async (z, bundle) => {
  const zapId = bundle.meta && bundle.meta.zap && bundle.meta.zap.id;
  const response = await z.request({
    url: apiUrl(bundle, '/hooks'),
    method: 'POST',
    body: {
      target_url: bundle.targetUrl,
      event: eventOf(event, bundle),
      connector: 'zapier',
      ...(zapId ? { description: `Zapier: Zap ${zapId}` } : {}),
    },
  });
  // Zapier keeps this as bundle.subscribeData: `id` to unsubscribe, `signing_secret` to verify.
  return response.data;
};

const unsubscribe = async (z, bundle) => {
  const response = await z.request({
    url: apiUrl(bundle, `/hooks/${encodeURIComponent(bundle.subscribeData.id)}`),
    method: 'DELETE',
  });
  return response.data;
};

/**
 * Zapier documents `bundle.rawRequest` (headers and body as received) for a hook's perform,
 * and the subscribe answer always carries the secret: without either there is nothing to
 * verify against, so the item is refused rather than let through unsigned.
 */
const perform = async (z, bundle) => {
  const secret = bundle.subscribeData && bundle.subscribeData.signing_secret;
  const raw = bundle.rawRequest;
  if (!secret) {
    throw new z.errors.Error('This Zap holds no Sluice signing secret; turn the Zap off and on again to subscribe afresh.', 'InvalidSignature', 401);
  }
  if (!raw || typeof raw.content !== 'string') {
    throw new z.errors.Error('Zapier gave no raw request to check the Sluice signature against; the item was ignored.', 'InvalidSignature', 401);
  }
  if (!signatureMatches(secret, raw)) {
    throw new z.errors.Error('The request did not carry a valid Sluice signature; it was ignored.', 'InvalidSignature', 401);
  }
  const payload = bundle.cleanedRequest;
  return Array.isArray(payload) ? payload : [payload];
};

const list = (event) => async (z, bundle) => {
  const response = await z.request({ url: apiUrl(bundle, '/hooks/sample'), params: { event: eventOf(event, bundle) } });
  return response.data;
};

/**
 * A complete trigger definition for one Sluice event type (or wildcard such as `signal.*`),
 * or, with `event: null` and an `event_type` input field, for the type the user picks.
 */
const restHookTrigger = ({ key, event, noun, label, description, sample, outputFields, inputFields }) => ({
  key,
  noun,
  display: { label, description },
  operation: {
    type: 'hook',
    ...(inputFields ? { inputFields } : {}),
    performSubscribe: subscribe(event),
    performUnsubscribe: unsubscribe,
    perform,
    performList: list(event),
    sample,
    outputFields,
  },
});

module.exports = { apiUrl, restHookTrigger, signatureMatches, perform };
