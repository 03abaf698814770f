/**
 * The storage contract. SQLite and PostgreSQL each implement it; the shared conformance
 * suite in test/storage runs against both. Times are epoch milliseconds; JSON columns are
 * parsed objects here. Secrets arrive already sealed (see core/secret-box.ts).
 */
import { requestHash, type PostedFields } from '../core/request-hash.ts';

export type Role = 'ingest' | 'read' | 'admin';

export interface ApiKeyRecord {
  id: string;
  name: string | null;
  role: Role;
  /** The first characters of the key, shown in listings and used to look it up. */
  prefix: string;
  /** SHA-256 of the whole key, hex. */
  hash: string;
  created_at: number;
  revoked_at: number | null;
  /** Ingest quota: events per second this key may post (null: unlimited). */
  rate_limit?: number | null;
  /** Events the key may post at once above its rate (the token bucket's size). */
  rate_burst?: number | null;
}

/**
 * `paused`: pending, but its subscription is disabled; it is not claimed, and goes back to
 * `pending` when the subscription is enabled again (the API shows it as pending + paused).
 * `waiting`: pending, but set aside behind an unfinished delivery of its ordering key; it is not
 * claimed until that one finishes and wakes it (the API shows it as pending + waiting_for).
 */
export type DeliveryStatus = 'pending' | 'paused' | 'waiting' | 'delivering' | 'delivered' | 'failed' | 'cancelled';

/** What a permanent failure does to the deliveries queued behind it on its ordering key. */
export type OrderingFailurePolicy = 'continue' | 'block';

/**
 * Ordered delivery: deliveries of one subscription with the same key value are attempted one at
 * a time, in the order their events were accepted. `key` is a JSONata expression on the envelope,
 * or `*` (ORDER_ALL) for one order across the whole subscription.
 */
export interface OrderingPolicy {
  key: string;
  on_failure: OrderingFailurePolicy;
}

export interface RetryPolicy {
  schedule?: (number | string)[];
  max_attempts?: number;
}

export interface SubscriptionRecord {
  id: string;
  /** Optional, unique among live subscriptions: the key `sluice apply` matches on. */
  name?: string | null;
  url: string;
  events: string[];
  description: string | null;
  enabled: boolean;
  disabled_reason: string | null;
  /** Custom headers in clear (credential-like ones live in headers_sealed). */
  headers: Record<string, string>;
  /** Sealed JSON of the credential-like custom headers (`Authorization`, `X-Api-Key`, `*-Token`…), or null. */
  headers_sealed?: string | null;
  /** Sealed JSON of the auth object, or null. */
  auth_sealed: string | null;
  filter: string | null;
  mapping: string | null;
  connector: string;
  /** Non-secret connector options, as given. */
  connector_options: Record<string, unknown>;
  /** Sealed JSON of the connector's secret fields, or null. */
  connector_secrets_sealed: string | null;
  retry: RetryPolicy | null;
  /** Ordered delivery per key, or null (every delivery on its own). Left out by older callers: null. */
  ordering?: OrderingPolicy | null;
  timeout_seconds: number | null;
  rate_limit: number | null;
  secret_sealed: string;
  secret_prefix: string;
  previous_secret_sealed: string | null;
  previous_secret_expires_at: number | null;
  /** Where it came from: the subscriptions API, or a REST-hook subscribe (Zapier, n8n). */
  source: 'api' | 'hook';
  created_at: number;
  updated_at: number;
  last_delivery_at: number | null;
  last_delivery_status: DeliveryStatus | null;
  last_success_at: number | null;
  /** When the current run of failures began; null while healthy. */
  failing_since: number | null;
  deleted_at: number | null;
}

export interface EventRecord {
  id: string;
  event: string;
  timestamp: string;
  data: unknown;
  received_at: number;
  idempotency_key: string | null;
  test: boolean;
}

export interface DeliveryRecord {
  id: string;
  event_id: string;
  subscription_id: string;
  event: string;
  /** The Standard Webhooks message id (`webhook-id`), stable across retries and replays. */
  msg_id: string;
  status: DeliveryStatus;
  /** Attempts made in the current chain (a replay starts a new chain). */
  attempts: number;
  chain: number;
  next_attempt_at: number;
  lease_until: number | null;
  created_at: number;
  updated_at: number;
  last_attempt_at: number | null;
  last_status_code: number | null;
  last_error: string | null;
  /** Latency of the last attempt (all its requests), ms. */
  last_latency_ms?: number | null;
  /**
   * Claims of this delivery (the current one included) that ended without an attempt record or
   * a release: each one is a process that died, or a lease that ran out, while holding it.
   */
  unfinished_claims?: number;
  /** The value of its subscription's ordering key for this event; null: unordered. */
  ordering_key?: string | null;
  /** Acceptance order among ordered deliveries (assigned by storage); null when unordered. */
  sequence?: number | null;
  /** A failed delivery that stops its key (`on_failure: block`) until it is replayed or skipped. */
  blocks_key?: boolean;
  /** A replay of this earlier delivery, queued as a new delivery at the end of its key's queue. */
  replay_of?: string | null;
}

