/**
 * The JSON Schemas of the API's request bodies: the validators in services/ compile these, and
 * the OpenAPI document (http/openapi-document.ts) embeds them, so a field added here is both
 * accepted and documented. Plain data, no I/O. `description` keywords are for the document;
 * ajv (strict: false) ignores them, and `errorMessage` (the ajv-errors convention) is read by
 * services/subscription-input.ts to explain a node's errors in one sentence.
 */

export const SUBSCRIPTION_NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,99}$';

/**
 * Deliveries per second a subscription may be paced to. Below the floor one delivery would wait
 * for days and the pacer's slots run past what a date can hold.
 */
export const RATE_LIMIT_RANGE = { min: 0.001, max: 10_000 } as const;

export const authSchema = {
  type: 'object',
  description: 'Credentials sent with every delivery; encrypted at rest and masked (********) in responses.',
  required: ['type'],
  oneOf: [
    { type: 'object', additionalProperties: false, required: ['type', 'username', 'password'], properties: { type: { const: 'basic' }, username: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[^:]*$', errorMessage: 'must be 1 to 256 characters without a colon' }, password: { type: 'string', maxLength: 1024 } } },
    { type: 'object', additionalProperties: false, required: ['type', 'token'], properties: { type: { const: 'bearer' }, token: { type: 'string', minLength: 1, maxLength: 4096 } } },
    { type: 'object', additionalProperties: false, required: ['type', 'name', 'value'], properties: { type: { const: 'header' }, name: { type: 'string', minLength: 1, maxLength: 256 }, value: { type: 'string', minLength: 1, maxLength: 4096 } } },
  ],
};

/** Secret values inside `auth`, by type: write-only, never returned. */
export const AUTH_SECRET_FIELDS: Record<string, string> = { basic: 'password', bearer: 'token', header: 'value' };

export const subscriptionFields = {
  name: { type: ['string', 'null'], pattern: SUBSCRIPTION_NAME_PATTERN, description: 'A stable, unique name (lowercase letters, digits, . _ -): how `sluice apply` recognises the subscription.', examples: ['crm-sync'] },
  url: { type: 'string', minLength: 1, maxLength: 2048, description: 'Destination URL; HTTPS unless SLUICE_ALLOW_INSECURE_URLS=true, never a private address. Connectors with their own endpoint leave it out.', examples: ['https://hooks.example.com/sluice'] },
  events: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 200 }, description: 'Catalog event names, `call.*` prefix wildcards or `*`.', examples: [['call.ended', 'signal.*']] },
  description: { type: ['string', 'null'], maxLength: 1000 },
  enabled: { type: 'boolean', description: 'false pauses the subscription: no new deliveries, and pending ones wait until it is enabled again.' },
  headers: { type: 'object', maxProperties: 50, additionalProperties: { type: 'string', maxLength: 4096 }, description: 'Custom request headers (valid HTTP field values); credential-like ones are encrypted and masked in responses.' },
  auth: { anyOf: [{ type: 'null' }, authSchema] },
  filter: { type: ['string', 'null'], maxLength: 10_000, description: 'A JSONata predicate on the event envelope.' },
  mapping: { type: ['string', 'null'], maxLength: 100_000, description: 'A template name from mappings/ or inline JSONata.' },
  connector: { type: 'string', minLength: 1, maxLength: 50, description: 'webhook (default), slack, pagerduty, zapier, n8n or hubspot (GET /api/v1/connectors).' },
  connector_options: { type: 'object', description: "The connector's options (its options_schema in GET /api/v1/connectors); secret ones are masked in responses." },
  retry: {
    anyOf: [
      { type: 'null' },
      {
        type: 'object',
        additionalProperties: false,
        properties: {
          schedule: { type: 'array', items: { type: ['number', 'string'] }, description: 'The delay before each attempt: seconds, or strings with ms/s/m/h/d units.' },
          max_attempts: { type: 'integer', description: 'Attempts on the default backoff curve.' },
        },
      },
    ],
  },
  ordering: {
    anyOf: [
      { type: 'null' },
      {
        type: 'object',
        additionalProperties: false,
        required: ['key'],
        properties: {
          key: {
            type: 'string',
            minLength: 1,
            maxLength: 10_000,
            description: 'A JSONata expression on the event envelope giving the key (e.g. data.conversation_id), or "*" for one order across the whole subscription. Deliveries with the same key value are attempted one at a time, in the order their events were accepted; an event whose key gives nothing is unordered.',
            examples: ['data.conversation_id', '*'],
          },
          on_failure: {
            type: 'string',
            enum: ['continue', 'block'],
            default: 'continue',
            description: 'What a permanent failure does to the deliveries queued behind it: continue (it goes to the dead letters, the next proceeds) or block (the key stops until the failed one is replayed or skipped).',
          },
        },
      },
    ],
    description: 'Ordered delivery per key; null (default) delivers each event on its own. The PagerDuty connector orders by its dedup_key by default.',
  },
  timeout: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 300, description: 'Seconds (default 10).' },
  rate_limit: {
    type: ['number', 'null'],
    minimum: RATE_LIMIT_RANGE.min,
    maximum: RATE_LIMIT_RANGE.max,
    errorMessage: `must be null or a number of deliveries per second from ${RATE_LIMIT_RANGE.min} to ${RATE_LIMIT_RANGE.max}`,
    description: 'Deliveries per second, enforced by delaying.',
  },
};

