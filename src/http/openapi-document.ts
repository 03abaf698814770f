/**
 * The OpenAPI 3.1 document of /api/v1, built from the request schemas the validators use
 * (core/api-schemas.ts): a field added there is documented without a second edit. Response
 * shapes mirror the services' present() functions. Pure: no I/O.
 */
import {
  apiKeyCreateSchema,
  apiKeyPatchSchema,
  apiKeyQuotaFields,
  eventEnvelopeSchema,
  hookSubscribeSchema,
  mappingPreviewSchema,
  replayRequestSchema,
  subscriptionCreateSchema,
  subscriptionFields,
  subscriptionPatchSchema,
  testSendSchema,
} from '../core/api-schemas.ts';

export interface OpenApiOptions {
  version: string;
  maxBatchEvents: number;
  maxBodyBytes: number;
}

type Json = Record<string, unknown>;
type Role = 'ingest' | 'read' | 'admin' | 'none';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const nullable = (type: string, extra: Json = {}) => ({ type: [type, 'null'], ...extra });
const dateTime = { type: 'string', format: 'date-time' };
const listOf = (item: Json) => ({ type: 'object', required: ['data'], properties: { data: { type: 'array', items: item } } });
const page = (item: Json) => ({
  type: 'object',
  required: ['data', 'next_cursor'],
  properties: { data: { type: 'array', items: item }, next_cursor: nullable('string', { description: 'Pass as ?cursor= for the next page; null on the last.' }) },
});

/** Every error the API answers, by status: the one error shape with its codes. */
const ERRORS: Record<string, { description: string; codes: string[] }> = {
  '400': { description: 'The body is not valid JSON, or the request is malformed.', codes: ['invalid_json', 'invalid_batch', 'invalid_body', 'invalid_path', 'request_aborted', 'bad_request'] },
  '401': { description: 'Missing or unknown API key.', codes: ['unauthorized'] },
  '403': { description: "The API key's role does not allow this.", codes: ['forbidden'] },
  '404': { description: 'No such resource.', codes: ['not_found'] },
  '409': { description: 'The request conflicts with the current state.', codes: ['last_admin_key', 'name_taken', 'subscription_deleted', 'delivery_in_flight', 'not_a_hook', 'event_in_flight', 'not_blocking'] },
  '413': { description: 'The body exceeds SLUICE_MAX_BODY_BYTES.', codes: ['payload_too_large'] },
  '415': { description: 'The body encoding or charset is not supported.', codes: ['unsupported_encoding'] },
  '422': { description: 'The input is invalid; details say where (JSON path, or template line and column).', codes: ['validation_failed', 'invalid_event', 'json_too_deep', 'batch_too_large', 'batch_exceeds_quota', 'template_invalid', 'destination_forbidden'] },
  '429': { description: "The API key is over its ingest quota (rate_limit); Retry-After says when to try again.", codes: ['rate_limited'] },
};

interface Operation {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  id: string;
  tag: string;
  summary: string;
  role: Role;
  body?: Json;
  query?: Json[];
  ok: Record<string, { description: string; schema: Json }>;
  errors?: string[];
}

const idParam = (what: string) => ({ name: 'id', in: 'path', required: true, description: `The ${what} id.`, schema: { type: 'string' } });
const q = (name: string, schema: Json, description: string, required = false) => ({ name, in: 'query', required, description, schema });
const deliveryQuery = [
  q('status', replayRequestSchema.properties.status, 'Only deliveries in this state.'),
  q('event', { type: 'string' }, 'Only deliveries of this event type.'),
  q('limit', { type: 'integer', minimum: 1, maximum: 100, default: 50 }, 'Page size.'),
  q('cursor', { type: 'string' }, 'next_cursor of the previous page.'),
];

