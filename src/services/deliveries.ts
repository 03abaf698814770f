import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import type { AttemptRecord, DeliveryRecord, DeliveryStatus, OrderingBlocker, Storage } from '../storage/types.ts';
import type { IngestService } from './ingest.ts';
import { fieldsOf, replayRequestSchema } from '../core/api-schemas.ts';
import type { SubscriptionService } from './subscriptions.ts';

/** The statuses the API shows and filters by; a paused delivery is `pending` with `paused: true`. */
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'delivering', 'delivered', 'failed', 'cancelled'];

export interface DeliveryServiceDeps {
  storage: Storage;
  subscriptions: SubscriptionService;
  ingest: IngestService;
  /** A sample event for a subscribed pattern: the catalog's example of the first matching type. */
  sampleEvent: (patterns: string[], requested?: string) => { event: string; data: unknown } | undefined;
  /** Replayed deliveries (and deliveries a skip lets go) are due now; tell the worker. */
  onReplayed: (deliveryIds: string[]) => void;
  /** Run one stored delivery at once and return its attempt (test sends). */
  runNow: (deliveryId: string) => Promise<AttemptRecord | undefined>;
  /** Most deliveries one bulk replay call queues (SLUICE_REPLAY_LIMIT). */
  replayLimit: number;
  now?: () => number;
}

/** Replayed per transaction: between two, ingest and the API get the event loop and the database. */
const REPLAY_CHUNK = 500;

/** Most blocked keys one listing shows. */
const BLOCKED_KEYS_LIMIT = 1_000;

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/** What an ordered delivery waits for, in the log's words. */
function waitingFor(blocker: OrderingBlocker | undefined): Record<string, unknown> | null {
  if (!blocker) return null;
  const reason = blocker.status === 'delivering'
    ? 'the delivery of the same key in flight'
    : blocker.blocks_key
      ? 'a failed delivery of the same key that blocks it (on_failure: block): replay or skip it'
      : blocker.status === 'paused'
        ? 'an earlier delivery of the same key, paused with its subscription'
        : 'an earlier delivery of the same key, not finished yet';
  return { delivery_id: blocker.delivery_id, status: blocker.status === 'paused' || blocker.status === 'waiting' ? 'pending' : blocker.status, reason };
}

export function presentDelivery(d: DeliveryRecord, blocker?: OrderingBlocker): Record<string, unknown> {
  const waiting = d.status === 'pending' || d.status === 'paused' || d.status === 'waiting';
  return {
    id: d.id,
    event_id: d.event_id,
    subscription_id: d.subscription_id,
    event: d.event,
    webhook_id: d.msg_id,
    status: waiting ? 'pending' : d.status,
    // Waiting for its subscription to be enabled again.
    paused: d.status === 'paused',
    attempt_count: d.attempts,
    chain: d.chain,
    // Ordered delivery: the key's value (null: unordered), what it waits for, whether it blocks its key.
    ordering_key: d.ordering_key ?? null,
    waiting_for: waiting ? waitingFor(blocker) : null,
    blocks_key: d.blocks_key === true,
    replay_of: d.replay_of ?? null,
    next_attempt_at: d.status === 'pending' || d.status === 'paused' ? iso(d.next_attempt_at) : null,
    last_attempt_at: iso(d.last_attempt_at),
    last_status_code: d.last_status_code,
    last_error: d.last_error,
    last_latency_ms: d.last_latency_ms ?? null,
    created_at: iso(d.created_at),
    updated_at: iso(d.updated_at),
  };
}

export function presentAttempt(a: AttemptRecord): Record<string, unknown> {
  return {
    id: a.id,
    chain: a.chain,
    number: a.number,
    started_at: iso(a.started_at),
    outcome: a.outcome,
    latency_ms: a.latency_ms,
    request: { method: a.method, url: a.url, headers: a.request_headers, body: a.request_body },
    response: a.response_status === null ? null : { status: a.response_status, headers: a.response_headers, body: a.response_body },
    error: a.error,
    steps: a.steps,
  };
}

export interface ListQuery {
  status?: unknown;
  event?: unknown;
  limit?: unknown;
  cursor?: unknown;
}

function parseTime(value: unknown, path: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const t = typeof value === 'number' ? value * 1000 : Date.parse(String(value));
  if (Number.isNaN(t)) throw new ValidationError('Invalid time.', [{ path, message: 'must be an ISO-8601 date-time or unix seconds' }]);
  return t;
}

function parseStatus(value: unknown, path: string): DeliveryStatus | undefined {
  if (value === undefined || value === '') return undefined;
  if (!DELIVERY_STATUSES.includes(value as DeliveryStatus)) throw new ValidationError('Invalid status.', [{ path, message: `must be one of ${DELIVERY_STATUSES.join(', ')}` }]);
  return value as DeliveryStatus;
}

