import fs from 'node:fs';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { AUTH_SECRET_FIELDS } from '../core/api-schemas.ts';
import { ApiError, clientFromEnv, type GatewayClient } from './api-client.ts';
import { formatPlan, MANAGED_FIELDS, planApply, type CurrentSubscription, type Step } from './apply-plan.ts';
import { gatewayCommand } from './daily-commands.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { formatProblem, parseSubscriptionsFile, type DesiredSubscription, type GatewayFacts } from './subscriptions-file.ts';

const print = (line: string): void => void process.stdout.write(line + '\n');

async function gatewayFacts(client: GatewayClient): Promise<GatewayFacts> {
  const [connectors, mappings, eventTypes] = await Promise.all([
    client.request<{ data: { name: string; secret_options: string[]; defaults: Record<string, unknown> }[] }>('GET', '/api/v1/connectors'),
    client.request<{ data: { name: string }[] }>('GET', '/api/v1/mappings'),
    client.request<{ data: { name: string }[] }>('GET', '/api/v1/event-types'),
  ]);
  return {
    connectors: new Map(connectors.data.map((c) => [c.name, { secretOptions: c.secret_options, defaults: c.defaults }])),
    mappingNames: new Set(mappings.data.map((m) => m.name)),
    eventTypes: eventTypes.data.map((t) => t.name),
  };
}

async function currentSubscriptions(client: GatewayClient): Promise<CurrentSubscription[]> {
  return (await client.request<{ data: CurrentSubscription[] }>('GET', '/api/v1/webhooks')).data;
}