function operations(opts: OpenApiOptions): Operation[] {
  const sub = { description: 'The subscription.', schema: ref('Subscription') };
  const subWithSecret = { description: 'The subscription, with its signing secret shown this once.', schema: ref('SubscriptionWithSecret') };
  const delivery = { description: 'The delivery.', schema: ref('Delivery') };
  const hook = { description: 'The hook.', schema: ref('Hook') };
  return [
    { method: 'get', path: '/openapi.json', id: 'getOpenApi', tag: 'Meta', summary: 'This document', role: 'none', ok: { '200': { description: 'The OpenAPI 3.1 document.', schema: { type: 'object' } } }, errors: [] },

    { method: 'post', path: '/keys', id: 'createApiKey', tag: 'API keys', summary: 'Create an API key (shown once)', role: 'admin', body: apiKeyCreateSchema, ok: { '201': { description: 'The key, shown this once.', schema: ref('ApiKeyCreated') } }, errors: ['422'] },
    { method: 'get', path: '/keys', id: 'listApiKeys', tag: 'API keys', summary: 'List API keys (prefixes only)', role: 'admin', ok: { '200': { description: 'Every key.', schema: listOf(ref('ApiKey')) } } },
    { method: 'patch', path: '/keys/{id}', id: 'setApiKeyQuota', tag: 'API keys', summary: "Set or lift an API key's ingest quota", role: 'admin', body: apiKeyPatchSchema, ok: { '200': { description: 'The key.', schema: ref('ApiKey') } }, errors: ['404', '422'] },
    { method: 'delete', path: '/keys/{id}', id: 'revokeApiKey', tag: 'API keys', summary: 'Revoke an API key', role: 'admin', ok: { '200': { description: 'Revoked.', schema: { type: 'object', properties: { id: { type: 'string' }, revoked: { const: true } } } } }, errors: ['404', '409'] },

    {
      method: 'post', path: '/events', id: 'postEvent', tag: 'Events', summary: 'Accept one event', role: 'ingest', body: eventEnvelopeSchema,
      ok: { '202': { description: 'Stored durably with its deliveries.', schema: ref('AcceptedEvent') }, '200': { description: 'A repeat (same id or Idempotency-Key): the first answer, nothing new stored.', schema: ref('AcceptedEvent') } },
      errors: ['422', '429'],
    },
    {
      method: 'post', path: '/events/batch', id: 'postEventBatch', tag: 'Events', summary: `Accept up to ${opts.maxBatchEvents} events in one transaction`, role: 'ingest',
      body: { oneOf: [{ type: 'array', items: eventEnvelopeSchema, maxItems: opts.maxBatchEvents }, { type: 'object', additionalProperties: false, required: ['events'], properties: { events: { type: 'array', items: eventEnvelopeSchema, maxItems: opts.maxBatchEvents } } }] },
      ok: { '202': { description: 'All stored (all or nothing).', schema: listOf(ref('AcceptedEvent')) }, '200': { description: 'Every event was a repeat.', schema: listOf(ref('AcceptedEvent')) } },
      errors: ['422', '429'],
    },
    {
      method: 'delete', path: '/events/{id}', id: 'eraseEvent', tag: 'Events', summary: 'Erase an event, its deliveries and their attempts (pending ones are cancelled); their ids answer 404 afterwards', role: 'admin',
      ok: { '200': { description: 'Erased.', schema: ref('ErasedEvent') } },
      errors: ['400', '404', '409'],
    },
    { method: 'get', path: '/event-types', id: 'listEventTypes', tag: 'Events', summary: 'The event catalog', role: 'read', ok: { '200': { description: 'Names, descriptions, JSON Schemas and examples.', schema: listOf(ref('EventType')) } } },

    { method: 'get', path: '/webhooks', id: 'listSubscriptions', tag: 'Subscriptions', summary: 'List subscriptions', role: 'read', ok: { '200': { description: 'Every subscription with 24-hour stats.', schema: listOf(ref('Subscription')) } } },
    { method: 'post', path: '/webhooks', id: 'createSubscription', tag: 'Subscriptions', summary: 'Create a subscription', role: 'admin', body: ref('SubscriptionCreate'), ok: { '201': subWithSecret }, errors: ['409', '422'] },
    { method: 'get', path: '/webhooks/{id}', id: 'getSubscription', tag: 'Subscriptions', summary: 'Get a subscription', role: 'read', ok: { '200': sub }, errors: ['404'] },
    { method: 'patch', path: '/webhooks/{id}', id: 'updateSubscription', tag: 'Subscriptions', summary: 'Change fields of a subscription', role: 'admin', body: ref('SubscriptionPatch'), ok: { '200': sub }, errors: ['404', '409', '422'] },
    { method: 'delete', path: '/webhooks/{id}', id: 'deleteSubscription', tag: 'Subscriptions', summary: 'Delete a subscription (pending deliveries are cancelled)', role: 'admin', ok: { '200': { description: 'Deleted.', schema: { type: 'object', properties: { id: { type: 'string' }, deleted: { const: true } } } } }, errors: ['404'] },
    { method: 'post', path: '/webhooks/{id}/rotate-secret', id: 'rotateSigningSecret', tag: 'Subscriptions', summary: 'Rotate the signing secret (the old one keeps signing during the overlap)', role: 'admin', ok: { '200': subWithSecret }, errors: ['404'] },
    { method: 'post', path: '/webhooks/{id}/test', id: 'testSubscription', tag: 'Subscriptions', summary: 'Send a sample event marked test and return the attempt', role: 'admin', body: testSendSchema, ok: { '200': { description: 'The test delivery and its attempt.', schema: ref('TestSend') } }, errors: ['404', '422'] },

    { method: 'get', path: '/webhooks/{id}/deliveries', id: 'listSubscriptionDeliveries', tag: 'Deliveries', summary: "A subscription's delivery log, newest first", role: 'read', query: deliveryQuery, ok: { '200': { description: 'One page.', schema: page(ref('Delivery')) } }, errors: ['404', '422'] },
    {
      method: 'post', path: '/webhooks/{id}/replay', id: 'replaySubscriptionDeliveries', tag: 'Deliveries', summary: 'Replay every delivery of a subscription matching a filter', role: 'admin', body: replayRequestSchema,
      ok: {
        '202': {
          description: 'The deliveries queued. A finished delivery of an ordered key is queued as a new delivery at the end of its key\'s queue (replayed_as_new: old id -> new id).',
          schema: {
            type: 'object',
            properties: {
              replayed: { type: 'integer' }, delivery_ids: { type: 'array', items: { type: 'string' } },
              replayed_as_new: { type: 'object', additionalProperties: { type: 'string' } }, next_cursor: nullable('string'),
            },
          },
        },
      },
      errors: ['404', '422'],
    },
    { method: 'get', path: '/webhooks/{id}/blocked-keys', id: 'listBlockedKeys', tag: 'Deliveries', summary: 'Ordering keys stopped by a failed delivery (ordering.on_failure "block"), with the delivery to replay or skip', role: 'read', ok: { '200': { description: 'Every blocked key, oldest first.', schema: listOf(ref('BlockedKey')) } }, errors: ['404'] },
    { method: 'get', path: '/deliveries', id: 'listDeliveries', tag: 'Deliveries', summary: 'The delivery log across subscriptions, newest first', role: 'read', query: deliveryQuery, ok: { '200': { description: 'One page.', schema: page(ref('Delivery')) } }, errors: ['422'] },
    { method: 'get', path: '/deliveries/{id}', id: 'getDelivery', tag: 'Deliveries', summary: 'A delivery with its payload and every attempt', role: 'read', ok: { '200': { description: 'The delivery.', schema: ref('DeliveryDetail') } }, errors: ['404'] },
    {
      method: 'post', path: '/deliveries/{id}/replay', id: 'replayDelivery', tag: 'Deliveries', role: 'admin', errors: ['404', '409'],
      summary: 'Deliver again, as a new attempt chain; a finished delivery of an ordered key goes as a new delivery at the end of its key\'s queue',
      ok: { '202': { description: 'The delivery queued (replayed_as_new: a new delivery, whose replay_of is the one asked for).', schema: ref('ReplayedDelivery') } },
    },
    { method: 'post', path: '/deliveries/{id}/skip', id: 'skipBlockingDelivery', tag: 'Deliveries', summary: 'Let the ordering key a failed delivery blocks go on without it (it stays failed)', role: 'admin', ok: { '200': delivery }, errors: ['404', '409'] },

    { method: 'get', path: '/hooks/sample', id: 'sampleHookData', tag: 'REST hooks', summary: 'Sample payloads for a trigger node', role: 'admin', query: [q('event', { type: 'string' }, 'An event type or wildcard.', true), q('connector', { type: 'string', enum: ['zapier', 'n8n'] }, 'Shape as this connector delivers.'), q('id', { type: 'string' }, "Shape through this hook's mapping.")], ok: { '200': { description: 'Up to three samples.', schema: { type: 'array', items: {} } } }, errors: ['404', '422'] },
    { method: 'post', path: '/hooks', id: 'subscribeHook', tag: 'REST hooks', summary: 'Subscribe a trigger node (Zapier, n8n)', role: 'admin', body: hookSubscribeSchema, ok: { '201': { description: 'The hook, with its signing secret this once.', schema: ref('Hook') } }, errors: ['422'] },
    { method: 'get', path: '/hooks/{id}', id: 'getHook', tag: 'REST hooks', summary: 'Look a hook up', role: 'admin', ok: { '200': hook }, errors: ['404'] },
    { method: 'delete', path: '/hooks/{id}', id: 'unsubscribeHook', tag: 'REST hooks', summary: 'Unsubscribe (idempotent)', role: 'admin', ok: { '200': { description: 'Gone.', schema: { type: 'object', properties: { id: { type: 'string' }, deleted: { const: true } } } } }, errors: ['409'] },

    { method: 'get', path: '/connectors', id: 'listConnectors', tag: 'Connectors', summary: 'Connectors and their option schemas', role: 'read', ok: { '200': { description: 'Every connector.', schema: listOf(ref('Connector')) } } },
    { method: 'get', path: '/mappings', id: 'listMappings', tag: 'Mappings', summary: 'Mapping templates, their examples and load errors', role: 'read', ok: { '200': { description: 'Every template.', schema: listOf(ref('Mapping')) } } },
    { method: 'post', path: '/mappings/preview', id: 'previewMapping', tag: 'Mappings', summary: 'Render a template (and a filter) on an event', role: 'read', body: mappingPreviewSchema, ok: { '200': { description: 'The output.', schema: { type: 'object', properties: { output: {}, mapping: nullable('string'), filter: { type: 'object', properties: { source: { type: 'string' }, matches: { type: 'boolean' } } } } } } }, errors: ['404', '422'] },
  ];
}

