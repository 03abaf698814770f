import { Ajv, type ErrorObject } from 'ajv';
import type { ErrorDetail } from '../errors.ts';

/**
 * The shape of subscription create/patch bodies. Semantic checks (known events, URL policy,
 * templates, connector options) follow in the subscription service; this catches unknown
 * fields and wrong types with their JSON paths.
 */
const authSchema = {
  type: 'object',
  required: ['type'],
  oneOf: [
    { type: 'object', additionalProperties: false, required: ['type', 'username', 'password'], properties: { type: { const: 'basic' }, username: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[^:]*$' }, password: { type: 'string', maxLength: 1024 } } },
    { type: 'object', additionalProperties: false, required: ['type', 'token'], properties: { type: { const: 'bearer' }, token: { type: 'string', minLength: 1, maxLength: 4096 } } },
    { type: 'object', additionalProperties: false, required: ['type', 'name', 'value'], properties: { type: { const: 'header' }, name: { type: 'string', minLength: 1, maxLength: 256 }, value: { type: 'string', minLength: 1, maxLength: 4096 } } },
  ],
};

const fields = {
  url: { type: 'string', minLength: 1, maxLength: 2048 },
  events: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 200 } },
  description: { type: ['string', 'null'], maxLength: 1000 },
  enabled: { type: 'boolean' },
  headers: { type: 'object', maxProperties: 50, additionalProperties: { type: 'string', maxLength: 4096 } },
  auth: { anyOf: [{ type: 'null' }, authSchema] },
  filter: { type: ['string', 'null'], maxLength: 10_000 },
  mapping: { type: ['string', 'null'], maxLength: 100_000 },
  connector: { type: 'string', minLength: 1, maxLength: 50 },
  connector_options: { type: 'object' },
  retry: {
    anyOf: [
      { type: 'null' },
      { type: 'object', additionalProperties: false, properties: { schedule: { type: 'array' }, max_attempts: { type: 'integer' } } },
    ],
  },
  timeout: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 300 },
  rate_limit: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 10_000 },
};

const ajv = new Ajv({ allErrors: true, strict: false });
const validateCreate = ajv.compile({ type: 'object', additionalProperties: false, required: ['events'], properties: fields });
const validatePatch = ajv.compile({ type: 'object', additionalProperties: false, minProperties: 1, properties: fields });

/** ajv instancePath `/events/0` -> `$.events[0]`; `additionalProperties` names the field. */
export function ajvErrorsToDetails(errors: ErrorObject[] | null | undefined, root = '$'): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const seen = new Set<string>();
  for (const err of errors ?? []) {
    // oneOf/anyOf failures repeat what their branches said; keep the most useful line.
    if (err.keyword === 'oneOf' || err.keyword === 'anyOf') continue;
    let path = root + err.instancePath.split('/').slice(1).map((seg) => (/^\d+$/.test(seg) ? `[${seg}]` : `.${seg.replace(/~1/g, '/').replace(/~0/g, '~')}`)).join('');
    let message = err.message ?? 'is invalid';
    if (err.keyword === 'additionalProperties') {
      path += `.${(err.params as { additionalProperty: string }).additionalProperty}`;
      message = 'is not a known field';
    } else if (err.keyword === 'required') {
      path += `.${(err.params as { missingProperty: string }).missingProperty}`;
      message = 'is required';
    } else if (err.keyword === 'const') {
      message = `must be ${JSON.stringify((err.params as { allowedValue: unknown }).allowedValue)}`;
    }
    const key = `${path}|${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    details.push({ path, message });
  }
  return details;
}

export function checkSubscriptionShape(body: unknown, mode: 'create' | 'patch'): ErrorDetail[] {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return [{ path: '$', message: 'must be a JSON object' }];
  const validate = mode === 'create' ? validateCreate : validatePatch;
  if (validate(body)) return [];
  const details = ajvErrorsToDetails(validate.errors);
  // An auth object with a known type gets that branch's errors only, not all three.
  const auth = (body as { auth?: { type?: unknown } }).auth;
  if (auth && typeof auth === 'object' && !['basic', 'bearer', 'header'].includes(String(auth.type))) {
    return [...details.filter((d) => !d.path?.startsWith('$.auth')), { path: '$.auth.type', message: 'must be one of basic, bearer, header' }];
  }
  return details.filter((d) => !(d.path === '$.auth.type' && auth && typeof auth === 'object'));
}

/** Names we set ourselves or that would corrupt the request; refused as custom headers. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect', 'proxy-authorization', 'content-type']);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function checkHeaders(headers: Record<string, string>, path = '$.headers'): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    const at = `${path}.${name}`;
    if (!TOKEN.test(name)) details.push({ path: at, message: 'is not a valid header name' });
    else if (RESERVED_HEADERS.has(lower)) details.push({ path: at, message: `${name} is set by Sluice and cannot be overridden` });
    else if (lower.startsWith('webhook-') || lower.startsWith('x-webhook-')) details.push({ path: at, message: `${name} would forge Sluice's signature headers` });
    if (/[\r\n\0]/.test(value)) details.push({ path: at, message: 'must not contain CR, LF or NUL' });
  }
  return details;
}
