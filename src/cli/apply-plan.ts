/**
 * What `sluice apply` must do to make the gateway match the file: create, change field by
 * field, delete (with --prune). Pure. Secret values are write-only (the gateway shows them
 * masked), so they are compared by what is visible: the auth type and its non-secret fields,
 * and which secret options are set.
 */
import { AUTH_SECRET_FIELDS, subscriptionFields } from '../core/api-schemas.ts';
import { jsonEqual } from '../services/mapping-registry.ts';
import { normalizeOrdering } from '../core/ordering.ts';
import type { DesiredSubscription, GatewayFacts } from './subscriptions-file.ts';

const MASK = '********';
/** Every field a file manages: the API's, but the name, which is how entries are matched. */
export const MANAGED_FIELDS = Object.keys(subscriptionFields).filter((f) => f !== 'name');

/** A subscription as GET /api/v1/webhooks shows it. */
export interface CurrentSubscription {
  id: string;
  name: string | null;
  source: string;
  [field: string]: unknown;
}

export interface FieldChange {
  field: string;
  from: unknown;
  to: unknown;
}

export type Step =
  | { kind: 'create'; name: string; entry: DesiredSubscription }
  | { kind: 'update'; name: string; id: string; changes: FieldChange[]; patch: Record<string, unknown>; entry: DesiredSubscription }
  | { kind: 'delete'; name: string; id: string };

export interface Plan {
  steps: Step[];
  unchanged: string[];
}

/** What a field is when the file leaves it out: the API's default for a new subscription. */
function withDefault(field: string, body: Record<string, unknown>, facts: Pick<GatewayFacts, 'connectors'>): unknown {
  // As the gateway stores it: an ordering without on_failure means "continue".
  if (field === 'ordering' && field in body) return normalizeOrdering(body.ordering as Parameters<typeof normalizeOrdering>[0]);
  if (field in body) return body[field];
  const connector = facts.connectors.get((body.connector as string | undefined) ?? 'webhook');
  const defaults: Record<string, unknown> = {
    url: '', description: null, enabled: true, headers: {}, auth: null, filter: null, mapping: null,
    connector: 'webhook', connector_options: {}, retry: null, timeout: null, rate_limit: connector?.defaults.rate_limit ?? null,
    ordering: connector?.defaults.ordering ?? null,
  };
  return defaults[field] ?? null;
}

/** A value as the gateway would show it: secrets masked. */
function masked(field: string, value: unknown, connectorName: string, facts: Pick<GatewayFacts, 'connectors'>): unknown {
  if (!value || typeof value !== 'object') return value;
  if (field === 'auth') {
    const auth = value as Record<string, unknown>;
    const secret = AUTH_SECRET_FIELDS[String(auth.type)];
    return secret && secret in auth ? { ...auth, [secret]: MASK } : auth;
  }
  if (field === 'connector_options') {
    const secretOptions = facts.connectors.get(connectorName)?.secretOptions ?? [];
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, secretOptions.includes(k) ? MASK : v]));
  }
  return value;
}

/** The live subscription an entry stands for: by name, or by id for one created without a name. */
function matchOf(entry: DesiredSubscription, current: CurrentSubscription[]): CurrentSubscription | undefined {
  return current.find((s) => s.name === entry.name) ?? current.find((s) => s.name === null && s.id === entry.name);
}

export function planApply(desired: DesiredSubscription[], current: CurrentSubscription[], facts: Pick<GatewayFacts, 'connectors'>, opts: { prune: boolean; resendSecrets: boolean }): Plan {
  const steps: Step[] = [];
  const unchanged: string[] = [];
  const matched = new Set<string>();
  for (const entry of desired) {
    const live = matchOf(entry, current);
    if (!live) {
      steps.push({ kind: 'create', name: entry.name, entry });
      continue;
    }
    matched.add(live.id);
    const connectorName = String(withDefault('connector', entry.body, facts));
    const changes: FieldChange[] = [];
    const patch: Record<string, unknown> = {};
    for (const field of MANAGED_FIELDS) {
      const want = withDefault(field, entry.body, facts);
      const hasSecret = field === 'auth' || field === 'connector_options';
      const differs = !jsonEqual(masked(field, want, connectorName, facts), live[field] ?? null);
      const resend = opts.resendSecrets && hasSecret && want !== null && !jsonEqual(masked(field, want, connectorName, facts), want);
      if (!differs && !resend) continue;
      patch[field] = want;
      changes.push({ field, from: live[field] ?? null, to: field in entry.display ? entry.display[field] : want });
    }
    if (changes.length) steps.push({ kind: 'update', name: entry.name, id: live.id, changes, patch, entry });
    else unchanged.push(entry.name);
  }
  if (opts.prune) {
    // REST hooks belong to the Zapier and n8n nodes that subscribed them, not to the file.
    for (const sub of current) if (!matched.has(sub.id) && sub.source !== 'hook') steps.push({ kind: 'delete', name: sub.name ?? sub.id, id: sub.id });
  }
  return { steps, unchanged };
}

const show = (value: unknown) => (value === undefined ? 'null' : JSON.stringify(value));

/** The plan as a person reads it: `+` create, `~` change (field: from -> to), `-` delete. */
export function formatPlan(plan: Plan): string[] {
  const lines: string[] = [];
  for (const step of plan.steps) {
    if (step.kind === 'create') {
      lines.push(`+ create ${step.name}`);
      for (const [field, value] of Object.entries(step.entry.display)) lines.push(`    ${field}: ${show(value)}`);
    } else if (step.kind === 'update') {
      lines.push(`~ update ${step.name} (${step.id})`);
      for (const c of step.changes) lines.push(`    ${c.field}: ${show(c.from)} -> ${show(c.to)}`);
    } else {
      lines.push(`- delete ${step.name} (${step.id})`);
    }
  }
  if (plan.unchanged.length) lines.push(`= ${plan.unchanged.length} unchanged: ${plan.unchanged.join(', ')}`);
  if (!plan.steps.length) lines.push('nothing to change: the gateway matches the file');
  return lines;
}
