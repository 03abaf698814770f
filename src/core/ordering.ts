/**
 * Ordered delivery, the pure part: what an ordering key value is, and the policy a subscription
 * states. No I/O: storage enforces the order (see storage/ordering-sql.ts), ingest evaluates the
 * key next to the filter (services/ingest.ts), the evaluators run it (services/evaluator-process.ts).
 */
import { createHash } from 'node:crypto';
import { stringify as stableStringify } from 'safe-stable-stringify';
import { TemplateError } from '../errors.ts';
import type { OrderingPolicy } from '../storage/types.ts';
import {
  compileFilter, compileOrderingKey, evaluateFilter, evaluateOrderingKey,
  type CompileOptions, type CompiledFilter, type CompiledOrderingKey, type EvaluationLimits, type TemplateBindings,
} from './mapping.ts';

/** `{"key": "*"}`: one order across the whole subscription (no expression is evaluated). */
export const ORDER_ALL = '*';

/** Longer key values are stored as a hash of the value, which orders exactly the same. */
export const MAX_ORDERING_KEY_LENGTH = 255;

/**
 * An evaluated key as stored on the delivery: strings as they are, numbers and booleans as JSON,
 * arrays and objects as stable JSON; nothing (undefined, null, "") means unordered.
 */
export function orderingKeyValue(value: unknown): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value === 'function') return null;
  const text = typeof value === 'string' ? value : stableStringify(value);
  if (text === undefined || text === '') return null;
  return text.length <= MAX_ORDERING_KEY_LENGTH ? text : `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/** The policy as stored: `on_failure` defaults to `continue`. */
export function normalizeOrdering(input: { key: string; on_failure?: string } | null | undefined): OrderingPolicy | null {
  if (!input) return null;
  return { key: input.key, on_failure: input.on_failure === 'block' ? 'block' : 'continue' };
}

/** The JSONata expression to evaluate at ingest, if any (`*` needs none). */
export function orderingExpression(policy: OrderingPolicy | null | undefined): string | null {
  return policy && policy.key !== ORDER_ALL ? policy.key : null;
}

/**
 * Words JSONata may read as operators or literals (`true`, `false`, `null` always are; `and`, `or`,
 * `in`, `function` depend on where they stand): a path holding one is left to an evaluator.
 */
const JSONATA_WORDS = new Set(['and', 'or', 'in', 'true', 'false', 'null', 'function']);
const FIELD = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The fields of a key that is a plain path (`data.conversation_id`), which ingest reads itself
 * instead of asking an evaluator; undefined for any other expression.
 */
export function plainKeyPath(expression: string): string[] | undefined {
  const fields = expression.trim().split('.');
  return fields.every((f) => FIELD.test(f) && !JSONATA_WORDS.has(f)) ? fields : undefined;
}

/**
 * A plain path's key for one envelope, as JSONata would give it; undefined when an array is met
 * on the way (JSONata maps a path over arrays and unwraps single values: the evaluators decide).
 */
export function readPlainKey(envelope: unknown, fields: string[]): { key: string | null } | undefined {
  let node: unknown = envelope;
  for (const field of fields) {
    if (Array.isArray(node)) return undefined;
    node = node !== null && typeof node === 'object' && Object.hasOwn(node, field) ? (node as Record<string, unknown>)[field] : undefined;
  }
  return Array.isArray(node) ? undefined : { key: orderingKeyValue(node) };
}

/**
 * A subscription's filter and ordering key, evaluated together in one round trip to the
 * evaluators (the `route` kind): the source the pool is sent.
 */
export function routeSource(filter: string | null, key: string | null): string {
  return JSON.stringify({ filter, key });
}

/** Whether the event matches, and its ordering key (null: unordered; `key_error` says why when the key failed). */
export interface RouteResult {
  matches: boolean;
  key: string | null;
  key_error?: string;
}

export interface CompiledRoute {
  filter: CompiledFilter | null;
  key: CompiledOrderingKey | null;
}

export function compileRoute(source: string, opts: CompileOptions = {}): CompiledRoute {
  const { filter, key } = JSON.parse(source) as { filter: string | null; key: string | null };
  return { filter: filter ? compileFilter(filter, opts) : null, key: key ? compileOrderingKey(key, opts) : null };
}

/**
 * The filter first (a failure throws, as a filter's always did: no match); the key only for a
 * match. A key that fails leaves the event unordered and says why: the event is still delivered.
 */
export async function evaluateRoute(route: CompiledRoute, event: unknown, bindings: TemplateBindings, limits: Partial<EvaluationLimits>): Promise<RouteResult> {
  if (route.filter && !(await evaluateFilter(route.filter, event, bindings, limits))) return { matches: false, key: null };
  if (!route.key) return { matches: true, key: null };
  try {
    return { matches: true, key: orderingKeyValue(await evaluateOrderingKey(route.key, event, bindings, limits)) };
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    return { matches: true, key: null, key_error: err.message };
  }
}