const TAGS: Record<string, string> = {
  Meta: 'About the API itself.',
  'API keys': 'Keys carry one role: ingest, read or admin.',
  Events: 'Posting events and the event catalog.',
  Subscriptions: 'Where events go: URL or connector, filter, mapping, retries.',
  Deliveries: 'The delivery log and replay.',
  'REST hooks': 'Subscribe/unsubscribe as Zapier and n8n trigger nodes call it.',
  Connectors: 'Slack, PagerDuty, Zapier, n8n, HubSpot and plain webhooks.',
  Mappings: 'JSONata templates that reshape events per destination.',
};

function responseSchemas(): Record<string, Json> {
  const readOnlySub = {
    id: { type: 'string' },
    ...Object.fromEntries(Object.entries(subscriptionFields).filter(([k]) => k !== 'auth')),
    auth: { anyOf: [{ type: 'null' }, { type: 'object', description: 'Secrets masked as ********.' }] },
    url: { type: 'string' },
    disabled_reason: nullable('string'),
    source: { type: 'string', enum: ['api', 'hook'] },
    created_at: dateTime,
    updated_at: dateTime,
    last_delivery_at: nullable('string', { format: 'date-time' }),
    last_delivery_status: nullable('string'),
    last_success_at: nullable('string', { format: 'date-time' }),
    signing_secret_prefix: { type: 'string' },
    previous_secret_expires_at: nullable('string', { format: 'date-time' }),
    stats_24h: { type: 'object', properties: { delivered: { type: 'integer' }, failed: { type: 'integer' }, pending: { type: 'integer' } } },
  };
  const delivery = {
    id: { type: 'string' },
    event_id: { type: 'string' },
    subscription_id: { type: 'string' },
    event: { type: 'string' },
    webhook_id: { type: 'string' },
    status: replayRequestSchema.properties.status,
    attempt_count: { type: 'integer' },
    chain: { type: 'integer' },
    next_attempt_at: nullable('string', { format: 'date-time' }),
    last_attempt_at: nullable('string', { format: 'date-time' }),
    last_status_code: nullable('integer'),
    last_error: nullable('string'),
    last_latency_ms: nullable('number'),
    ordering_key: nullable('string', { description: "The value of the subscription's ordering key for this event; null: unordered." }),
    waiting_for: {
      anyOf: [
        { type: 'null' },
        {
          type: 'object',
          description: 'A pending ordered delivery that cannot start yet: the delivery of its key ahead of it.',
          properties: { delivery_id: { type: 'string' }, status: { type: 'string' }, reason: { type: 'string' } },
        },
      ],
    },
    blocks_key: { type: 'boolean', description: 'A failed delivery that stops its key (on_failure: block) until it is replayed or skipped.' },
    replay_of: nullable('string', { description: 'Queued by replaying this earlier delivery of the same ordered key.' }),
    created_at: dateTime,
    updated_at: dateTime,
  };
  const attempt = {
    type: 'object',
    properties: {
      id: { type: 'string' },
      chain: { type: 'integer' },
      number: { type: 'integer' },
      started_at: dateTime,
      outcome: { type: 'string' },
      latency_ms: { type: 'number' },
      request: { type: 'object', description: 'Method, URL, headers (secrets masked) and body as sent.' },
      response: { anyOf: [{ type: 'null' }, { type: 'object', description: 'Status, headers, body excerpt.' }] },
      error: nullable('string'),
      steps: {},
    },
  };
  const errorCodes = [...new Set(Object.values(ERRORS).flatMap((e) => e.codes)), 'internal_error'];
  return {
    Error: {
      type: 'object',
      required: ['error'],
      properties: {
        error: {
          type: 'object',
          required: ['code', 'message', 'details'],
          properties: {
            code: { type: 'string', description: 'Machine-readable, snake_case.', examples: errorCodes },
            message: { type: 'string' },
            details: {
              type: 'array',
              items: { type: 'object', required: ['message'], properties: { path: { type: 'string', description: 'JSON path ($.data.call.id) or field.' }, message: { type: 'string' }, line: { type: 'integer' }, column: { type: 'integer' }, token: { type: 'string' } } },
            },
          },
        },
      },
    },
    SubscriptionCreate: subscriptionCreateSchema,
    SubscriptionPatch: subscriptionPatchSchema,
    Subscription: { type: 'object', properties: readOnlySub },
    SubscriptionWithSecret: {
      allOf: [ref('Subscription'), { type: 'object', required: ['signing_secret'], properties: { signing_secret: { type: 'string', description: 'whsec_…, shown only this once.' }, _warning: { type: 'string' } } }],
    },
    ApiKey: { type: 'object', properties: { id: { type: 'string' }, name: nullable('string'), role: apiKeyCreateSchema.properties.role, prefix: { type: 'string' }, created_at: dateTime, revoked_at: nullable('string', { format: 'date-time' }), ...apiKeyQuotaFields } },
    ErasedEvent: {
      type: 'object',
      properties: {
        id: { type: 'string' }, erased: { const: true }, deliveries: { type: 'integer', description: 'Deliveries removed.' },
        cancelled: { type: 'integer', description: 'Of those, pending ones that were never finished.' }, attempts: { type: 'integer', description: 'Attempts removed.' },
      },
    },
    ApiKeyCreated: { allOf: [ref('ApiKey'), { type: 'object', required: ['key'], properties: { key: { type: 'string', description: 'Shown only this once.' }, _warning: { type: 'string' } } }] },
    AcceptedEvent: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        event: { type: 'string' },
        deliveries: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, subscription_id: { type: 'string' } } } },
        duplicate: { type: 'boolean' },
      },
    },
    EventType: { type: 'object', properties: { name: { type: 'string' }, description: { type: 'string' }, schema: { type: 'object' }, example: eventEnvelopeSchema } },
    Delivery: { type: 'object', properties: delivery },
    ReplayedDelivery: {
      type: 'object',
      properties: { ...delivery, replayed_as_new_delivery: { type: 'boolean' }, note: { type: 'string', description: 'With replayed_as_new_delivery: which delivery was queued, and why.' } },
    },
    BlockedKey: {
      type: 'object',
      properties: {
        ordering_key: { type: 'string' }, blocked_since: dateTime, waiting: { type: 'integer', description: 'Deliveries queued behind it.' },
        delivery: { ...ref('Delivery'), description: 'The failed delivery blocking the key: POST /deliveries/{id}/replay or /deliveries/{id}/skip.' },
      },
    },
    DeliveryDetail: { type: 'object', properties: { ...delivery, payload: { anyOf: [{ type: 'null' }, { type: 'object' }] }, attempts: { type: 'array', items: attempt } } },
    TestSend: { type: 'object', properties: { event_id: { type: 'string' }, event: { type: 'string' }, delivery_id: nullable('string'), status: nullable('string'), attempt: { anyOf: [{ type: 'null' }, attempt] } } },
    Hook: {
      type: 'object',
      properties: {
        id: { type: 'string' }, target_url: { type: 'string' }, event: { type: 'string' }, events: { type: 'array', items: { type: 'string' } }, connector: { type: 'string' },
        filter: nullable('string'), mapping: nullable('string'), description: nullable('string'), enabled: { type: 'boolean' }, disabled_reason: nullable('string'),
        created_at: dateTime, signing_secret_prefix: { type: 'string' }, signing_secret: { type: 'string', description: 'Only in the answer to subscribe.' },
      },
    },
    Connector: {
      type: 'object',
      properties: {
        name: { type: 'string' }, title: { type: 'string' }, description: { type: 'string' }, url: { type: 'string' }, options_schema: { type: 'object' },
        secret_options: { type: 'array', items: { type: 'string' } }, default_mapping: nullable('string'), defaults: { type: 'object' },
      },
    },
    Mapping: {
      type: 'object',
      properties: { name: { type: 'string' }, source: { type: 'string' }, examples: { type: 'array', items: { type: 'object' } }, error: { type: 'object' }, active: { type: 'boolean' }, loaded_at: nullable('string', { format: 'date-time' }) },
    },
  };
}

