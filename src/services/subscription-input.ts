import { Ajv, type ErrorObject } from 'ajv';
import type { ErrorDetail } from '../errors.ts';
import { jsonPathOf, pointerSegments } from '../core/json-path.ts';
import { authSchema, subscriptionCreateSchema, subscriptionPatchSchema } from '../core/api-schemas.ts';

export { RATE_LIMIT_RANGE } from '../core/api-schemas.ts';

/*
 * Subscription create/patch bodies are checked against their schemas in core/api-schemas.ts.
 * Semantic checks (known events, URL policy, templates, connector options) follow in the
 * subscription service; this catches unknown fields and wrong types with their JSON paths.
 */
const ajv = new Ajv({ allErrors: true, strict: false });
const validateCreate = ajv.compile(subscriptionCreateSchema);
const validatePatch = ajv.compile(subscriptionPatchSchema);
/** One validator per auth type, so an auth object's errors come from its own type only. */
const AUTH_VALIDATORS = new Map(authSchema.oneOf.map((branch) => [branch.properties.type.const, ajv.compile(branch)]));

/**
 * ajv instancePath `/events/0` -> `$.events[0]`; `additionalProperties` names the field.
 * Given the schema, a schema node with a string `errorMessage` (the ajv-errors convention)
 * speaks once for every error inside it: connector option schemas use it to explain
 * combinations ajv can only call "must NOT be valid" ("webhook_url, or bot_token and channel").
 */