export interface AttemptStep {
  name: string;
  method: string;
  url: string;
  request_headers: Record<string, string>;
  request_body: string | null;
  response_status: number | null;
  response_headers: Record<string, string> | null;
  response_body: string | null;
  latency_ms: number;
  error: string | null;
}

export interface AttemptRecord {
  id: string;
  delivery_id: string;
  chain: number;
  number: number;
  started_at: number;
  /** The final outcome of this attempt. */
  outcome: 'success' | 'retry' | 'fail' | 'gone' | 'disabled';
  method: string;
  url: string;
  request_headers: Record<string, string>;
  request_body: string | null;
  response_status: number | null;
  response_headers: Record<string, string> | null;
  response_body: string | null;
  latency_ms: number;
  error: string | null;
  /** Multi-request connectors (HubSpot) record each step. */
  steps: AttemptStep[] | null;
}

export interface IngestItem {
  event: EventRecord;
  deliveries: DeliveryRecord[];
  /**
   * SHA-256 of what the client posted for this event. A repeat of the same id or idempotency
   * key with another hash is a conflict (409), not a duplicate; events stored before hashes
   * were kept have none and match any repeat.
   */
  request_hash?: string | null;
  /**
   * Instead of `request_hash`: which fields were posted, and the engine hashes the event itself
   * (for SQLite in its storage thread, off the HTTP event loop; see core/request-hash.ts).
   */
  posted?: PostedFields;
}

/** The request hash an item is stored and compared with. */
export function itemRequestHash(item: IngestItem): string | null {
  return item.request_hash ?? (item.posted ? requestHash(item.event, item.posted) : null);
}

export interface IngestResult {
  event_id: string;
  event: string;
  deliveries: { id: string; subscription_id: string }[];
  duplicate: boolean;
}

/** A claimed delivery together with what the dispatcher needs to send it. */
/** How many due deliveries a claim that skips subscriptions looks at, at most. */
export const CLAIM_SCAN_LIMIT = 2_000;

export interface ClaimedDelivery {
  delivery: DeliveryRecord;
  event: EventRecord;
}

/** What a finished attempt changes: the attempt row, the delivery and its subscription. */
export interface AttemptCompletion {
  attempt: AttemptRecord;
  delivery_id: string;
  status: DeliveryStatus;
  next_attempt_at: number | null;
  subscription_id: string;
  /** Set when this outcome disables the subscription (410, or failing too long). */
  disable_subscription_reason: string | null;
  /** Set when the subscription must be deleted (Zapier's 410). */
  delete_subscription: boolean;
  /** The delivery's ordering key (null: unordered): a finish wakes the next delivery of it. */
  ordering_key?: string | null;
  /** A `failed` outcome that blocks its ordering key (`on_failure: block`) until replayed or skipped. */
  block_key?: boolean;
}

/** What a batch of completions actually wrote: a completion whose lease was lost changes nothing. */
export interface CompletionResult {
  /** Deliveries whose outcome was recorded (the claim still held them). */
  applied: string[];
  /** Deliveries whose completion disabled or deleted their subscription (it was not already). */
  disabledBy: string[];
  /** Deliveries of ordered keys that these completions made next in line: claim them now. */
  woken?: string[];
}

/** One delivery asked to be replayed, and the delivery that will be sent for it. */
export interface ReplayResult {
  id: string;
  /** The same id (a new attempt chain), or a new delivery at the end of its key's queue (ordered). */
  queued: string;
}

/** A key stopped by a failed delivery under `on_failure: block`. */
export interface BlockedKey {
  ordering_key: string;
  /** The failed delivery that blocks it: replay or skip it to go on. */
  delivery: DeliveryRecord;
  /** Unfinished deliveries queued behind it. */
  waiting: number;
}

/** What an ordered delivery waits for: the unfinished delivery ahead of it on its key. */
export interface OrderingBlocker {
  delivery_id: string;
  status: DeliveryStatus;
  blocks_key: boolean;
}

/** Changes other instances sharing the database must hear about. */
export type StorageChange = 'work' | 'subscriptions' | 'keys';