/** The delivery log, replay and test sends. */
export class DeliveryService {
  readonly #deps: DeliveryServiceDeps;
  readonly #now: () => number;

  constructor(deps: DeliveryServiceDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  async list(subscriptionId: string | undefined, query: ListQuery): Promise<{ data: Record<string, unknown>[]; next_cursor: string | null }> {
    if (subscriptionId) await this.#deps.subscriptions.get(subscriptionId);
    const limit = query.limit === undefined ? 50 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new ValidationError('Invalid limit.', [{ path: 'query.limit', message: 'must be an integer from 1 to 100' }]);
    const cursor = query.cursor ? String(query.cursor) : undefined;
    const rows = await this.#deps.storage.listDeliveries({
      subscription_id: subscriptionId,
      status: parseStatus(query.status, 'query.status'),
      event: query.event ? String(query.event) : undefined,
      limit: limit + 1,
      cursor,
    });
    const page = rows.slice(0, limit);
    return { data: await this.#present(page), next_cursor: rows.length > limit ? page[page.length - 1].id : null };
  }

  /** Deliveries as the API shows them, with what each waiting ordered one waits for. */
  async #present(deliveries: DeliveryRecord[]): Promise<Record<string, unknown>[]> {
    const waiting = deliveries.filter((d) => d.ordering_key && (d.status === 'pending' || d.status === 'paused' || d.status === 'waiting')).map((d) => d.id);
    const blockers = waiting.length ? await this.#deps.storage.orderingBlockers(waiting) : new Map<string, OrderingBlocker>();
    return deliveries.map((d) => presentDelivery(d, blockers.get(d.id)));
  }

  async #presentOne(id: string): Promise<Record<string, unknown>> {
    const delivery = await this.#deps.storage.getDelivery(id);
    if (!delivery) throw new NotFoundError('Delivery', id);
    return (await this.#present([delivery]))[0];
  }

  async get(id: string): Promise<Record<string, unknown>> {
    const delivery = await this.#deps.storage.getDelivery(id);
    if (!delivery) throw new NotFoundError('Delivery', id);
    const [attempts, event, [presented]] = await Promise.all([this.#deps.storage.listAttempts(id), this.#deps.storage.getEvent(delivery.event_id), this.#present([delivery])]);
    return {
      ...presented,
      payload: event ? { event: event.event, id: event.id, timestamp: event.timestamp, data: event.data, ...(event.test ? { test: true } : {}) } : null,
      attempts: attempts.map(presentAttempt),
    };
  }

  async replay(id: string): Promise<Record<string, unknown>> {
    const delivery = await this.#deps.storage.getDelivery(id);
    if (!delivery) throw new NotFoundError('Delivery', id);
    const sub = await this.#deps.storage.getSubscription(delivery.subscription_id);
    if (!sub) throw new ConflictError('subscription_deleted', 'The subscription of this delivery was deleted; it cannot be replayed.');
    const [replayed] = await this.#deps.storage.replayDeliveries([id], this.#now());
    if (!replayed) throw new ConflictError('delivery_in_flight', 'This delivery is being attempted right now; replay it once the attempt finished.');
    this.#deps.onReplayed([replayed.queued]);
    // An earlier delivery of an ordered key goes to the end of its key's queue, as a new delivery.
    const asNew = replayed.queued !== id;
    return {
      ...(await this.#presentOne(replayed.queued)),
      replayed_as_new_delivery: asNew,
      ...(asNew ? { note: `Delivery ${id} belongs to ordering key ${JSON.stringify(delivery.ordering_key)}: its replay is the new delivery ${replayed.queued}, sent after every delivery of that key queued before it.` } : {}),
    };
  }

  /**
   * Lets the key a failed delivery blocks (`on_failure: block`) go on without it: the delivery
   * stays failed (a dead letter, replayable later at the end of the key's queue), and the next
   * delivery of its key starts.
   */
  async skip(id: string): Promise<Record<string, unknown>> {
    const delivery = await this.#deps.storage.getDelivery(id);
    if (!delivery) throw new NotFoundError('Delivery', id);
    const { skipped, woken } = await this.#deps.storage.skipBlocked(id, this.#now());
    if (!skipped) {
      throw new ConflictError('not_blocking', 'This delivery does not block its ordering key: only a failed delivery of a subscription with ordering.on_failure "block" can be skipped.', [
        { path: 'path:id', message: delivery.ordering_key ? `is ${delivery.status} and does not block key ${JSON.stringify(delivery.ordering_key)}` : 'is not an ordered delivery' },
      ]);
    }
    if (woken.length) this.#deps.onReplayed(woken);
    return this.#presentOne(id);
  }

  /** The subscription's keys stopped by a failed delivery (`on_failure: block`). */
  async blockedKeys(subscriptionId: string): Promise<{ data: Record<string, unknown>[] }> {
    await this.#deps.subscriptions.get(subscriptionId);
    const keys = await this.#deps.storage.listBlockedKeys(subscriptionId, BLOCKED_KEYS_LIMIT);
    return {
      data: keys.map((k) => ({
        ordering_key: k.ordering_key,
        blocked_since: iso(k.delivery.updated_at),
        waiting: k.waiting,
        delivery: presentDelivery(k.delivery),
      })),
    };
  }

  /**
   * Replays the subscription's deliveries matching the filters, at most `replayLimit` per call,
   * in id order. `next_cursor` (the last id looked at) continues the same selection when more
   * may match; null when this call reached the end. `delivery_ids` are the deliveries queued;
   * `replayed_as_new` maps each earlier delivery of an ordered key to the new one queued for it.
   */
  async replayBulk(subscriptionId: string, body: unknown): Promise<{ replayed: number; delivery_ids: string[]; replayed_as_new: Record<string, string>; next_cursor: string | null }> {
    await this.#deps.subscriptions.get(subscriptionId);
    const input = (body ?? {}) as Record<string, unknown>;
    if (typeof input !== 'object' || Array.isArray(input)) throw new ValidationError('Invalid replay request.', [{ path: '$', message: 'must be a JSON object' }]);
    const known = fieldsOf(replayRequestSchema);
    const unknown = Object.keys(input).filter((k) => !known.includes(k));
    if (unknown.length) throw new ValidationError('Invalid replay request.', unknown.map((k) => ({ path: `$.${k}`, message: `is not a known field (${known.join(', ')})` })));
    if (input.cursor !== undefined && (typeof input.cursor !== 'string' || !/^dlv_[0-9A-Za-z]+$/.test(input.cursor))) {
      throw new ValidationError('Invalid replay request.', [{ path: '$.cursor', message: 'must be the next_cursor of a previous replay answer' }]);
    }
    const limit = this.#deps.replayLimit;
    const ids = await this.#deps.storage.findDeliveriesForReplay({
      subscription_id: subscriptionId,
      status: parseStatus(input.status, '$.status'),
      since: parseTime(input.since, '$.since'),
      until: parseTime(input.until, '$.until'),
      event: input.event ? String(input.event) : undefined,
      after: input.cursor as string | undefined,
      limit,
    });
    const replayed: string[] = [];
    const asNew: Record<string, string> = {};
    for (let i = 0; i < ids.length; i += REPLAY_CHUNK) {
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      const chunk = await this.#deps.storage.replayDeliveries(ids.slice(i, i + REPLAY_CHUNK), this.#now());
      if (chunk.length) this.#deps.onReplayed(chunk.map((r) => r.queued));
      for (const r of chunk) {
        replayed.push(r.queued);
        if (r.queued !== r.id) asNew[r.id] = r.queued;
      }
    }
    return { replayed: replayed.length, delivery_ids: replayed, replayed_as_new: asNew, next_cursor: ids.length === limit ? ids[ids.length - 1] : null };
  }

  /** Sends a catalog example of a subscribed type, marked `"test": true`, and waits for the attempt. */
  async testSend(subscriptionId: string, body: unknown): Promise<Record<string, unknown>> {
    const sub = await this.#deps.subscriptions.get(subscriptionId);
    const requested = (body as { event?: unknown } | undefined)?.event;
    if (requested !== undefined && typeof requested !== 'string') throw new ValidationError('Invalid test request.', [{ path: '$.event', message: 'must be an event type name' }]);
    const sample = this.#deps.sampleEvent(sub.events, requested);
    if (!sample) {
      throw new ValidationError('No sample event matches.', [{ path: requested ? '$.event' : '$', message: requested ? `"${requested}" is not an event type this subscription receives` : 'the subscription matches no catalog event type' }]);
    }
    const [accepted] = await this.#deps.ingest.store(
      [{ event: sample.event, id: `evt_test_${this.#now().toString(36)}${Math.random().toString(36).slice(2, 8)}`, timestamp: new Date(this.#now()).toISOString(), data: sample.data }],
      { test: true, onlySubscription: subscriptionId, notify: false },
    );
    const deliveryId = accepted.deliveries[0]?.id;
    const attempt = deliveryId ? await this.#deps.runNow(deliveryId) : undefined;
    const delivery = deliveryId ? await this.#deps.storage.getDelivery(deliveryId) : undefined;
    return {
      event_id: accepted.id,
      event: accepted.event,
      delivery_id: deliveryId ?? null,
      status: delivery?.status ?? null,
      attempt: attempt ? presentAttempt(attempt) : null,
    };
  }
}
