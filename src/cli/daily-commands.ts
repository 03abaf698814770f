import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { parseDuration } from '../core/duration.ts';
import { verifySimpleSignature, verifyStandardSignature } from '../core/signing.ts';
import { clientFromEnv, type ConnectionOptions, type GatewayClient } from './api-client.ts';
import { CliError, EXIT } from './exit-codes.ts';

interface CommonOptions extends ConnectionOptions {
  json?: boolean;
}

const print = (line: string): void => void process.stdout.write(line + '\n');
const printJson = (value: unknown) => print(JSON.stringify(value));

/** `--url` and `--json`, on every command that talks to a gateway. */
export function gatewayCommand(parent: Command, spec: string, description: string): Command {
  return parent
    .command(spec)
    .description(description)
    .option('--url <url>', 'gateway base URL (default: $SLUICE_URL, else http://127.0.0.1:8080); the key comes from $SLUICE_API_KEY')
    .option('--json', 'print JSON (one object, or one per line when following)');
}

/** `--data` as inline JSON, `@file.json`, or `@-` for standard input. */
function readData(value: string): unknown {
  let text = value;
  if (value.startsWith('@')) {
    const file = value.slice(1);
    try {
      text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (err) {
      throw new CliError(EXIT.usage, `cannot read ${file}: ${(err as Error).message}`);
    }
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(EXIT.usage, `--data is not valid JSON: ${(err as Error).message}`);
  }
}

/** `1h`, `30m`, `2d` ago, or an ISO-8601 time, as an ISO-8601 time. */
export function sinceToIso(value: string, now = Date.now()): string {
  if (!Number.isNaN(Date.parse(value)) && /\d{4}-\d{2}-\d{2}/.test(value)) return new Date(Date.parse(value)).toISOString();
  try {
    return new Date(now - parseDuration(value)).toISOString();
  } catch {
    throw new CliError(EXIT.usage, `"${value}" is neither a duration (30m, 1h, 2d) nor an ISO-8601 time`);
  }
}

type Delivery = { id: string; status: string; event: string; subscription_id: string; last_status_code: number | null; last_latency_ms: number | null; attempt_count: number; last_error: string | null; updated_at: string; created_at: string };

const STATUS_WIDTH = 10;
/** One readable line per delivery: when, id, status, response code, event, subscription, latency, attempts. */
export function deliveryLine(d: Delivery): string {
  const code = d.last_status_code === null ? '---' : String(d.last_status_code);
  const latency = d.last_latency_ms === null ? '' : `${Math.round(d.last_latency_ms)}ms`;
  const error = d.status === 'failed' && d.last_error ? `  ${d.last_error}` : '';
  return `${d.updated_at}  ${d.id}  ${d.status.padEnd(STATUS_WIDTH)} ${code}  ${d.event.padEnd(24)} ${d.subscription_id}  ${latency.padStart(6)}  ${d.attempt_count} attempt${d.attempt_count === 1 ? '' : 's'}${error}`;
}

interface DeliveriesOptions extends CommonOptions {
  status?: string;
  subscription?: string;
  event?: string;
  limit: string;
  follow?: boolean;
  interval: string;
}

async function listDeliveries(client: GatewayClient, opts: DeliveriesOptions, limit: number): Promise<Delivery[]> {
  const query = new URLSearchParams({ limit: String(limit) });
  if (opts.status) query.set('status', opts.status);
  if (opts.event) query.set('event', opts.event);
  const base = opts.subscription ? `/api/v1/webhooks/${encodeURIComponent(opts.subscription)}/deliveries` : '/api/v1/deliveries';
  return (await client.request<{ data: Delivery[] }>('GET', `${base}?${query}`)).data;
}

/**
 * `--follow`: polls the newest page and prints each delivery again whenever it changes (a new
 * delivery, a retry, delivered, failed), oldest change first, until interrupted.
 */
async function follow(client: GatewayClient, opts: DeliveriesOptions, show: (d: Delivery) => void): Promise<void> {
  const intervalMs = parseDuration(opts.interval);
  const seen = new Map<string, string>();
  let warned = false;
  const interrupted = new AbortController();
  const stop = () => interrupted.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  while (!interrupted.signal.aborted) {
    try {
      const page = await listDeliveries(client, opts, 100);
      warned = false;
      for (const d of page.reverse()) {
        const version = `${d.status}|${d.attempt_count}|${d.updated_at}`;
        if (seen.get(d.id) === version) continue;
        seen.set(d.id, version);
        show(d);
      }
    } catch (err) {
      if (!(err instanceof CliError) || err.exitCode !== EXIT.unreachable) throw err;
      if (!warned) process.stderr.write(`sluice: ${err.message}; retrying every ${opts.interval}\n`);
      warned = true;
    }
    await sleep(intervalMs, undefined, { signal: interrupted.signal }).catch(() => undefined);
  }
}

export function registerDailyCommands(program: Command): void {
  gatewayCommand(program, 'send <event-type>', 'post one event to the gateway (an ingest or admin key)')
    .option('--data <json>', 'the event data: inline JSON, @file.json, or @- for standard input', '{}')
    .option('--id <id>', 'the event id (idempotency: the same id again is not stored twice)')
    .option('--idempotency-key <key>', 'sent as the Idempotency-Key header')
    .action(async (eventType: string, opts: CommonOptions & { data: string; id?: string; idempotencyKey?: string }) => {
      const client = clientFromEnv(opts);
      const body = { event: eventType, ...(opts.id ? { id: opts.id } : {}), data: readData(opts.data) };
      const accepted = await client.request<{ id: string; event: string; duplicate: boolean; deliveries: { id: string; subscription_id: string }[] }>('POST', '/api/v1/events', body);
      if (opts.json) return printJson(accepted);
      print(`${accepted.duplicate ? 'already accepted (duplicate)' : 'accepted'} ${accepted.id} (${accepted.event}): ${accepted.deliveries.length} deliver${accepted.deliveries.length === 1 ? 'y' : 'ies'}`);
      for (const d of accepted.deliveries) print(`  ${d.id} -> ${d.subscription_id}`);
    });

  gatewayCommand(program, 'deliveries', 'list recent deliveries, newest last; --follow tails the log live')
    .option('--status <status>', 'pending, delivering, delivered, failed or cancelled')
    .option('--subscription <id>', "only this subscription's deliveries")
    .option('--event <type>', 'only this event type')
    .option('--limit <n>', 'how many (1-100)', '20')
    .option('-f, --follow', 'keep printing new deliveries and status changes until Ctrl-C')
    .option('--interval <duration>', 'poll interval with --follow', '1s')
    .action(async (opts: DeliveriesOptions) => {
      const client = clientFromEnv(opts);
      const show = (d: Delivery) => (opts.json ? printJson(d) : print(deliveryLine(d)));
      if (opts.follow) return follow(client, opts, show);
      const page = await listDeliveries(client, opts, Number(opts.limit));
      if (opts.json) return printJson(page);
      if (page.length === 0) print('no deliveries');
      for (const d of page.reverse()) show(d);
    });

  gatewayCommand(program, 'replay [delivery-id]', "deliver again: one delivery, or every one of a subscription's matching --status/--since/--until/--event (an admin key)")
    .option('--subscription <id>', "replay this subscription's deliveries in bulk")
    .option('--status <status>', 'with --subscription: only deliveries in this state (e.g. failed)')
    .option('--since <when>', 'with --subscription: created since a duration ago (1h, 30m, 2d) or an ISO-8601 time')
    .option('--until <when>', 'with --subscription: created before a duration ago or an ISO-8601 time')
    .option('--event <type>', 'with --subscription: only this event type')
    .action(async (deliveryId: string | undefined, opts: CommonOptions & { subscription?: string; status?: string; since?: string; until?: string; event?: string }) => {
      const bulk = opts.status ?? opts.since ?? opts.until ?? opts.event;
      if (deliveryId && (opts.subscription || bulk)) throw new CliError(EXIT.usage, 'give a delivery id, or --subscription with filters, not both');
      if (!deliveryId && !opts.subscription) throw new CliError(EXIT.usage, 'give a delivery id, or --subscription <id> (with --status, --since, --until, --event)');
      const client = clientFromEnv(opts);
      if (deliveryId) {
        const d = await client.request<Delivery>('POST', `/api/v1/deliveries/${encodeURIComponent(deliveryId)}/replay`);
        return opts.json ? printJson(d) : print(`replaying ${d.id}: ${d.status}`);
      }
      const body: Record<string, string> = {};
      if (opts.status) body.status = opts.status;
      if (opts.since) body.since = sinceToIso(opts.since);
      if (opts.until) body.until = sinceToIso(opts.until);
      if (opts.event) body.event = opts.event;
      // One call queues at most the gateway's SLUICE_REPLAY_LIMIT; follow its cursor to the end.
      const result = { replayed: 0, delivery_ids: [] as string[] };
      let cursor: string | null = null;
      do {
        const page: { replayed: number; delivery_ids: string[]; next_cursor?: string | null } = await client.request('POST', `/api/v1/webhooks/${encodeURIComponent(opts.subscription!)}/replay`, cursor ? { ...body, cursor } : body);
        result.replayed += page.replayed;
        result.delivery_ids.push(...page.delivery_ids);
        cursor = page.next_cursor ?? null;
      } while (cursor);
      if (opts.json) return printJson(result);
      print(`replaying ${result.replayed} deliver${result.replayed === 1 ? 'y' : 'ies'}`);
      for (const id of result.delivery_ids) print(`  ${id}`);
    });

  program
    .command('verify')
    .description('check a webhook\'s signatures (Standard Webhooks and X-Webhook-Signature) over the raw body read from standard input')
    .option('--secret <whsec>', 'the signing secret (default: $SLUICE_SIGNING_SECRET)')
    .option('-H, --header <header>', "a received header, 'name: value' (repeat for each)", (value: string, all: string[]) => [...all, value], [] as string[])
    .option('--tolerance <seconds>', 'how old webhook-timestamp may be', '300')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { secret?: string; header: string[]; tolerance: string; json?: boolean }) => {
      const secret = opts.secret ?? process.env.SLUICE_SIGNING_SECRET;
      if (!secret) throw new CliError(EXIT.usage, 'give --secret whsec_… or set SLUICE_SIGNING_SECRET');
      const headers = new Map<string, string>();
      for (const raw of opts.header) {
        const colon = raw.indexOf(':');
        if (colon < 1) throw new CliError(EXIT.usage, `--header "${raw}" is not 'name: value'`);
        headers.set(raw.slice(0, colon).trim().toLowerCase(), raw.slice(colon + 1).trim());
      }
      const body = fs.readFileSync(0);
      const result = verifySignatures(body, secret, headers, Math.floor(Date.now() / 1000), Number(opts.tolerance));
      if (opts.json) printJson(result);
      else for (const [scheme, r] of Object.entries(result.schemes)) print(`${scheme}: ${r.checked ? (r.valid ? 'valid' : `INVALID (${r.reason})`) : 'not present'}`);
      if (!result.checked) throw new CliError(EXIT.usage, 'no signature header given: pass --header "webhook-id: …" --header "webhook-timestamp: …" --header "webhook-signature: …" and/or --header "x-webhook-signature: …"');
      if (!result.valid) process.exitCode = EXIT.invalidSignature;
    });
}