const errorResponse = (status: string) => ({ description: `${ERRORS[status].description} Codes: ${ERRORS[status].codes.join(', ')}.`, content: { 'application/json': { schema: ref('Error') } } });

function toOperation(op: Operation, opts: OpenApiOptions): Json {
  const statuses = new Set(op.errors ?? []);
  if (op.role !== 'none') ['401', '403'].forEach((s) => statuses.add(s));
  // Every body sent to /api/v1 is parsed before routing, so any route may answer a broken one.
  ['400', '413', '415'].forEach((s) => statuses.add(s));
  if (op.path.includes('{id}')) statuses.add('404');
  const responses: Json = {};
  for (const [status, r] of Object.entries(op.ok)) responses[status] = { description: r.description, content: { 'application/json': { schema: r.schema } } };
  for (const status of [...statuses].sort()) responses[status] = errorResponse(status);
  responses.default = { description: 'Unexpected error (internal_error); it is logged.', content: { 'application/json': { schema: ref('Error') } } };
  const roleText = op.role === 'none' ? 'No authentication.' : `Needs a${op.role === 'admin' ? 'n' : ''} \`${op.role}\`${op.role === 'admin' ? '' : ' or `admin`'} key.`;
  const operation: Json = {
    operationId: op.id,
    tags: [op.tag],
    summary: op.summary,
    description: roleText + (op.body ? ` Bodies over ${opts.maxBodyBytes} bytes are refused (413).` : ''),
    security: op.role === 'none' ? [] : [{ apiKey: [] }],
    responses,
  };
  const params: Json[] = [];
  if (op.path.includes('{id}')) params.push(idParam(op.tag === 'Deliveries' && op.path.startsWith('/deliveries') ? 'delivery' : op.tag === 'REST hooks' ? 'hook' : op.tag === 'API keys' ? 'API key' : op.tag === 'Events' ? 'event' : 'subscription'));
  if (op.id === 'postEvent') params.push({ name: 'Idempotency-Key', in: 'header', required: false, description: 'The same key again returns the first answer.', schema: { type: 'string', minLength: 1, maxLength: 255 } });
  params.push(...(op.query ?? []));
  if (params.length) operation.parameters = params;
  if (op.body) operation.requestBody = { required: !OPTIONAL_BODY.has(op.id), content: { 'application/json': { schema: op.body } } };
  return operation;
}

