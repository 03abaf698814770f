import { Ajv, type ErrorObject } from 'ajv';
import type { ErrorDetail } from '../errors.ts';
import { authSchema, subscriptionCreateSchema, subscriptionPatchSchema } from '../core/api-schemas.ts';

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
  for (const err of errors ?? []) {
    const explanation = schema ? explanationFor(schema, err.schemaPath) : undefined;
    if (explanation) {
      // The shortest instance path in the node is where the node applies.
      const known = explained.get(explanation.at);
      if (!known || err.instancePath.length < known.instancePath.length) explained.set(explanation.at, { instancePath: err.instancePath, message: explanation.message });
      continue;
    }
    // oneOf/anyOf failures repeat what their branches said; keep the most useful line.
    if (err.keyword === 'oneOf' || err.keyword === 'anyOf') continue;
    let path = root + jsonPathOf(err.instancePath);
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
  for (const { instancePath, message } of explained.values()) details.push({ path: root + jsonPathOf(instancePath), message });
  return details;
}

function jsonPathOf(instancePath: string): string {
  return instancePath.split('/').slice(1).map((seg) => (/^\d+$/.test(seg) ? `[${seg}]` : `.${seg.replace(/~1/g, '/').replace(/~0/g, '~')}`)).join('');
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
  const validate = mode === 'create' ? validateCreate : validatePatch;
  if (validate(body)) return [];
  const details = ajvErrorsToDetails(validate.errors);
  if (!('auth' in body)) return details;
  // ajv reports every oneOf branch (and the null alternative); say only what applies to this auth.
  const auth = (body as { auth?: unknown }).auth;
  const others = details.filter((d) => d.path !== '$.auth' && !d.path?.startsWith('$.auth.'));
  if (auth === null) return others;
  if (typeof auth !== 'object' || Array.isArray(auth)) return [...others, { path: '$.auth', message: 'must be null or an object {type: "basic" | "bearer" | "header", ...}' }];
  const type = (auth as { type?: unknown }).type;
  const validateAuth = typeof type === 'string' ? AUTH_VALIDATORS.get(type) : undefined;
  if (!validateAuth) return [...others, { path: '$.auth.type', message: 'must be one of basic, bearer, header' }];
  return validateAuth(auth) ? others : [...others, ...ajvErrorsToDetails(validateAuth.errors, '$.auth')];
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