export interface DeliveryQuery {
  subscription_id?: string;
  status?: DeliveryStatus;
  event?: string;
  limit: number;
  /** Opaque: the id of the last delivery of the previous page. */
  cursor?: string;
}

export interface ReplayQuery {
  subscription_id: string;
  /** At most this many ids, in id order. */
  limit: number;
  /** Only ids after this one (the previous call's last id). */
  after?: string;
  status?: DeliveryStatus;
  since?: number;
  until?: number;
  event?: string;
}

/** What retention allows to go: deliveries that finished before these times (epoch ms). */
export interface PruneCutoffs {
  /** `delivered` and `cancelled` deliveries that finished before this. */
  finishedBefore: number;
  /** `failed` deliveries (the dead letters) that finished before this. */
  failedBefore: number;
}

/** Rows one prune batch (or a whole pass) deleted. */
export interface PruneCounts {
  deliveries: number;
  attempts: number;
  events: number;
}

/** One batch of the sweep of events that have no delivery left (or never had one). */
export interface EventSweepQuery {
  /** Events received in [receivedFrom, receivedBefore). */
  receivedFrom: number;
  receivedBefore: number;
  /** Continue after this event, in (received_at, id) order: the previous batch's `last`. */
  after?: { received_at: number; id: string };
  /** Events looked at (not deleted) per batch. */
  limit: number;
}

export interface EventSweepResult {
  scanned: number;
  deleted: number;
  last?: { received_at: number; id: string };
}

/**
 * Erasure of one event: `in_flight` when an attempt of it is on the wire right now (nothing was
 * changed); otherwise the event, all its deliveries (pending ones included) and their attempts are gone.
 */
export type EraseResult =
  | { outcome: 'erased'; deliveries: number; attempts: number; cancelled: number; /** Deliveries of ordered keys the event held, free to go now. */ woken?: string[] }
  | { outcome: 'not_found' }
  | { outcome: 'in_flight'; delivery_ids: string[] };

export interface DatabaseSize {
  /** Bytes the database occupies (SQLite: pages; PostgreSQL: pg_database_size). */
  bytes: number;
  /** Of those, bytes free for reuse (SQLite's free list), when the engine knows. */
  free_bytes: number | null;
}

export interface Storage {
  readonly engine: 'sqlite' | 'postgres';
  migrate(): Promise<number>;
  close(): Promise<void>;

  insertApiKey(key: ApiKeyRecord): Promise<void>;
  /** The key with this SHA-256 hash, revoked or not. */
  findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  revokeApiKey(id: string, now: number): Promise<boolean>;
  countActiveAdminKeys(): Promise<number>;
  /** Sets (or clears, with nulls) a key's ingest quota; false when no such key. */
  setApiKeyQuota(id: string, rateLimit: number | null, rateBurst: number | null): Promise<boolean>;

  insertSubscription(sub: SubscriptionRecord): Promise<void>;
  updateSubscription(sub: SubscriptionRecord): Promise<void>;
  getSubscription(id: string): Promise<SubscriptionRecord | undefined>;
  /** Every subscription not deleted, oldest first. */
  listSubscriptions(): Promise<SubscriptionRecord[]>;
  /**
   * Writes the subscription; when `enabled` changes, pauses its pending deliveries (disable) or
   * resumes its paused ones (enable) in the same transaction.
   */
  /** Soft-deletes and cancels the subscription's pending and paused deliveries, in one transaction. */
  deleteSubscription(id: string, now: number): Promise<boolean>;

  /**
   * Stores events and their deliveries in ONE transaction; an event whose id or
   * idempotency key is already stored is returned as a duplicate with its first deliveries.
   */
  ingest(items: IngestItem[]): Promise<IngestResult[]>;
  getEvent(id: string): Promise<EventRecord | undefined>;
  recentEvents(eventName: string, limit: number): Promise<EventRecord[]>;

