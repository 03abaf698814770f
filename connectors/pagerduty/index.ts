import { createHash } from 'node:crypto';
import type { ConnectorContext, ConnectorDefinition, OutboundRequest, Verdict } from '../../src/delivery/connector.ts';
import type { OrderingPolicy } from '../../src/storage/types.ts';
import { PAGERDUTY_DEDUP_KEY_EXPRESSION } from './dedup-key-expression.ts';

export { PAGERDUTY_DEDUP_KEY_EXPRESSION };
import { fitEvent } from './fit-event.ts';

/**
 * PagerDuty Events API v2: one POST to /v2/enqueue per delivery. The template
 * (mappings/pagerduty/default.jsonata) builds `payload` and `links`; this module adds the
 * routing key, the action (trigger, or resolve for the subscription's resolve_events) and
 * a dedup_key derived from the event, then reads PagerDuty's answer.
 */

export const PAGERDUTY_EVENTS_BASE_URL = 'https://events.pagerduty.com';
export const DEFAULT_RESOLVE_EVENTS: readonly string[] = Object.freeze(['signal.resolved']);
/** PagerDuty sends no Retry-After; its advice is to wait about 30 s before retrying a 429. */
export const RATE_LIMIT_FLOOR_MS = 30_000;

const SEVERITIES = ['critical', 'error', 'warning', 'info'];
const ACTIONS = ['trigger', 'acknowledge', 'resolve'];
const MAX_SUMMARY = 1_024;
const MAX_DEDUP_KEY = 255;
/** What a template may put beside `payload` in a trigger; anything else is not sent. */
const TRIGGER_FIELDS = ['payload', 'links', 'images', 'client', 'client_url'];

type EventInfo = Pick<ConnectorContext['event'], 'id' | 'event' | 'data'>;

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/**
 * The dedup_key of an event: stable across retries and replays (it never depends on the
 * delivery or the attempt), and the same for a signal's trigger and its resolve.
 * - `signal.resolved`: `sluice-<conversation_id>-<signal_type>`
 * - `signal.<type>` with a conversation_id: `sluice-<conversation_id>-<type>` (the same key)
 * - `sluice.delivery.failed`: `sluice-<subscription_id>-delivery_failed`, one open alert per
 *   broken destination however many deliveries fail
 * - `sluice.webhook.disabled`: `sluice-<subscription_id>-webhook_disabled`
 * - anything else: `sluice-<event id>`
 * A key longer than PagerDuty's 255 characters becomes `sluice-sha256-<hex of the key>`.
 */
export function pagerDutyDedupKey(event: EventInfo): string {
  const data = (event.data && typeof event.data === 'object' ? event.data : {}) as Record<string, unknown>;
  const conversation = str(data.conversation_id);
  const subscription = str(data.subscription_id);
  let key = `sluice-${event.id}`;
  if (event.event === 'signal.resolved') {
    const signalType = str(data.signal_type);
    if (conversation && signalType) key = `sluice-${conversation}-${signalType}`;
  } else if (event.event.startsWith('signal.') && conversation) {
    key = `sluice-${conversation}-${event.event.slice('signal.'.length)}`;
  } else if (event.event === 'sluice.delivery.failed' && subscription) {
    key = `sluice-${subscription}-delivery_failed`;
  } else if (event.event === 'sluice.webhook.disabled' && subscription) {
    key = `sluice-${subscription}-webhook_disabled`;
  }
  return key.length <= MAX_DEDUP_KEY ? key : `sluice-sha256-${createHash('sha256').update(key).digest('hex')}`;
}

/**
 * Deliveries with the same dedup_key go one at a time, in the order their events were accepted:
 * a trigger that is being retried holds its resolve back, so the resolve can never arrive first
 * (PagerDuty drops a resolve for a key with no open alert) and leave the incident open forever.
 */
export const PAGERDUTY_ORDERING: OrderingPolicy = Object.freeze({ key: PAGERDUTY_DEDUP_KEY_EXPRESSION, on_failure: 'continue' });

export function enqueueUrl(options: Record<string, unknown>): string {
  const base = typeof options.api_base_url === 'string' ? options.api_base_url : PAGERDUTY_EVENTS_BASE_URL;
  return `${base.replace(/\/+$/, '')}/v2/enqueue`;
}

function resolveEvents(options: Record<string, unknown>): readonly string[] {
  return Array.isArray(options.resolve_events) ? (options.resolve_events as string[]) : DEFAULT_RESOLVE_EVENTS;
}

/** The delivery's page in the dashboard, when SLUICE_PUBLIC_URL says where the dashboard is. */
export function dashboardDeliveryUrl(publicUrl: string | undefined, deliveryId: string): string | undefined {
  return publicUrl ? `${publicUrl.replace(/\/+$/, '')}/#/deliveries/${encodeURIComponent(deliveryId)}` : undefined;
}

/**
 * The Events API body: the template's fields plus routing_key, event_action, dedup_key and,
 * with SLUICE_PUBLIC_URL set, client_url (the delivery in the dashboard) unless the template
 * set its own; custom_details cut to fit PagerDuty's size limit (fit-event.ts).
 */