export const subscriptionCreateSchema = { type: 'object', additionalProperties: false, required: ['events'], properties: subscriptionFields };
export const subscriptionPatchSchema = { type: 'object', additionalProperties: false, minProperties: 1, properties: subscriptionFields };

const urlField = { type: 'string', minLength: 1, maxLength: 2048 };
export const hookSubscribeSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    target_url: { ...urlField, description: 'Where deliveries go.' },
    subscription_url: { ...urlField, description: "Zapier's legacy REST hooks send the same URL under both names." },
    event: { type: 'string', minLength: 1, maxLength: 200, description: 'One event type (or give `events`).' },
    events: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 200 } },
    connector: { type: 'string', minLength: 1, maxLength: 50, description: 'zapier (default) or n8n.' },
    filter: { type: ['string', 'null'], maxLength: 10_000 },
    mapping: { type: ['string', 'null'], maxLength: 100_000 },
    description: { type: ['string', 'null'], maxLength: 1000 },
  },
};

/** Events per second an API key's ingest quota may be set to, and its largest burst. */
export const INGEST_QUOTA_RANGE = { min: 0.001, max: 1_000_000, maxBurst: 1_000_000 } as const;

export const apiKeyQuotaFields = {
  rate_limit: {
    type: ['number', 'null'],
    minimum: INGEST_QUOTA_RANGE.min,
    maximum: INGEST_QUOTA_RANGE.max,
    description: 'Ingest quota: events per second this key may post (each event of a batch counts); beyond it POST /events answers 429 with Retry-After. null: unlimited.',
  },
  rate_burst: {
    type: ['integer', 'null'],
    minimum: 1,
    maximum: INGEST_QUOTA_RANGE.maxBurst,
    description: 'Events the key may post at once above its rate (default: one second of rate_limit, at least 1). Needs rate_limit.',
  },
};

export const apiKeyCreateSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['role'],
  properties: {
    role: { type: 'string', enum: ['ingest', 'read', 'admin'] },
    name: { type: ['string', 'null'], maxLength: 200 },
    ...apiKeyQuotaFields,
  },
};

export const apiKeyPatchSchema = { type: 'object', additionalProperties: false, minProperties: 1, properties: apiKeyQuotaFields };

export const eventEnvelopeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['event', 'data'],
  properties: {
    event: { type: 'string', minLength: 1, description: 'A catalog event type, e.g. call.ended (sluice.* is reserved).' },
    id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.:\\-]{0,254}$', description: 'Idempotency: the same id again returns the first answer. Defaults to a generated evt_… id.' },
    timestamp: { type: 'string', format: 'date-time', description: 'Defaults to now.' },
    data: { description: "Validated against the event type's JSON Schema (GET /api/v1/event-types)." },
  },
};

export const replayRequestSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: ['pending', 'delivering', 'delivered', 'failed', 'cancelled'] },
    since: { type: ['string', 'number'], description: 'ISO-8601 date-time or unix seconds.' },
    until: { type: ['string', 'number'], description: 'ISO-8601 date-time or unix seconds.' },
    event: { type: 'string' },
    cursor: { type: 'string', pattern: '^dlv_[0-9A-Za-z]+$', description: 'The next_cursor of a previous replay answer: continue after it.' },
  },
};

export const mappingPreviewSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    template: { type: ['string', 'null'], description: 'Inline JSONata.' },
    mapping: { type: ['string', 'null'], description: 'A template name, or inline JSONata.' },
    event: { type: 'object', description: 'An event envelope {event, id, timestamp, data}.' },
    event_id: { type: ['string', 'null'], description: 'A stored event to preview on.' },
    filter: { type: ['string', 'null'], description: 'A JSONata predicate evaluated on the same event.' },
    subscription_id: { type: ['string', 'null'], description: "Whose $subscription binding the template sees." },
  },
};

export const testSendSchema = {
  type: 'object',
  properties: { event: { type: 'string', description: 'A subscribed event type; defaults to the first one.' } },
};

/** Field names a hand-written validator accepts, read from its schema. */
export function fieldsOf(schema: { properties: Record<string, unknown> }): string[] {
  return Object.keys(schema.properties);
}
