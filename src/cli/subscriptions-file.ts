/**
 * `sluice.yaml` (or .json): subscriptions as code. Parsed with positions, checked against the
 * same schema the API validates with (core/api-schemas.ts) plus what only a file has: names,
 * `${VAR}` references, secrets that must be references. Every problem is reported with its
 * line and column; a file with any problem changes nothing.
 */
import { LineCounter, parseDocument, type Document } from 'yaml';
import { AUTH_SECRET_FIELDS, SUBSCRIPTION_NAME_PATTERN } from '../core/api-schemas.ts';
import { eventMatches } from '../core/event-match.ts';
import { checkSubscriptionShape } from '../services/subscription-input.ts';

export interface FileProblem {
  path: string;
  message: string;
  line?: number;
  column?: number;
}

/** What the gateway knows, to check references before changing anything. */
export interface GatewayFacts {
  /** connector name -> its secret option names and subscription defaults. */
  connectors: Map<string, { secretOptions: string[]; defaults: Record<string, unknown> }>;
  mappingNames: Set<string>;
  eventTypes: string[];
}

export interface DesiredSubscription {
  name: string;
  /** The body for the API, `${VAR}` references resolved. */
  body: Record<string, unknown>;
  /** The same with secrets kept as the references they are written as: safe to print. */
  display: Record<string, unknown>;
  /** JSON path -> line/column, for this entry's fields. */
  positionOf: (path: (string | number)[]) => { line: number; column: number } | undefined;
}

/** An unnamed subscription is written (and recognised) by its id. */
const ID_AS_NAME = '^sub_[0-9A-HJKMNP-TV-Z]{26}$';
const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const WHOLE_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;
const TEMPLATE_NAME = /^[a-z0-9][a-z0-9_\-/]*$/;

const NAME = new RegExp(`${SUBSCRIPTION_NAME_PATTERN}|${ID_AS_NAME}`);
/** `$.a.b[2]` -> ['a', 'b', 2]. */
function segmentsOf(jsonPath: string): (string | number)[] {
  return [...jsonPath.matchAll(/\.([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]));
}

function positionIn(doc: Document, lines: LineCounter, path: (string | number)[]): { line: number; column: number } | undefined {
  // The deepest node that exists: a missing field is reported where its parent is.
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    if (range) {
      const { line, col } = lines.linePos(range[0]);
      return { line, column: col };
    }
  }
  return undefined;
}

function substitute(value: unknown, env: NodeJS.ProcessEnv, at: (string | number)[], missing: (name: string, path: (string | number)[]) => void): unknown {
  if (typeof value === 'string') {
    return value.replace(REFERENCE, (_m, name: string) => {
      const resolved = env[name];
      if (resolved === undefined) {
        missing(name, at);
        return '';
      }
      return resolved;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substitute(v, env, [...at, i], missing));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, env, [...at, k], missing)]));
  return value;
}

const jsonPath = (path: (string | number)[]) => '$' + path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');

/** Where the secret values of an entry are: they must be `${VAR}` references, never literal. */
export function secretPaths(entry: Record<string, unknown>, facts: Pick<GatewayFacts, 'connectors'>): string[][] {
  const paths: string[][] = [];
  const auth = entry.auth as { type?: string } | null | undefined;
  if (auth && typeof auth === 'object' && typeof auth.type === 'string' && AUTH_SECRET_FIELDS[auth.type]) paths.push(['auth', AUTH_SECRET_FIELDS[auth.type]]);
  const connector = facts.connectors.get(typeof entry.connector === 'string' ? entry.connector : 'webhook');
  const options = entry.connector_options;
  if (connector && options && typeof options === 'object') for (const name of connector.secretOptions) if (name in options) paths.push(['connector_options', name]);
  return paths;
}

