import { TemplateError } from '../errors.ts';
import { newId } from '../core/ids.ts';
import { SIGNATURE_HEADERS, buildSignatureHeaders } from '../core/signing.ts';
import { parseRetryAfter } from '../core/backoff.ts';
import type { AttemptRecord, AttemptStep, ClaimedDelivery } from '../storage/types.ts';
import { secretHeaderNames, signingSecrets, subscriptionRequestHeaders, type RuntimeSubscription } from '../services/subscriptions.ts';
import type { ConnectorContext, ConnectorDefinition, OutboundRequest, Verdict } from './connector.ts';
import type { HttpClient } from './http-client.ts';

/** Renders a delivery's body: the mapping template's output, or the envelope as is. */
export type RenderPayload = (envelope: Record<string, unknown>, sub: RuntimeSubscription, mapping: string | null) => Promise<unknown>;

export interface DispatchDeps {
  http: HttpClient;
  render: RenderPayload;
  defaultTimeoutMs: number;
  userAgent: string;
  /** SLUICE_PUBLIC_URL, handed to connectors for links back to the dashboard. */
  publicUrl?: string;
  /** Connectors' state per ordering key (storage's connector state). */
  keyState?: {
    get(subscriptionId: string, orderingKey: string): Promise<Record<string, string> | undefined>;
    set(subscriptionId: string, orderingKey: string, value: Record<string, string> | null): Promise<void>;
  };
}

export type FinalVerdict = Exclude<Verdict, { outcome: 'continue' }>;

export interface DispatchResult {
  attempt: AttemptRecord;
  verdict: FinalVerdict;
  /** From a Retry-After header, or a connector's floor. */
  retryAfterMs?: number;
}

const MAX_STEPS = 10;
const MASK = '********';

export function envelopeOf(claimed: ClaimedDelivery): Record<string, unknown> {
  const { event } = claimed;
  const envelope: Record<string, unknown> = { event: event.event, id: event.id, timestamp: event.timestamp, data: event.data };
  if (event.test) envelope.test = true;
  return envelope;
}

/**
 * Every form in which a subscription's secrets can come back in a response: the strings as
 * stored, the `user:password` of basic auth as base64 (a receiver echoing `Authorization`), a
 * secret URL's path (a 404 page saying `Cannot POST /services/T…/B…/X…`), and the
 * percent-encoded and JSON-escaped spellings of each. Scrubbed from everything the log keeps.
 */
export function secretValues(sub: RuntimeSubscription, connector: ConnectorDefinition): string[] {
  const values: unknown[] = [];
  if (sub.auth?.type === 'basic') values.push(sub.auth.password, Buffer.from(`${sub.auth.username}:${sub.auth.password}`).toString('base64'));
  if (sub.auth?.type === 'bearer') values.push(sub.auth.token);
  if (sub.auth?.type === 'header') values.push(sub.auth.value);
  values.push(...Object.values(sub.secretHeaders));
  for (const name of connector.secretOptions) {
    const value = sub.connectorOptions[name];
    values.push(value);
    const path = typeof value === 'string' ? secretUrlPath(value) : undefined;
    if (path) values.push(path);
  }
  const forms = new Set<string>();
  for (const value of values) {
    if (typeof value !== 'string' || value.length < 4) continue;
    forms.add(value);
    forms.add(encodeURIComponent(value));
    forms.add(encodeURI(value));
    forms.add(JSON.stringify(value).slice(1, -1).replaceAll('/', '\\/'));
  }
  // Longest first, so a URL is masked whole before its path is.
  return [...forms].sort((a, b) => b.length - a.length);
}

/** The path and query of a URL-shaped secret, when they are long enough to be the secret part. */
function secretUrlPath(value: string): string | undefined {
  try {
    const url = new URL(value);
    const rest = url.pathname + url.search;
    return rest.length >= 8 ? rest : undefined;
  } catch {
    return undefined;
  }
}

function scrub(text: string | null, secrets: string[]): string | null {
  if (text === null) return null;
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join(MASK);
  return out;
}