export function pagerDutyEvent(ctx: Pick<ConnectorContext, 'options' | 'payload' | 'event' | 'deliveryId' | 'publicUrl'>): Record<string, unknown> {
  const mapped = ctx.payload;
  if (!mapped || typeof mapped !== 'object' || Array.isArray(mapped)) {
    throw new Error('the template must produce an object with "payload" (summary, source, severity), as mappings/pagerduty/default.jsonata does');
  }
  const body = mapped as Record<string, unknown>;
  const action = body.event_action ?? (resolveEvents(ctx.options).includes(ctx.event.event) ? 'resolve' : 'trigger');
  if (typeof action !== 'string' || !ACTIONS.includes(action)) throw new Error(`event_action must be one of ${ACTIONS.join(', ')}, not ${JSON.stringify(action)}`);
  const dedupKey = body.dedup_key ?? pagerDutyDedupKey(ctx.event);
  if (typeof dedupKey !== 'string' || dedupKey === '' || dedupKey.length > MAX_DEDUP_KEY) {
    throw new Error(`dedup_key must be a string of 1 to ${MAX_DEDUP_KEY} characters`);
  }
  const event: Record<string, unknown> = { routing_key: ctx.options.routing_key, event_action: action, dedup_key: dedupKey };
  // Acknowledge and resolve carry only the key: they act on the alert the trigger opened.
  if (action !== 'trigger') return event;
  checkTriggerPayload(body.payload);
  for (const field of TRIGGER_FIELDS) if (body[field] !== undefined) event[field] = body[field];
  const clientUrl = dashboardDeliveryUrl(ctx.publicUrl, ctx.deliveryId);
  if (clientUrl && event.client_url === undefined) {
    event.client ??= 'Sluice';
    event.client_url = clientUrl;
  }
  return fitEvent(event);
}

/** PagerDuty would refuse these with a 400; saying so here names the template as the cause. */
function checkTriggerPayload(payload: unknown): void {
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) throw new Error('the template produced no "payload" object');
  const { summary, source, severity } = payload as Record<string, unknown>;
  if (typeof summary !== 'string' || summary === '') throw new Error('payload.summary must be a non-empty string');
  if (Array.from(summary).length > MAX_SUMMARY) throw new Error(`payload.summary is longer than PagerDuty's ${MAX_SUMMARY} characters; cut it with $truncate(…, ${MAX_SUMMARY})`);
  if (typeof source !== 'string' || source === '') throw new Error('payload.source must be a non-empty string');
  if (typeof severity !== 'string' || !SEVERITIES.includes(severity)) {
    throw new Error(`payload.severity must be one of ${SEVERITIES.join(', ')}, not ${JSON.stringify(severity)}`);
  }
}

/** `{"status":"invalid event","message":"Event object is invalid","errors":["…"]}` in words. */
function pagerDutyError(body: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return body.trim().slice(0, 300) || '(empty body)';
  }
  const { status, message, errors } = (parsed && typeof parsed === 'object' ? parsed : {}) as Record<string, unknown>;
  const parts = [str(status), str(message)].filter(Boolean).join(': ');
  const list = Array.isArray(errors) ? errors.filter((e): e is string => typeof e === 'string') : [];
  return ([parts, list.join('; ')].filter(Boolean).join(': ') || body.trim().slice(0, 300)).slice(0, 1_000);
}

export const pagerDutyConnector: ConnectorDefinition = {
  name: 'pagerduty',
  title: 'PagerDuty',
  description: 'Events API v2 alerts: trigger on events, resolve on resolving events, deduplicated and ordered by dedup_key, so retries never open a second incident and a resolve never overtakes its trigger.',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['routing_key'],
    properties: {
      routing_key: {
        type: 'string',
        title: 'Integration key',
        description: 'The 32-character Integration Key of an "Events API V2" integration on a PagerDuty service (or of an event orchestration); a secret.',
        minLength: 32,
        maxLength: 32,
        pattern: '^[A-Za-z0-9]+$',
        errorMessage: 'must be the 32-character Integration Key of an Events API V2 integration',
      },
      resolve_events: {
        type: 'array',
        title: 'Resolving events',
        description: 'Event types sent as "resolve" with the dedup_key their trigger used.',
        default: [...DEFAULT_RESOLVE_EVENTS],
        maxItems: 100,
        uniqueItems: true,
        items: { type: 'string', minLength: 1, maxLength: 200 },
      },
      api_base_url: {
        type: 'string',
        title: 'Events API base URL',
        description: 'https://events.pagerduty.com, or https://events.eu.pagerduty.com for EU accounts.',
        default: PAGERDUTY_EVENTS_BASE_URL,
        pattern: '^https?://[^\\s]+$',
        maxLength: 2048,
      },
    },
  },
  secretOptions: ['routing_key'],
  url: 'none',
  urlIsSecret: false,
  defaultMapping: 'pagerduty/default',
  subscriptionDefaults: { ordering: PAGERDUTY_ORDERING },
  resolveUrl: enqueueUrl,
  buildRequest(ctx): OutboundRequest {
    const own = { 'content-type': 'application/json' };
    const custom = Object.fromEntries(Object.entries(ctx.headers).filter(([name]) => name.toLowerCase() !== 'content-type'));
    return {
      method: 'POST',
      url: enqueueUrl(ctx.options),
      headers: { ...custom, ...own },
      body: JSON.stringify(pagerDutyEvent(ctx)),
      sign: false,
    };
  },
  classifyResponse(response): Verdict {
    const { status } = response;
    if (status >= 200 && status <= 299) return { outcome: 'success' };
    if (status === 429) {
      return { outcome: 'retry', reason: 'PagerDuty rate limit (429): the event was not ingested; retrying in 30 s or later', minDelayMs: RATE_LIMIT_FLOOR_MS };
    }
    if (status === 408 || (status >= 500 && status <= 599)) return { outcome: 'retry', reason: `PagerDuty answered ${status}` };
    if (status === 400) return { outcome: 'fail', reason: `PagerDuty rejected the event (400): ${pagerDutyError(response.body)}` };
    return { outcome: 'fail', reason: `PagerDuty answered ${status}: ${pagerDutyError(response.body)}` };
  },
};