export function parseSubscriptionsFile(text: string, env: NodeJS.ProcessEnv, facts: GatewayFacts): { entries: DesiredSubscription[]; problems: FileProblem[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  const problems: FileProblem[] = [];
  const at = (path: (string | number)[], message: string) => problems.push({ path: jsonPath(path), message, ...positionIn(doc, lines, path) });
  for (const err of doc.errors) {
    const pos = err.linePos?.[0];
    problems.push({ path: '$', message: err.message.split('\n')[0], ...(pos ? { line: pos.line, column: pos.col } : {}) });
  }
  if (problems.length) return { entries: [], problems };

  const root = doc.toJS() as unknown;
  if (!root || typeof root !== 'object' || Array.isArray(root)) {
    at([], 'must be a mapping with a `subscriptions:` list');
    return { entries: [], problems };
  }
  for (const key of Object.keys(root)) if (key !== 'subscriptions') at([key], 'is not a known field (the file holds `subscriptions:`)');
  const list = (root as { subscriptions?: unknown }).subscriptions;
  if (!Array.isArray(list)) {
    at(['subscriptions'], 'must be a list of subscriptions');
    return { entries: [], problems };
  }

  const entries: DesiredSubscription[] = [];
  const firstByName = new Map<string, number>();
  list.forEach((raw: unknown, i: number) => {
    const base = ['subscriptions', i];
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return at(base, 'must be a mapping of subscription fields');
    const entry = raw as Record<string, unknown>;
    const before = problems.length;

    const secrets = secretPaths(entry, facts);
    for (const secret of secrets) {
      const value = (entry[secret[0]] as Record<string, unknown>)[secret[1]];
      if (typeof value === 'string' && !WHOLE_REFERENCE.test(value)) {
        const suggestion = `${String(entry.name ?? 'name').toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_${secret[1].toUpperCase()}`;
        at([...base, ...secret], `is a secret: write a reference to an environment variable such as \${${suggestion}}, never the value itself`);
      }
    }
    const unset: string[] = [];
    const body = substitute(entry, env, base, (name, path) => {
      unset.push(jsonPath(path.slice(2)));
      at(path, `the environment variable ${name} is not set`);
    }) as Record<string, unknown>;
    if (typeof entry.name !== 'string' || !NAME.test(entry.name)) at([...base, 'name'], 'is required: a stable name of lowercase letters, digits, . _ - (or the id of a subscription created without one)');
    // The API's own shape check, minus what a missing variable already explains.
    const { name: _unchecked, ...shape } = body;
    for (const d of checkSubscriptionShape(shape, 'create')) {
      if (!unset.some((u) => d.path === u || d.path?.startsWith(u + '.') || u.startsWith(d.path + '.'))) at([...base, ...segmentsOf(d.path ?? '$')], d.message);
    }

    const name = typeof entry.name === 'string' ? entry.name : undefined;
    if (name !== undefined) {
      const first = firstByName.get(name);
      if (first !== undefined) at([...base, 'name'], `duplicate name "${name}" (first used by subscriptions[${first}], line ${positionIn(doc, lines, ['subscriptions', first, 'name'])?.line})`);
      else firstByName.set(name, i);
    }

    const connectorName = typeof body.connector === 'string' ? body.connector : 'webhook';
    if (!facts.connectors.has(connectorName)) at([...base, 'connector'], `unknown connector "${connectorName}"; one of ${[...facts.connectors.keys()].join(', ')}`);
    if (typeof body.mapping === 'string' && TEMPLATE_NAME.test(body.mapping) && !facts.mappingNames.has(body.mapping)) {
      at([...base, 'mapping'], `no mapping template named "${body.mapping}" on the gateway (see GET /api/v1/mappings)`);
    }
    if (Array.isArray(body.events)) {
      body.events.forEach((pattern, j) => {
        if (typeof pattern === 'string' && pattern !== '*' && !facts.eventTypes.some((type) => eventMatches(pattern, type))) at([...base, 'events', j], `"${pattern}" is not an event type in the gateway's catalog`);
      });
    }
    if (problems.length > before || name === undefined) return;
    const { name: _name, ...apiBody } = body;
    // Printable: resolved values, except secrets, which stay the references they are written as.
    const display = structuredClone(apiBody);
    for (const [field, key] of secrets) (display[field] as Record<string, unknown>)[key] = (entry[field] as Record<string, unknown>)[key];
    entries.push({
      name,
      body: name.startsWith('sub_') ? apiBody : { name, ...apiBody },
      display,
      positionOf: (path) => positionIn(doc, lines, [...base, ...path]),
    });
  });
  return { entries, problems };
}

export function formatProblem(file: string, p: FileProblem): string {
  return `${file}${p.line ? `:${p.line}:${p.column}` : ''}: ${p.path}: ${p.message}`;
}
