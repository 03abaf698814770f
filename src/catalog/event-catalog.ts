import fs from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { jsonPathOf, pointerSegments } from '../core/json-path.ts';
import addFormatsModule from 'ajv-formats';
import type { ErrorDetail } from '../errors.ts';
import { eventMatches, wildcardPrefix } from '../core/event-match.ts';

/** One event type as GET /api/v1/event-types shows it. */
export interface EventTypeInfo {
  name: string;
  description: string;
  /** JSON Schema (draft-07) for the event's `data` object. */
  schema: Record<string, unknown>;
  /** A full envelope `{event, id, timestamp, data}` that passes the schema. */
  example: { event: string; id: string; timestamp: string; data: unknown };
}

interface CatalogEntry {
  info: EventTypeInfo;
  validate: ValidateFunction;
}

// ajv-formats is CommonJS: under NodeNext its default import is the module object.
const addFormats = addFormatsModule.default;

const NAME_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$/;

/**
 * Reads every `*.json` under `dir` (one event type per file, named `<event-name>.json`) and
 * compiles each schema once. Any broken file stops the load with an Error naming it: a gateway
 * that half-loads its catalog would accept events it cannot describe.
 */
export function loadEventCatalog(dir: string): EventCatalog {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`Event catalog directory ${dir} does not exist.`);
  const files = (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.json'))
    .sort();
  // Unknown keywords are refused (a typo like "requried" would silently accept anything);
  // type-coherence checks are left off so schemas can stay loose where platforms vary.
  const ajv = new Ajv({ allErrors: true, strictSchema: true, strictTypes: false, strictTuples: false, strictRequired: false });
  addFormats(ajv);
  const entries = new Map<string, CatalogEntry>();
  for (const relative of files) {
    const file = path.join(dir, relative);
    const entry = loadEntry(ajv, file);
    const existing = entries.get(entry.info.name);
    if (existing) throw new Error(`Event catalog file ${file}: event type "${entry.info.name}" is defined twice.`);
    entries.set(entry.info.name, entry);
  }
  return new EventCatalog(entries);
}

function loadEntry(ajv: Ajv, file: string): CatalogEntry {
  const fail = (why: string): never => {
    throw new Error(`Event catalog file ${file}: ${why}`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    fail(`not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(raw)) return fail('must be a JSON object {name, description, schema, example}');
  const { name, description, schema, example } = raw;
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) fail('"name" must be a dotted lower-case event name, e.g. "call.ended"');
  const expectedFile = `${name as string}.json`;
  if (path.basename(file) !== expectedFile) fail(`the file must be named ${expectedFile} after the event it defines`);
  if (typeof description !== 'string' || !description.trim()) fail('"description" must be a non-empty string');
  if (!isObject(schema)) return fail('"schema" must be a JSON Schema object');
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(schema);
  } catch (err) {
    return fail(`"schema" does not compile: ${(err as Error).message}`);
  }
  if (!isObject(example)) return fail('"example" must be an event envelope {event, id, timestamp, data}');
  if (example.event !== name) fail(`"example.event" must be "${name as string}"`);
  if (typeof example.id !== 'string' || !example.id) fail('"example.id" must be a non-empty string');
  if (typeof example.timestamp !== 'string' || Number.isNaN(Date.parse(example.timestamp))) fail('"example.timestamp" must be an ISO-8601 date-time');
  // The example is what the test endpoint sends and what docs show: it must pass its own schema.
  const problems = check(validate, example.data);
  if (problems.length) fail(`"example.data" fails its own schema: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`);
  const info = deepFreeze({ name, description, schema, example }) as EventTypeInfo;
  return { info, validate };
}

/** The loaded event types: lookup, JSON Schema validation of `data`, and pattern matching. */
export class EventCatalog {
  readonly #entries: Map<string, CatalogEntry>;
  readonly #names: string[];

  constructor(entries: Map<string, CatalogEntry>) {
    this.#entries = entries;
    this.#names = [...entries.keys()].sort();
  }

  /** Every event type, sorted by name. */
  list(): EventTypeInfo[] {
    return this.#names.map((name) => this.#entries.get(name)!.info);
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  get(name: string): EventTypeInfo | undefined {
    return this.#entries.get(name)?.info;
  }

  /**
   * Checks an event's `data` against its type's schema. Empty means valid; each problem has a
   * JSON path rooted at `$.data`. An unknown type yields one problem at `$.event` rather than a
   * throw, so a caller that forgot `has()` still refuses the event.
   */
  validate(name: string, data: unknown): ErrorDetail[] {
    const entry = this.#entries.get(name);
    if (!entry) return [{ path: '$.event', message: `"${name}" is not an event type in the catalog`, keyword: 'event' }];
    return check(entry.validate, data);
  }

  /** The catalog names a subscription pattern (`call.ended`, `call.*`, `*`) selects, sorted. */
  matchPattern(pattern: string): string[] {
    return this.#names.filter((name) => eventMatches(pattern, name));
  }

  /** `*`, an exact catalog name, or a wildcard whose prefix covers at least one catalog name. */
  isKnownPattern(pattern: string): boolean {
    if (pattern === '*' || this.#entries.has(pattern)) return true;
    return wildcardPrefix(pattern) !== undefined && this.matchPattern(pattern).length > 0;
  }
}

/** Runs a compiled schema; its errors (which ajv leaves on the function) as `{path, message, keyword}`. */
function check(validate: ValidateFunction, data: unknown): ErrorDetail[] {
  if (validate(data)) return [];
  return toErrorDetails(validate.errors ?? [], data);
}

function toErrorDetails(errors: ErrorObject[], data: unknown): ErrorDetail[] {
  return errors.map((error) => {
    const segments = pointerSegments(error.instancePath);
    const { missingProperty, additionalProperty, propertyName } = error.params as Record<string, unknown>;
    let message = error.message ?? 'is invalid';
    if (error.keyword === 'required' || error.keyword === 'dependencies' || error.keyword === 'dependentRequired') {
      segments.push(String(missingProperty));
      message = 'is required';
    } else if (error.keyword === 'additionalProperties') {
      segments.push(String(additionalProperty));
      message = 'is not an allowed property';
    } else if (error.keyword === 'propertyNames' && propertyName !== undefined) {
      segments.push(String(propertyName));
    } else if (error.keyword === 'enum') {
      const allowed = (error.params as { allowedValues?: unknown[] }).allowedValues ?? [];
      message = `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
    }
    return { path: jsonPathOf(segments, { root: '$.data', data }), message, keyword: error.keyword };
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