/** An API refusal of one entry, told at that entry's fields in the file. */
function refusalAt(file: string, entry: DesiredSubscription, err: ApiError): CliError {
  const details = err.body.error?.details ?? [];
  const lines = details.map((d) => {
    const segments = [...(d.path ?? '').matchAll(/\.([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]));
    const pos = entry.positionOf(segments.length ? segments : ['name']);
    return `\n  ${file}${pos ? `:${pos.line}:${pos.column}` : ''}: ${d.path ?? ''}: ${d.message}`;
  });
  return new CliError(EXIT.refused, `the gateway refused ${entry.name}: ${err.body.error?.code ?? err.status} ${err.body.error?.message ?? ''}${lines.join('')}\nsteps before this one were applied; fix the file and run apply again to complete`);
}

async function runStep(client: GatewayClient, step: Step): Promise<Record<string, unknown>> {
  switch (step.kind) {
    case 'create':
      return client.request('POST', '/api/v1/webhooks', step.entry.body);
    case 'update':
      return client.request('PATCH', `/api/v1/webhooks/${step.id}`, step.patch);
    case 'delete':
      return client.request('DELETE', `/api/v1/webhooks/${step.id}`);
  }
}

/** An environment variable name for a secret of a subscription: CRM_SYNC_AUTH_TOKEN. */
export function secretVariable(name: string, ...parts: string[]): string {
  return [name, ...parts].join('_').toUpperCase().replace(/[^A-Z0-9]+/g, '_').replace(/^(\d)/, '_$1');
}

/** A subscription as a file entry: only fields that differ from the defaults, secrets as references. */
function toFileEntry(sub: CurrentSubscription, facts: GatewayFacts, variables: string[]): Record<string, unknown> {
  const name = sub.name ?? sub.id;
  const entry: Record<string, unknown> = { name };
  const connector = facts.connectors.get(String(sub.connector));
  const isDefault: Record<string, (v: unknown) => boolean> = {
    url: (v) => v === '', description: (v) => v === null, enabled: (v) => v === true, headers: (v) => !!v && Object.keys(v as object).length === 0,
    auth: (v) => v === null, filter: (v) => v === null, mapping: (v) => v === null, connector: (v) => v === 'webhook',
    connector_options: (v) => !!v && Object.keys(v as object).length === 0, retry: (v) => v === null, timeout: (v) => v === null,
  };
  for (const field of MANAGED_FIELDS) {
    let value = sub[field] ?? null;
    if (field === 'rate_limit' || field === 'ordering') {
      // Left out when it is the connector's default; an explicit null turns a default off.
      if (JSON.stringify(value) === JSON.stringify(connector?.defaults[field] ?? null)) continue;
    } else if (isDefault[field]?.(value)) continue;
    if (field === 'auth' && value && typeof value === 'object') {
      const auth = value as Record<string, unknown>;
      const secret = AUTH_SECRET_FIELDS[String(auth.type)];
      const variable = secretVariable(name, 'auth', secret);
      variables.push(variable);
      value = { ...auth, [secret]: `\${${variable}}` };
    }
    if (field === 'connector_options' && value && typeof value === 'object') {
      value = Object.fromEntries(Object.entries(value).map(([k, v]) => {
        if (!connector?.secretOptions.includes(k)) return [k, v];
        const variable = secretVariable(name, k);
        variables.push(variable);
        return [k, `\${${variable}}`];
      }));
    }
    entry[field] = value;
  }
  return entry;
}

export function registerConfigCommands(program: Command): void {
  gatewayCommand(program, 'apply', 'make the gateway\'s subscriptions match a file (YAML or JSON; an admin key)')
    .requiredOption('-f, --file <file>', 'the subscriptions file, e.g. sluice.yaml')
    .option('--dry-run', 'print what would change (create / change field by field / delete) and change nothing')
    .option('--prune', 'also delete subscriptions that are not in the file (REST hooks are never deleted)')
    .option('--resend-secrets', 'send secret values again even where nothing visible changed (after rotating one in the environment)')
    .action(async (opts: { file: string; url?: string; json?: boolean; dryRun?: boolean; prune?: boolean; resendSecrets?: boolean }) => {
      let text: string;
      try {
        text = fs.readFileSync(opts.file, 'utf8');
      } catch (err) {
        throw new CliError(EXIT.usage, `cannot read ${opts.file}: ${(err as Error).message}`);
      }
      const client = clientFromEnv(opts);
      const facts = await gatewayFacts(client);
      const { entries, problems } = parseSubscriptionsFile(text, process.env, facts);
      if (problems.length) {
        if (opts.json) print(JSON.stringify({ file: opts.file, problems }));
        else for (const p of problems) process.stderr.write(formatProblem(opts.file, p) + '\n');
        throw new CliError(EXIT.usage, `${opts.file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}; nothing was changed`);
      }
      const plan = planApply(entries, await currentSubscriptions(client), facts, { prune: !!opts.prune, resendSecrets: !!opts.resendSecrets });
      const summary = plan.steps.map((s) => ({ action: s.kind, name: s.name, ...('id' in s ? { id: s.id } : {}), ...(s.kind === 'update' ? { changes: s.changes } : {}), ...(s.kind === 'create' ? { fields: s.entry.display } : {}) }));
      if (opts.dryRun) {
        if (opts.json) print(JSON.stringify({ dry_run: true, steps: summary, unchanged: plan.unchanged }));
        else formatPlan(plan).forEach(print);
        return;
      }
      if (!opts.json) formatPlan(plan).forEach(print);
      const secrets: Record<string, string> = {};
      for (const step of plan.steps) {
        try {
          const result = await runStep(client, step);
          if (step.kind === 'create') {
            secrets[step.name] = String(result.signing_secret);
            if (!opts.json) print(`  created ${step.name} as ${String(result.id)}; signing secret (shown once, store it now): ${String(result.signing_secret)}`);
          }
        } catch (err) {
          if (err instanceof ApiError && step.kind !== 'delete') throw refusalAt(opts.file, step.entry, err);
          throw err;
        }
      }
      const counts = ['create', 'update', 'delete'].map((k) => plan.steps.filter((s) => s.kind === k).length);
      if (opts.json) print(JSON.stringify({ dry_run: false, steps: summary, unchanged: plan.unchanged, signing_secrets: secrets }));
      else if (plan.steps.length) print(`applied: ${counts[0]} created, ${counts[1]} updated, ${counts[2]} deleted, ${plan.unchanged.length} unchanged`);
    });

  gatewayCommand(program, 'export', 'print the gateway\'s subscriptions as a file for `sluice apply` (secrets as ${VAR} references)')
    .option('-o, --output <file>', 'write to this file instead of standard output')
    .action(async (opts: { url?: string; json?: boolean; output?: string }) => {
      const client = clientFromEnv(opts);
      const [facts, current] = await Promise.all([gatewayFacts(client), currentSubscriptions(client)]);
      const variables: string[] = [];
      // REST hooks are managed by the Zapier and n8n nodes that created them.
      const subscriptions = current.filter((s) => s.source !== 'hook').map((s) => toFileEntry(s, facts, variables));
      const text = opts.json
        ? JSON.stringify({ subscriptions }, null, 2) + '\n'
        : `# Sluice subscriptions, exported ${new Date().toISOString()}. Apply with: npx sluice apply -f <this file>\n` +
          (variables.length ? `# Secrets are references: set ${variables.join(', ')} before applying.\n` : '') +
          stringify({ subscriptions }, { lineWidth: 0 });
      if (opts.output) fs.writeFileSync(opts.output, text);
      else process.stdout.write(text);
      if (variables.length) process.stderr.write(`secrets are written as references; set ${variables.join(', ')} in the environment of \`sluice apply\`\n`);
    });
}