  /**
   * Leases due deliveries (pending, next_attempt_at <= now), oldest first. Deliveries of the
   * `skip` subscriptions (their destination is saturated) are passed over, looking at no more
   * than CLAIM_SCAN_LIMIT due deliveries: a huge backlog for one destination costs a bounded scan.
   */
  claimDue(now: number, limit: number, leaseUntil: number, skip?: ReadonlySet<string>): Promise<ClaimedDelivery[]>;
  /** Leases the given deliveries if they are still pending and due. */
  claimByIds(ids: string[], now: number, leaseUntil: number): Promise<ClaimedDelivery[]>;
  /**
   * Puts leased deliveries back to pending (shutdown, pacing), due at `dueAt` if given; those
   * of a disabled subscription become paused. The same holds for every write below that leaves
   * a delivery waiting (reclaim, a retry's completion, replay).
   */
  releaseLeases(ids: string[], now: number, dueAt?: number): Promise<void>;
  /** Extends the leases of deliveries this worker still holds (still `delivering`). */
  renewLeases(ids: string[], leaseUntil: number): Promise<void>;
  /** Returns deliveries whose lease expired (a crashed worker, a lost completion) to pending; the count. */
  reclaimExpiredLeases(now: number): Promise<number>;
  completeAttempts(completions: AttemptCompletion[], now: number): Promise<CompletionResult>;
  /** Earliest next_attempt_at of a pending delivery, for the worker's timer. */
  nextDueAt(): Promise<number | null>;

  getDelivery(id: string): Promise<DeliveryRecord | undefined>;
  listDeliveries(query: DeliveryQuery): Promise<DeliveryRecord[]>;
  listAttempts(deliveryId: string): Promise<AttemptRecord[]>;
  /**
   * Replays each delivery that is not in flight (one transaction); returns those replayed. A
   * finished delivery of an ordered key (not the one blocking it) is queued as a new delivery at
   * the end of its key's queue; any other starts a new attempt chain in place.
   */
  replayDeliveries(ids: string[], now: number): Promise<ReplayResult[]>;
  findDeliveriesForReplay(query: ReplayQuery): Promise<string[]>;
  /** Lets the key a failed delivery blocks go on (the delivery stays failed); what that woke. */
  skipBlocked(id: string, now: number): Promise<{ skipped: boolean; woken: string[] }>;
  /** The subscription's keys stopped by a failed delivery (`on_failure: block`), oldest first. */
  listBlockedKeys(subscriptionId: string, limit: number): Promise<BlockedKey[]>;
  /** For each given unfinished ordered delivery that cannot go yet, the delivery ahead of it. */
  orderingBlockers(ids: string[]): Promise<Map<string, OrderingBlocker>>;
  /**
   * Wakes waiting deliveries whose key has nothing unfinished ahead of them any more. Every
   * finish wakes its successor itself; this is the safety net the worker runs now and then.
   */
  wakeFreeKeys(now: number): Promise<string[]>;
  /** A connector's small state for one ordering key (a Slack thread's parent message). */
  getConnectorState(subscriptionId: string, orderingKey: string): Promise<Record<string, string> | undefined>;
  /** Stores (or with null, forgets) a connector's state for one ordering key. */
  setConnectorState(subscriptionId: string, orderingKey: string, value: Record<string, string> | null, now: number): Promise<void>;
  /** Retention: forgets connector state untouched since `before`; how many went. */
  pruneConnectorState(before: number, limit: number): Promise<number>;
  /** Success counts over a window, for health at a glance. */
  deliveryStats(subscriptionId: string, since: number): Promise<{ delivered: number; failed: number; pending: number }>;

  // --- shared databases (PostgreSQL): engines used by one process alone leave these out -------
  /**
   * Calls `onChange` when any instance (this one included) changes something others cache or
   * wait for; after a lost connection, with every kind (changes may have been missed).
   */
  watch?(onChange: (change: StorageChange) => void): Promise<void>;
  /** False while the database cannot be reached (readiness turns 503). */
  isAvailable?(): boolean;
  /** Stores `sealed` as the master key check unless one is stored; returns the stored one. */
  masterKeyCheck?(sealed: string): Promise<string>;
  /**
   * rate_limit shared by all instances: reserves the subscription's next start slot, at least
   * `intervalMs` after the previous one and not before `now`; returns the slot.
   */
  reserveRateSlot?(subscriptionId: string, now: number, intervalMs: number): Promise<number>;
  /**
   * Retention, one batch: deletes up to `limit` finished deliveries older than the cutoffs (never
   * pending, paused or in-flight ones), their attempts, and each of their events that has no
   * delivery left, in one transaction; returns what it deleted (fewer than `limit` deliveries: done).
   */
  pruneDeliveries(cutoffs: PruneCutoffs, limit: number): Promise<PruneCounts>;
  /** Retention, one batch: deletes events in the range that have no delivery (never had, or none left). */
  sweepEvents(query: EventSweepQuery): Promise<EventSweepResult>;
  /** Erasure on request: see EraseResult. One transaction: never a half-erased event. */
  eraseEvent(id: string): Promise<EraseResult>;
  /** How big the database is, for the metrics. */
  databaseSize(): Promise<DatabaseSize>;
}