interface SchemeResult {
  checked: boolean;
  valid: boolean;
  reason?: string;
}

/** Both schemes; each is checked when its header is present. Valid means every present one matches. */
export function verifySignatures(body: Buffer, secret: string, headers: Map<string, string>, nowSeconds: number, toleranceSeconds: number): { checked: boolean; valid: boolean; schemes: Record<string, SchemeResult> } {
  const schemes: Record<string, SchemeResult> = {};
  const standardPresent = headers.has('webhook-signature');
  if (standardPresent) {
    const r = verifyStandardSignature(body.toString('utf8'), secret, { id: headers.get('webhook-id'), timestamp: headers.get('webhook-timestamp'), signature: headers.get('webhook-signature') }, nowSeconds, toleranceSeconds);
    schemes['webhook-signature (Standard Webhooks)'] = r.ok ? { checked: true, valid: true } : { checked: true, valid: false, reason: r.reason };
  } else schemes['webhook-signature (Standard Webhooks)'] = { checked: false, valid: false };
  const simple = headers.get('x-webhook-signature');
  if (simple !== undefined) {
    const ok = verifySimpleSignature(body, secret, simple);
    schemes['X-Webhook-Signature (hex HMAC)'] = ok ? { checked: true, valid: true } : { checked: true, valid: false, reason: 'no signature matches this secret and body' };
  } else schemes['X-Webhook-Signature (hex HMAC)'] = { checked: false, valid: false };
  const checked = Object.values(schemes).filter((s) => s.checked);
  return { checked: checked.length > 0, valid: checked.length > 0 && checked.every((s) => s.valid), schemes };
}
