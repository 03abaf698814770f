import { ConflictError, ValidationError, type ErrorDetail } from '../errors.ts';
import { newId } from '../core/ids.ts';
import { eventMatches } from '../core/event-match.ts';
import { eventEnvelopeSchema, fieldsOf } from '../core/api-schemas.ts';
import { ORDER_ALL, orderingExpression, plainKeyPath, readPlainKey, type RouteResult } from '../core/ordering.ts';
import type { ClaimedDelivery, DeliveryRecord, EventRecord, IngestItem, IngestResult, Storage } from '../storage/types.ts';
import type { PostedFields } from '../core/request-hash.ts';
import { GroupCommit } from './group-commit.ts';
import type { RuntimeSubscription } from './subscriptions.ts';
import type { Logger } from '../logger.ts';

export interface EventEnvelope {
  event: string;
  id: string;
  timestamp: string;
  data: unknown;
}

export interface IngestDeps {
  storage: Storage;
  validateData: (eventName: string, data: unknown) => ErrorDetail[] | 'unknown_event';
  subscriptions: () => Promise<Map<string, RuntimeSubscription>>;
  /**
   * Evaluates a subscription's JSONata filter and ordering key on the envelope, in one evaluation
   * (either may be null, not both): whether it matches, and the key's value. Throws when the
   * filter fails (the event then does not match).
   */
  route: (envelope: EventEnvelope, sub: RuntimeSubscription, expressions: { filter: string | null; key: string | null }) => Promise<RouteResult>;
  /**
   * Told about new deliveries after they committed: `pending` ones for the worker to claim,
   * `preclaimed` ones that were stored already leased to it and start at once, and how many
   * were `held` back for a saturated destination (the worker's poll claims them when it has room).
   */
  onDeliveriesCreated: (created: { pending: string[]; preclaimed: ClaimedDelivery[]; held: number }) => void;
  /** Told how many posted events were newly stored (duplicates not counted). */
  onEventsAccepted?: (count: number) => void;
  /**
   * Lets deliveries due now be stored already leased to the worker (when it has room), which
   * saves a claim transaction and a read per delivery on the hot path.
   */
  preclaim?: DeliveryPreclaim;
  logger: Logger;
  now?: () => number;
}

export interface DeliveryPreclaim {
  /** Reserves up to `wanted` worker slots; returns how many, and the lease they run under. */
  reserve(wanted: number): { count: number; leaseUntil: number };
  /** Gives back slots that were reserved but not used (duplicates, a failed commit). */
  release(count: number): void;
  /** The subscription's destination is saturated: its new deliveries stay pending, not preclaimed. */
  isSaturated?(subscriptionId: string): boolean;
}

export interface AcceptedEvent {
  id: string;
  event: string;
  deliveries: { id: string; subscription_id: string }[];
  duplicate: boolean;
}

const ENVELOPE_FIELDS = new Set(fieldsOf(eventEnvelopeSchema));
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,254}$/;

/**
 * Operational events are only delivered to subscriptions that name them (`sluice.*` or an
 * exact name), never to a bare `*`: a catch-all destination must not get a feedback loop.
 */
function subscribes(sub: RuntimeSubscription, eventName: string): boolean {
  const internal = eventName.startsWith('sluice.');
  return sub.record.events.some((pattern) => (internal && pattern === '*' ? false : eventMatches(pattern, eventName)));
}

export class IngestService {
  readonly #deps: IngestDeps;
  readonly #now: () => number;
  readonly #commit: GroupCommit<IngestItem, IngestResult>;

  constructor(deps: IngestDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#commit = new GroupCommit((items) => deps.storage.ingest(items));
  }