export const API_PREFIX = '/api/v1';
/** Operations whose body may be left out entirely. */
const OPTIONAL_BODY = new Set(['testSubscription', 'replaySubscriptionDeliveries']);

export function buildOpenApiDocument(opts: OpenApiOptions): Json {
  return asOpenApiSchemas(buildDocument(opts)) as Json;
}

/**
 * The validators' schemas carry `errorMessage` (the ajv-errors convention, one sentence for a
 * node's errors); OpenAPI admits only `x-` extensions there, so it is renamed on the way out.
 */
function asOpenApiSchemas(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(asOpenApiSchemas);
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key === 'errorMessage' ? 'x-error-message' : key, asOpenApiSchemas(item)]));
}

function buildDocument(opts: OpenApiOptions): Json {
  const paths: Record<string, Json> = {};
  for (const op of operations(opts)) {
    const path = API_PREFIX + op.path;
    paths[path] = { ...(paths[path] ?? {}), [op.method]: toOperation(op, opts) };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Sluice API',
      version: opts.version,
      summary: 'Self-hosted webhook gateway: durable ingest, JSONata mapping, signed at-least-once delivery.',
      description: 'JSON over HTTP. Every error has one shape: {"error": {"code", "message", "details"}}; details say where (a JSON path, or a template line and column).',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/', description: 'This gateway' }],
    tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
    security: [{ apiKey: [] }],
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <api key>. Roles: ingest (post events), read (list and inspect), admin (everything). Missing or unknown key: 401; wrong role: 403.' },
      },
      schemas: responseSchemas(),
    },
  };
}