function maskHeaders(headers: Record<string, string>, secretNames: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = secretNames.includes(name.toLowerCase()) ? MASK : value;
  return out;
}

/** Connectors whose URL is itself a credential (a Slack webhook) are logged by origin only. */
export function loggableUrl(url: string, connector: ConnectorDefinition): string {
  if (connector.url === 'required' || connector.urlIsSecret === false) return url;
  try {
    return `${new URL(url).origin}/${MASK}`;
  } catch {
    return MASK;
  }
}

/** Where a subscription's requests go: its URL, or one its connector derives from options. */
export function destinationOf(sub: RuntimeSubscription, connector: ConnectorDefinition): string {
  return connector.url === 'none' && connector.resolveUrl ? connector.resolveUrl(sub.connectorOptions) : sub.record.url;
}

/** One attempt: render, build, sign, send, classify (and follow multi-step connectors). */
export async function dispatchAttempt(
  deps: DispatchDeps,
  claimed: ClaimedDelivery,
  sub: RuntimeSubscription,
  connector: ConnectorDefinition,
  now: number,
): Promise<DispatchResult> {
  const { delivery } = claimed;
  const attempt: AttemptRecord = {
    id: newId('att', now),
    delivery_id: delivery.id,
    chain: delivery.chain,
    number: delivery.attempts + 1,
    started_at: now,
    outcome: 'fail',
    method: 'POST',
    url: loggableUrl(destinationOf(sub, connector), connector),
    request_headers: {},
    request_body: null,
    response_status: null,
    response_headers: null,
    response_body: null,
    latency_ms: 0,
    error: null,
    steps: null,
  };
  const envelope = envelopeOf(claimed);
  let payload: unknown;
  try {
    // An empty mapping is no mapping: the connector's default applies, as it does for null.
    payload = await deps.render(envelope, sub, sub.record.mapping || connector.defaultMapping || null);
  } catch (err) {
    // A template that fails on this event fails the delivery permanently, with the reason and
    // position recorded; nothing half-built is sent. Replay once the template is fixed.
    if (!(err instanceof TemplateError)) throw err;
    const where = err.details[0]?.line ? ` (line ${err.details[0].line}, column ${err.details[0].column}${err.details[0].token ? `, token "${err.details[0].token}"` : ''})` : '';
    attempt.error = `template error [${err.code}]: ${err.message}${where}`;
    return { attempt, verdict: { outcome: 'fail', reason: attempt.error } };
  }

  // A connector that follows an ordered key (a Slack thread) reads what the key's last delivery left.
  const orderingKey = delivery.ordering_key ?? null;
  const keyState = orderingKey && deps.keyState && connector.usesKeyState?.(sub.connectorOptions) ? deps.keyState : undefined;
  const ctx: ConnectorContext = {
    url: destinationOf(sub, connector),
    options: sub.connectorOptions,
    payload,
    event: { id: claimed.event.id, event: claimed.event.event, timestamp: claimed.event.timestamp, data: claimed.event.data },
    deliveryId: delivery.id,
    msgId: delivery.msg_id,
    headers: subscriptionRequestHeaders(sub),
    publicUrl: deps.publicUrl,
    orderingKey,
    state: keyState ? (await keyState.get(sub.record.id, orderingKey!)) ?? null : null,
  };
  const secretNames = secretHeaderNames(sub);
  const secrets = secretValues(sub, connector);
  const timeoutMs = sub.record.timeout_seconds ? sub.record.timeout_seconds * 1000 : deps.defaultTimeoutMs;
  const steps: AttemptStep[] = [];
  let request: OutboundRequest;
  try {
    request = connector.buildRequest(ctx);
  } catch (err) {
    attempt.error = `connector ${connector.name} could not build the request: ${(err as Error).message}`;
    return { attempt, verdict: { outcome: 'fail', reason: attempt.error } };
  }

  for (let step = 0; step < MAX_STEPS; step++) {
    const headers: Record<string, string> = { 'user-agent': deps.userAgent, ...request.headers };
    if (request.sign && request.body !== null) {
      Object.assign(headers, buildSignatureHeaders({
        msgId: delivery.msg_id,
        deliveryId: delivery.id,
        eventName: claimed.event.event,
        timestampSeconds: Math.floor(now / 1000),
        body: request.body,
        secrets: signingSecrets(sub, now),
      }));
    }
    const result = await deps.http.send({ ...request, headers }, timeoutMs);
    const record: AttemptStep = {
      name: request.step ?? connector.name,
      method: request.method,
      url: request.sign ? request.url : loggableUrl(request.url, connector),
      request_headers: maskHeaders(headers, [...secretNames, ...SIGNATURE_HEADERS, ...(request.sign ? [] : ['authorization'])]),
      request_body: request.body,
      response_status: result.ok ? result.response.status : null,
      response_headers: result.ok ? result.response.headers : null,
      response_body: result.ok ? result.response.body : null,
      latency_ms: result.latencyMs,
      error: result.ok ? null : result.error,
    };
    if (connector.url === 'none') record.url = loggableUrl(request.url, connector);
    record.url = scrub(record.url, secrets)!;
    record.request_body = scrub(record.request_body, secrets);
    record.error = scrub(record.error, secrets);
    record.response_body = scrub(record.response_body, secrets);
    for (const [name, value] of Object.entries(record.response_headers ?? {})) record.response_headers![name] = scrub(value, secrets)!;
    for (const [name, value] of Object.entries(record.request_headers)) record.request_headers[name] = scrub(value, secrets)!;
    steps.push(record);
    let verdict: Verdict;
    let retryAfterMs: number | undefined;
    if (!result.ok) {
      verdict = result.code === 'ESSRF' ? { outcome: 'fail', reason: result.error } : { outcome: 'retry', reason: result.error };
    } else {
      verdict = connector.classifyResponse(result.response, ctx, request);
      retryAfterMs = parseRetryAfter(result.response.headers['retry-after'], new Date(now));
    }
    if (verdict.outcome === 'continue') {
      request = verdict.next;
      continue;
    }
    // Vendors may echo a credential in their error text, and reasons are logged and shown.
    if ('reason' in verdict) verdict.reason = scrub(verdict.reason, secrets)!;
    const outcome = finish(attempt, steps, verdict, retryAfterMs);
    // Kept before the delivery is recorded as done: the next delivery of the key, which cannot
    // start before that, sees it.
    if (verdict.outcome === 'success' && verdict.state !== undefined && keyState) {
      try {
        await keyState.set(sub.record.id, orderingKey!, verdict.state);
      } catch (err) {
        attempt.error = `delivered, but what the connector keeps for key ${JSON.stringify(orderingKey)} could not be stored: ${(err as Error).message}`;
      }
    }
    return outcome;
  }
  return finish(attempt, steps, { outcome: 'fail', reason: `connector ${connector.name} exceeded ${MAX_STEPS} requests in one attempt` });
}

function finish(attempt: AttemptRecord, steps: AttemptStep[], verdict: FinalVerdict, retryAfterMs?: number): DispatchResult {
  const last = steps[steps.length - 1];
  Object.assign(attempt, {
    method: last.method,
    url: last.url,
    request_headers: last.request_headers,
    request_body: last.request_body,
    response_status: last.response_status,
    response_headers: last.response_headers,
    response_body: last.response_body,
    latency_ms: Math.round(steps.reduce((sum, s) => sum + s.latency_ms, 0) * 100) / 100,
    error: verdict.outcome === 'success' ? null : last.error ?? verdict.reason,
    steps: steps.length > 1 ? steps : null,
  });
  const minDelay = verdict.outcome === 'retry' ? verdict.minDelayMs : undefined;
  const delay = minDelay !== undefined || retryAfterMs !== undefined ? Math.max(minDelay ?? 0, retryAfterMs ?? 0) : undefined;
  return { attempt, verdict, retryAfterMs: delay };
}