  /**
   * Checks one envelope; returns the normalized event or the problems, paths rooted at `root`,
   * and a hash of the fields as posted (before defaults), to tell a repeat from a conflict.
   */
  parseEnvelope(body: unknown, root: string): { envelope?: EventEnvelope; posted?: PostedFields; errors: ErrorDetail[] } {
    if (!body || typeof body !== 'object' || Array.isArray(body)) return { errors: [{ path: root, message: 'must be a JSON object {event, id?, timestamp?, data}' }] };
    const input = body as Record<string, unknown>;
    const errors: ErrorDetail[] = [];
    for (const key of Object.keys(input)) if (!ENVELOPE_FIELDS.has(key)) errors.push({ path: `${root}.${key}`, message: 'is not a known field (expected event, id, timestamp, data)' });
    if (typeof input.event !== 'string' || !input.event) errors.push({ path: `${root}.event`, message: 'is required: the event type, e.g. "call.ended"' });
    if (input.id !== undefined && (typeof input.id !== 'string' || !ID_PATTERN.test(input.id))) errors.push({ path: `${root}.id`, message: 'must be 1-255 characters of letters, digits, _ . : -' });
    if (input.timestamp !== undefined && (typeof input.timestamp !== 'string' || Number.isNaN(Date.parse(input.timestamp)))) errors.push({ path: `${root}.timestamp`, message: 'must be an ISO-8601 date-time' });
    if (input.data === undefined) errors.push({ path: `${root}.data`, message: 'is required' });
    if (errors.length) return { errors };
    const eventName = input.event as string;
    // Operational events come from the gateway alone: a posted one would be a forged alert.
    if (eventName.startsWith('sluice.')) return { errors: [{ path: `${root}.event`, message: `"${eventName}" is reserved for the gateway's own operational events` }] };
    const verdict = this.#deps.validateData(eventName, input.data);
    if (verdict === 'unknown_event') return { errors: [{ path: `${root}.event`, message: `"${eventName}" is not an event type in the catalog (see GET /api/v1/event-types)` }] };
    if (verdict.length) return { errors: verdict.map((d) => ({ ...d, path: d.path?.replace(/^\$/, root) })) };
    return {
      errors,
      posted: { id: input.id !== undefined, timestamp: input.timestamp !== undefined },
      envelope: {
        event: eventName,
        id: (input.id as string | undefined) ?? newId('evt', this.#now()),
        timestamp: (input.timestamp as string | undefined) ?? new Date(this.#now()).toISOString(),
        data: input.data,
      },
    };
  }

  /** Validates and durably stores events with their deliveries; resolves after the commit. */
  async accept(bodies: unknown[], options: { idempotencyKey?: string; test?: boolean; rootPath?: (i: number) => string } = {}): Promise<AcceptedEvent[]> {
    const envelopes: EventEnvelope[] = [];
    const posted: PostedFields[] = [];
    const errors: ErrorDetail[] = [];
    bodies.forEach((body, i) => {
      const parsed = this.parseEnvelope(body, options.rootPath?.(i) ?? '$');
      if (parsed.envelope) envelopes.push(parsed.envelope);
      if (parsed.posted) posted.push(parsed.posted);
      errors.push(...parsed.errors);
    });
    if (errors.length) throw new ValidationError(bodies.length > 1 ? 'Some events are invalid; none were accepted.' : 'The event is invalid.', errors, 'invalid_event');
    let accepted: AcceptedEvent[];
    try {
      accepted = await this.store(envelopes, { ...options, posted });
    } catch (err) {
      // Storage names the event by id; say where it sits in the request.
      if (!(err instanceof ConflictError) || err.code !== 'event_id_conflict' || !options.rootPath) throw err;
      const index = envelopes.findIndex((e) => e.id === err.details[0]?.id);
      throw new ConflictError(err.code, err.message, [{ ...err.details[0], path: `${options.rootPath(index)}.id` }]);
    }
    const fresh = accepted.filter((a) => !a.duplicate).length;
    if (fresh) this.#deps.onEventsAccepted?.(fresh);
    return accepted;
  }

  /** Fans out and stores already-validated envelopes (also used for the gateway's own events). */
  async store(envelopes: EventEnvelope[], options: { idempotencyKey?: string; test?: boolean; onlySubscription?: string; notify?: boolean; posted?: PostedFields[] } = {}): Promise<AcceptedEvent[]> {
    const now = this.#now();
    const subscriptions = await this.#deps.subscriptions();
    const items: IngestItem[] = [];
    for (const envelope of envelopes) {
      const record: EventRecord = {
        id: envelope.id,
        event: envelope.event,
        timestamp: envelope.timestamp,
        data: envelope.data,
        received_at: now,
        idempotency_key: envelopes.length === 1 ? options.idempotencyKey ?? null : null,
        test: options.test ?? false,
      };
      items.push({ event: record, deliveries: await this.#fanOut(envelope, subscriptions, now, options.onlySubscription), posted: options.posted?.[items.length] });
    }
    const notify = options.notify !== false;
    const reserved = notify ? this.#preclaim(items, now) : 0;
    let results: IngestResult[];
    try {
      results = await this.#commit.submit(items);
    } catch (err) {
      if (reserved) this.#deps.preclaim!.release(reserved);
      throw err;
    }
    const pending: string[] = [];
    const preclaimed: ClaimedDelivery[] = [];
    let held = 0;
    results.forEach((result, i) => {
      if (result.duplicate) return;
      for (const delivery of items[i].deliveries) {
        if (delivery.status === 'delivering') preclaimed.push({ delivery, event: items[i].event });
        else if (this.#deps.preclaim?.isSaturated?.(delivery.subscription_id)) held++;
        else pending.push(delivery.id);
      }
    });
    if (reserved > preclaimed.length) this.#deps.preclaim!.release(reserved - preclaimed.length);
    if (notify && (pending.length || preclaimed.length || held)) this.#deps.onDeliveriesCreated({ pending, preclaimed, held });
    return results.map((r) => ({ id: r.event_id, event: r.event, deliveries: r.deliveries, duplicate: r.duplicate }));
  }

  /** Marks deliveries due now as leased, as far as the worker has room; returns how many. */
  #preclaim(items: IngestItem[], now: number): number {
    if (!this.#deps.preclaim) return 0;
    // An ordered delivery may have to wait for an earlier one of its key: the claim decides that.
    const preclaimable = (d: DeliveryRecord) => d.next_attempt_at <= now && !d.ordering_key && !this.#deps.preclaim?.isSaturated?.(d.subscription_id);
    const due = items.reduce((n, item) => n + item.deliveries.filter(preclaimable).length, 0);
    if (!due) return 0;
    const { count, leaseUntil } = this.#deps.preclaim.reserve(due);
    let left = count;
    for (const item of items) {
      for (const delivery of item.deliveries) {
        if (left === 0) return count;
        if (!preclaimable(delivery)) continue;
        delivery.status = 'delivering';
        delivery.lease_until = leaseUntil;
        left--;
      }
    }
    return count;
  }

  readonly #plainPaths = new Map<string, string[] | undefined>();

  #plainPath(expression: string): string[] | undefined {
    if (!this.#plainPaths.has(expression)) {
      if (this.#plainPaths.size >= 1_000) this.#plainPaths.clear();
      this.#plainPaths.set(expression, plainKeyPath(expression));
    }
    return this.#plainPaths.get(expression);
  }

  async #fanOut(envelope: EventEnvelope, subscriptions: Map<string, RuntimeSubscription>, now: number, only?: string): Promise<DeliveryRecord[]> {
    const deliveries: DeliveryRecord[] = [];
    for (const sub of subscriptions.values()) {
      if (only ? sub.record.id !== only : !sub.record.enabled || !subscribes(sub, envelope.event)) continue;
      // Test sends (`only`) are neither filtered nor ordered.
      const filter = only ? null : sub.record.filter;
      let keyExpression = only ? null : orderingExpression(sub.record.ordering);
      let orderingKey: string | null = !only && sub.record.ordering?.key === ORDER_ALL ? ORDER_ALL : null;
      // A plain path (`data.conversation_id`) without a filter is read here: no evaluator round trip.
      const plain = keyExpression && !filter ? this.#plainPath(keyExpression) : undefined;
      const read = plain ? readPlainKey(envelope, plain) : undefined;
      if (read) {
        orderingKey = read.key;
        keyExpression = null;
      }
      if (filter || keyExpression) {
        try {
          const routed = await this.#deps.route(envelope, sub, { filter, key: keyExpression });
          if (!routed.matches) continue;
          if (keyExpression) orderingKey = routed.key;
          // A key that fails on this event leaves it unordered; the reason is logged.
          if (routed.key_error) this.#deps.logger.warn({ subscription_id: sub.record.id, event_id: envelope.id, err: routed.key_error }, 'ordering key failed; event delivered unordered to this subscription');
        } catch (err) {
          // A filter that fails on this event does not match it; the reason is logged.
          this.#deps.logger.warn({ subscription_id: sub.record.id, event_id: envelope.id, err: (err as Error).message }, 'filter failed; event not delivered to this subscription');
          continue;
        }
      }
      deliveries.push({
        id: newId('dlv', now),
        event_id: envelope.id,
        subscription_id: sub.record.id,
        event: envelope.event,
        msg_id: newId('msg', now),
        status: 'pending',
        attempts: 0,
        chain: 1,
        // The schedule's first entry is the delay before the first attempt (normally 0s).
        next_attempt_at: only ? now : now + (sub.schedule[0] ?? 0),
        lease_until: null,
        created_at: now,
        updated_at: now,
        last_attempt_at: null,
        last_status_code: null,
        last_error: null,
        ordering_key: orderingKey,
        sequence: null,
      });
    }
    return deliveries;
  }
}