export function ajvErrorsToDetails(errors: ErrorObject[] | null | undefined, root = '$', schema?: object): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const seen = new Set<string>();
  const explained = new Map<string, { instancePath: string; message: string }>();
  // A nullable object's `{type: "null"}` branch says "must be null" beside what the object branch
  // says about the same value: only the object's problems help.
  const nullBranch = (err: ErrorObject) => err.keyword === 'type' && (err.params as { type?: unknown }).type === 'null'
    && (errors ?? []).some((other) => other !== err && other.keyword !== 'anyOf' && (other.instancePath === err.instancePath || other.instancePath.startsWith(`${err.instancePath}/`)));
  for (const err of errors ?? []) {
    if (nullBranch(err)) continue;
    const explanation = schema ? explanationFor(schema, err.schemaPath) : undefined;
    if (explanation) {
      // The shortest instance path in the node is where the node applies.
      const known = explained.get(explanation.at);
      if (!known || err.instancePath.length < known.instancePath.length) explained.set(explanation.at, { instancePath: err.instancePath, message: explanation.message });
      continue;
    }
    // oneOf/anyOf failures repeat what their branches said; keep the most useful line.
    if (err.keyword === 'oneOf' || err.keyword === 'anyOf') continue;
    let path = jsonPathOf(pointerSegments(err.instancePath), { root });
    let message = err.message ?? 'is invalid';
    if (err.keyword === 'additionalProperties') {
      path += `.${(err.params as { additionalProperty: string }).additionalProperty}`;
      message = 'is not a known field';
    } else if (err.keyword === 'required') {
      path += `.${(err.params as { missingProperty: string }).missingProperty}`;
      message = 'is required';
    } else if (err.keyword === 'const') {
      message = `must be ${JSON.stringify((err.params as { allowedValue: unknown }).allowedValue)}`;
    } else {
      message = inWords(err) ?? message;
    }
    const key = `${path}|${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    details.push({ path, message });
  }
  for (const { instancePath, message } of explained.values()) details.push({ path: jsonPathOf(pointerSegments(instancePath), { root }), message });
  return details;
}

/** ajv's validator phrasing ("must NOT have fewer than 1 characters") said as a person would. */
function inWords(err: ErrorObject): string | undefined {
  const { limit, allowedValues, format } = err.params as { limit?: number; allowedValues?: unknown[]; format?: string };
  const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  switch (err.keyword) {
    case 'minLength':
      return limit === 1 ? 'must not be empty' : `must be at least ${plural(limit!, 'character', 'characters')} long`;
    case 'maxLength':
      return `must be at most ${plural(limit!, 'character', 'characters')} long`;
    case 'minItems':
      return limit === 1 ? 'must list at least one item' : `must list at least ${limit} items`;
    case 'maxItems':
      return `must list at most ${plural(limit!, 'item', 'items')}`;
    case 'minProperties':
      return limit === 1 ? 'must hold at least one field' : `must hold at least ${limit} fields`;
    case 'maxProperties':
      return `may hold at most ${plural(limit!, 'entry', 'entries')}`;
    case 'minimum':
      return `must be ${limit} or more`;
    case 'maximum':
      return `must be ${limit} or less`;
    case 'exclusiveMinimum':
      return `must be more than ${limit}`;
    case 'exclusiveMaximum':
      return `must be less than ${limit}`;
    case 'enum':
      return `must be one of ${(allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'format':
      return `must be a valid ${format}`;
    case 'pattern':
      return 'is not in the expected form';
    default:
      return undefined;
  }
}


/** The outermost node on an error's schema path that carries an `errorMessage`. */
function explanationFor(schema: object, schemaPath: string): { at: string; message: string } | undefined {
  let node: unknown = schema;
  let at = '#';
  const segments = schemaPath.replace(/^#\/?/, '').split('/').filter(Boolean);
  for (let i = 0; ; i++) {
    const message = node && typeof node === 'object' ? (node as { errorMessage?: unknown }).errorMessage : undefined;
    if (typeof message === 'string') return { at, message };
    if (i === segments.length || !node || typeof node !== 'object') return undefined;
    const segment = segments[i].replace(/~1/g, '/').replace(/~0/g, '~');
    node = (node as Record<string, unknown>)[segment];
    at += `/${segments[i]}`;
  }
}

export function checkSubscriptionShape(body: unknown, mode: 'create' | 'patch'): ErrorDetail[] {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return [{ path: '$', message: 'must be a JSON object' }];
  const [validate, schema] = mode === 'create' ? [validateCreate, subscriptionCreateSchema] : [validatePatch, subscriptionPatchSchema];
  if (validate(body)) return [];
  const details = ajvErrorsToDetails(validate.errors, '$', schema);
  if (!('auth' in body)) return details;
  // ajv reports every oneOf branch (and the null alternative); say only what applies to this auth.
  const auth = (body as { auth?: unknown }).auth;
  const others = details.filter((d) => d.path !== '$.auth' && !d.path?.startsWith('$.auth.'));
  if (auth === null) return others;
  if (typeof auth !== 'object' || Array.isArray(auth)) return [...others, { path: '$.auth', message: 'must be null or an object {type: "basic" | "bearer" | "header", ...}' }];
  const type = (auth as { type?: unknown }).type;
  const validateAuth = typeof type === 'string' ? AUTH_VALIDATORS.get(type) : undefined;
  if (!validateAuth) return [...others, { path: '$.auth.type', message: 'must be one of basic, bearer, header' }];
  return validateAuth(auth) ? others : [...others, ...ajvErrorsToDetails(validateAuth.errors, '$.auth', validateAuth.schema as object)];
}

/** Names we set ourselves or that would corrupt the request; refused as custom headers. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect', 'proxy-authorization', 'content-type']);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * RFC 9110 field-value: visible ASCII, spaces and tabs inside, no leading or trailing space.
 * (obs-text bytes 0x80-0xFF are obsolete and undici refuses anything beyond them, such as an
 * emoji, only at send time: every delivery would fail and retry for a day.)
 */
const FIELD_VALUE = /^(?:[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?$/;

/** What is wrong with a header value, or undefined when HTTP allows it. */
export function headerValueProblem(value: string): string | undefined {
  if (FIELD_VALUE.test(value)) return undefined;
  if (/[\r\n\0]/.test(value)) return 'must not contain CR, LF or NUL';
  if (/^[\t ]|[\t ]$/.test(value)) return 'must not start or end with a space or tab';
  const bad = [...value].find((c) => !/[\t\x20-\x7e]/.test(c))!;
  return `may hold only visible ASCII characters, spaces and tabs (RFC 9110 field-value); ${JSON.stringify(bad)} is not allowed`;
}

/** Header names whose values are credentials: sealed at rest and masked like `auth`. */
export function isCredentialHeader(name: string): boolean {
  return /^(authorization|cookie|x-api-key|api-key|apikey|x-auth|x-access-key)$|-(token|secret|password|api-key|auth-key|access-key)$/i.test(name);
}

export function checkHeaders(headers: Record<string, string>, path = '$.headers'): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    const at = `${path}.${name}`;
    if (!TOKEN.test(name)) details.push({ path: at, message: 'is not a valid header name' });
    else if (RESERVED_HEADERS.has(lower)) details.push({ path: at, message: `${name} is set by Sluice and cannot be overridden` });
    else if (lower.startsWith('webhook-') || lower.startsWith('x-webhook-')) details.push({ path: at, message: `${name} would forge Sluice's signature headers` });
    const problem = headerValueProblem(value);
    if (problem) details.push({ path: at, message: problem });
  }
  return details;
}
