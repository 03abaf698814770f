import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type {
  ApiKeyRecord, AttemptCompletion, AttemptRecord, BlockedKey, ClaimedDelivery, CompletionResult, DatabaseSize, DeliveryQuery, DeliveryRecord,
  EraseResult, EventRecord, EventSweepQuery, EventSweepResult, IngestItem, IngestResult, OrderingBlocker, PruneCounts, PruneCutoffs,
  ReplayQuery, ReplayResult, Storage, SubscriptionRecord,
} from '../types.ts';
import { SQLITE_MIGRATIONS } from './migrations.ts';
import { CLAIM_SCAN_LIMIT, itemRequestHash } from '../types.ts';
import { idFloor, newId } from '../../core/ids.ts';
import { aheadOf, headOfKey, holdsKey, isOldOrdered, mayStart, SQLITE_ORDERING, UNFINISHED } from '../ordering-sql.ts';
import { ConflictError } from '../../errors.ts';
import { foldSubscriptionHealth } from '../subscription-health.ts';
import { json, parse, toAttempt } from '../json-columns.ts';

type Row = Record<string, any>;

/** The status a delivery waiting for an attempt takes: paused while its subscription is disabled. */
const WAITING_STATUS = "CASE WHEN EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = deliveries.subscription_id AND s.enabled = 0) THEN 'paused' ELSE 'pending' END";
/** The ordering SQL as this engine writes it (storage/ordering-sql.ts). */
const ORDERING = SQLITE_ORDERING;
/** Wakes the first delivery of a key when it waits (@sub, @key); a pending one is returned too, to be claimed at once. */
const WAKE_HEAD = `UPDATE deliveries SET status = CASE WHEN status = 'waiting' THEN ${WAITING_STATUS} ELSE status END
  WHERE id = (${headOfKey(ORDERING, '@sub', '@key')}) AND status IN ('waiting','pending') RETURNING id, status`;


function toSubscription(row: Row): SubscriptionRecord {
  return {
    ...(row as SubscriptionRecord),
    events: JSON.parse(row.events),
    enabled: row.enabled === 1,
    headers: JSON.parse(row.headers),
    connector_options: JSON.parse(row.connector_options),
    retry: parse(row.retry),
    ordering: parse(row.ordering),
  };
}

function toEvent(row: Row): EventRecord {
  return { ...(row as EventRecord), data: JSON.parse(row.data), test: row.test === 1 };
}

function toDelivery(row: Row): DeliveryRecord {
  return { ...(row as DeliveryRecord), blocks_key: row.blocks_key === 1 };
}

/** A status filter: `pending` covers paused and waiting deliveries too (they are pending, on hold). */
function statusCondition(status: string, params: unknown[]): string {
  if (status === 'pending') return "status IN ('pending','paused','waiting')";
  params.push(status);
  return 'status = ?';
}

/**
 * SQLite engine: one better-sqlite3 connection (the gateway is one process), WAL with
 * synchronous=FULL so a committed transaction is on disk before we answer 202.
 */
export class SqliteStorage implements Storage {
  readonly engine = 'sqlite' as const;
  readonly db: Database.Database;
  #stmts = new Map<string, Database.Statement>();

  constructor(file: string) {
    if (file !== ':memory:') {
      // Created private (0600; SQLite gives its -wal and -shm files the same mode): events and
      // sealed secrets are nobody else's business on a shared machine.
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      fs.closeSync(fs.openSync(file, 'a', 0o600));
    }
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
  }

  /**
   * Worker bookkeeping (claims, lease releases, attempt records) commits without an fsync
   * (`synchronous=NORMAL`; WAL still makes it survive a process crash). Losing such a commit
   * to a power cut only means a delivery is sent again: at least once still holds. Events and
   * their deliveries, and every API write, keep `synchronous=FULL`.
   */
  #relaxed<T>(fn: () => T): T {
    this.db.pragma('synchronous = NORMAL');
    try {
      return this.#immediate(fn);
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  /**
   * Every transaction takes the write lock when it begins: a second connection (`sluice prune`,
   * `sluice backup` while the gateway runs) then makes it wait (busy_timeout) instead of failing
   * a read-then-write transaction whose snapshot went stale.
   */
  #immediate<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** Prepared once, reused: statement preparation is a measurable cost on the hot path. */
  #stmt(sql: string): Database.Statement {
    let stmt = this.#stmts.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.#stmts.set(sql, stmt);
    }
    return stmt;
  }

  async migrate(): Promise<number> {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const applied = new Set(this.db.prepare('SELECT version FROM schema_migrations').all().map((r: any) => r.version as number));
    let count = 0;
    for (const migration of SQLITE_MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      this.#immediate(() => {
        this.db.exec(migration.sql);
        this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(migration.version, migration.name, Date.now());
      });
      count++;
    }
    return count;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  // --- API keys -------------------------------------------------------------------------
  async insertApiKey(key: ApiKeyRecord): Promise<void> {
    this.#stmt('INSERT INTO api_keys (id, name, role, prefix, hash, created_at, revoked_at, rate_limit, rate_burst) VALUES (@id, @name, @role, @prefix, @hash, @created_at, @revoked_at, @rate_limit, @rate_burst)')
      .run({ ...key, rate_limit: key.rate_limit ?? null, rate_burst: key.rate_burst ?? null });
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    return this.#stmt('SELECT * FROM api_keys WHERE hash = ?').get(hash) as ApiKeyRecord | undefined;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return this.#stmt('SELECT * FROM api_keys ORDER BY created_at, id').all() as ApiKeyRecord[];
  }

  async revokeApiKey(id: string, now: number): Promise<boolean> {
    return this.#stmt('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id).changes > 0;
  }

  async countActiveAdminKeys(): Promise<number> {
    return (this.#stmt("SELECT COUNT(*) AS n FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL").get() as Row).n;
  }

  async setApiKeyQuota(id: string, rateLimit: number | null, rateBurst: number | null): Promise<boolean> {
    return this.#stmt('UPDATE api_keys SET rate_limit = ?, rate_burst = ? WHERE id = ?').run(rateLimit, rateBurst, id).changes > 0;
  }

  // --- subscriptions --------------------------------------------------------------------
  #subscriptionParams(sub: SubscriptionRecord): Row {
    return {
      ...sub,
      events: JSON.stringify(sub.events),
      enabled: sub.enabled ? 1 : 0,
      headers: JSON.stringify(sub.headers),
      headers_sealed: sub.headers_sealed ?? null,
      connector_options: JSON.stringify(sub.connector_options),
      retry: json(sub.retry),
      ordering: json(sub.ordering ?? null),
    };
  }

  async insertSubscription(sub: SubscriptionRecord): Promise<void> {
    const params = this.#subscriptionParams(sub);
    const columns = Object.keys(params);
    this.#stmt(`INSERT INTO subscriptions (${columns.join(', ')}) VALUES (${columns.map((c) => '@' + c).join(', ')})`).run(params);
  }

  async updateSubscription(sub: SubscriptionRecord): Promise<void> {
    const params = this.#subscriptionParams(sub);
    const columns = Object.keys(params).filter((c) => c !== 'id');
    this.#immediate(() => {
      const before = this.#stmt('SELECT enabled FROM subscriptions WHERE id = ?').get(sub.id) as Row | undefined;
      this.#stmt(`UPDATE subscriptions SET ${columns.map((c) => `${c} = @${c}`).join(', ')} WHERE id = @id`).run(params);
      if (before && before.enabled !== params.enabled) this.#pauseOrResume(sub.id, params.enabled === 1, sub.updated_at);
      // No longer `block`: the keys its failures stopped go on.
      if (sub.ordering?.on_failure !== 'block') this.#unblockSubscription(sub.id);
    });
  }

  #unblockSubscription(subscriptionId: string): string[] {
    const keys = (this.#stmt(`UPDATE deliveries SET blocks_key = 0 WHERE subscription_id = ? AND ordering_key IS NOT NULL AND ${holdsKey('deliveries', ORDERING)} AND blocks_key = 1 RETURNING ordering_key`)
      .all(subscriptionId) as Row[]).map((r) => r.ordering_key as string);
    return this.#wake([...new Set(keys)].map((key) => ({ sub: subscriptionId, key })));
  }

  /** Wakes the first delivery of each key; returns those now pending (to be claimed at once). */
  #wake(keys: { sub: string; key: string }[]): string[] {
    const woken: string[] = [];
    for (const k of keys) {
      const row = this.#stmt(WAKE_HEAD).get(k) as Row | undefined;
      if (row?.status === 'pending') woken.push(row.id);
    }
    return woken;
  }

  /** Disable pauses a subscription's pending deliveries; enable makes its paused ones pending again. */
  #pauseOrResume(subscriptionId: string, enabled: boolean, now: number): void {
    const [from, to] = enabled ? ['paused', 'pending'] : ['pending', 'paused'];
    this.#stmt('UPDATE deliveries SET status = ?, updated_at = ? WHERE subscription_id = ? AND status = ?').run(to, now, subscriptionId, from);
  }

  /** A deleted subscription's failed deliveries block nothing any more, and its connector state goes. */
  #forgetOrdering(subscriptionId: string): void {
    this.#stmt(`UPDATE deliveries SET blocks_key = 0 WHERE subscription_id = ? AND ordering_key IS NOT NULL AND ${holdsKey('deliveries', ORDERING)} AND blocks_key = 1`).run(subscriptionId);
    this.#stmt('DELETE FROM connector_state WHERE subscription_id = ?').run(subscriptionId);
  }

  async getSubscription(id: string): Promise<SubscriptionRecord | undefined> {
    const row = this.#stmt('SELECT * FROM subscriptions WHERE id = ? AND deleted_at IS NULL').get(id) as Row | undefined;
    return row ? toSubscription(row) : undefined;
  }

  async listSubscriptions(): Promise<SubscriptionRecord[]> {
    return (this.#stmt('SELECT * FROM subscriptions WHERE deleted_at IS NULL ORDER BY created_at, id').all() as Row[]).map(toSubscription);
  }

  async deleteSubscription(id: string, now: number): Promise<boolean> {
    return this.#immediate(() => {
      const changed = this.#stmt('UPDATE subscriptions SET deleted_at = ?, enabled = 0, updated_at = ? WHERE id = ? AND deleted_at IS NULL').run(now, now, id).changes;
      if (!changed) return false;
      this.#stmt(`UPDATE deliveries SET status = 'cancelled', lease_until = NULL, updated_at = ?, last_error = 'subscription deleted' WHERE subscription_id = ? AND status IN ${UNFINISHED}`).run(now, id);
      this.#forgetOrdering(id);
      return true;
    });
  }

  // --- ingest ---------------------------------------------------------------------------
  async ingest(items: IngestItem[]): Promise<IngestResult[]> {
    const findById = this.#stmt('SELECT id, event, request_hash FROM events WHERE id = ?');
    const findByKey = this.#stmt('SELECT id, event, request_hash FROM events WHERE idempotency_key = ?');
    // Insertion order, so a duplicate gets its deliveries listed exactly as the first answer did
    // (ids made in the same millisecond do not sort in creation order).
    const deliveriesOf = this.#stmt('SELECT id, subscription_id FROM deliveries WHERE event_id = ? AND replay_of IS NULL ORDER BY rowid');
    const insertEvent = this.#stmt('INSERT INTO events (id, event, timestamp, data, received_at, idempotency_key, test, request_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    // A delivery stored already leased (preclaimed at ingest) starts with its claim counted.
    const insertDelivery = this.#stmt(`INSERT INTO deliveries (id, event_id, subscription_id, event, msg_id, status, attempts, chain, next_attempt_at, lease_until, created_at, updated_at, last_attempt_at, last_status_code, last_error, unfinished_claims, ordering_key, sequence)
      VALUES (@id, @event_id, @subscription_id, @event, @msg_id, @status, @attempts, @chain, @next_attempt_at, @lease_until, @created_at, @updated_at, @last_attempt_at, @last_status_code, @last_error, CASE WHEN @status = 'delivering' THEN 1 ELSE 0 END, @ordering_key, @sequence)`);
    return this.#immediate(() => {
      const results: IngestResult[] = [];
      // Duplicates inside one batch resolve to the first occurrence, as they would across batches.
      for (const item of items) {
        const { event, deliveries } = item;
        const hash = itemRequestHash(item);
        const byId = findById.get(event.id) as Row | undefined;
        const existing = byId ?? ((event.idempotency_key ? findByKey.get(event.idempotency_key) : undefined) as Row | undefined);
        if (existing && hash && existing.request_hash && existing.request_hash !== hash) {
          // Rolls the whole transaction back; group commit retries the other callers alone.
          throw byId
            ? new ConflictError('event_id_conflict', `An event with id "${event.id}" was already accepted with different content; give this event its own id.`, [{ path: '$.id', message: 'was already used for a different event', id: event.id }])
            : new ConflictError('idempotency_key_conflict', 'This Idempotency-Key was already used with a different body; use a new key for a new event.', [{ path: 'header:Idempotency-Key', message: 'was already used with a different body' }]);
        }
        if (existing) {
          results.push({ event_id: existing.id, event: existing.event, deliveries: deliveriesOf.all(existing.id) as IngestResult['deliveries'], duplicate: true });
          continue;
        }
        insertEvent.run(event.id, event.event, event.timestamp, JSON.stringify(event.data), event.received_at, event.idempotency_key, event.test ? 1 : 0, hash);
        for (const delivery of deliveries) {
          // Ordered deliveries take the next number of the acceptance order; the others none.
          if (delivery.ordering_key) delivery.sequence = this.#nextSequence();
          else if (delivery.ordering_key === undefined || delivery.sequence === undefined) Object.assign(delivery, { ordering_key: null, sequence: null });
          insertDelivery.run(delivery);
        }
        results.push({ event_id: event.id, event: event.event, deliveries: deliveries.map((d) => ({ id: d.id, subscription_id: d.subscription_id })), duplicate: false });
      }
      return results;
    });
  }

  /** The next acceptance sequence number (inside a write transaction). */
  #nextSequence(): number {
    return (this.#stmt("UPDATE sequences SET value = value + 1 WHERE name = 'deliveries' RETURNING value").get() as Row).value as number;
  }

  async getEvent(id: string): Promise<EventRecord | undefined> {
    const row = this.#stmt('SELECT * FROM events WHERE id = ?').get(id) as Row | undefined;
    return row ? toEvent(row) : undefined;
  }

  async recentEvents(eventName: string, limit: number): Promise<EventRecord[]> {
    return (this.#stmt('SELECT * FROM events WHERE event = ? AND test = 0 ORDER BY received_at DESC, id DESC LIMIT ?').all(eventName, limit) as Row[]).map(toEvent);
  }

  // --- delivery worker ------------------------------------------------------------------
  async claimDue(now: number, limit: number, leaseUntil: number, skip?: ReadonlySet<string>): Promise<ClaimedDelivery[]> {
    return this.#relaxed(() => {
      // Ordered by the index alone: adding a tie-breaker column made SQLite sort every due row
      // (a million-row backlog drained seven times slower than a small one).
      if (!skip?.size) {
        const ids = (this.#stmt("SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?").all(now, limit) as Row[]).map((r) => r.id as string);
        return this.#lease(ids, now, leaseUntil);
      }
      const ids = (this.#stmt(`SELECT id FROM (SELECT id, subscription_id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?)
        WHERE subscription_id NOT IN (SELECT value FROM json_each(?)) LIMIT ?`).all(now, CLAIM_SCAN_LIMIT, JSON.stringify([...skip]), limit) as Row[]).map((r) => r.id as string);
      return this.#lease(ids, now, leaseUntil);
    });
  }

  async claimByIds(ids: string[], now: number, leaseUntil: number): Promise<ClaimedDelivery[]> {
    return this.#relaxed(() => this.#lease(ids, now, leaseUntil));
  }

  #lease(ids: string[], now: number, leaseUntil: number): ClaimedDelivery[] {
    // Counted before anything is done with the delivery (its template has not run yet): if this
    // process dies while holding it, the next claim sees one more unfinished claim. An ordered
    // delivery starts only when nothing ahead of it on its key is unfinished (ordering-sql.ts).
    const lease = this.#stmt(`UPDATE deliveries AS d SET status = 'delivering', lease_until = ?, updated_at = ?, unfinished_claims = unfinished_claims + 1
      WHERE d.id = ? AND d.status = 'pending' AND d.next_attempt_at <= ? AND ${mayStart('d', ORDERING)}`);
    // Not leased though pending, due and ordered: something ahead holds its key. It waits, out of
    // the claim's way, until that one finishes and wakes it.
    const setAside = this.#stmt("UPDATE deliveries SET status = 'waiting', updated_at = ? WHERE id = ? AND status = 'pending' AND next_attempt_at <= ? AND ordering_key IS NOT NULL");
    const selectDelivery = this.#stmt('SELECT * FROM deliveries WHERE id = ?');
    const selectEvent = this.#stmt('SELECT * FROM events WHERE id = ?');
    // A fanned-out event has many deliveries: read and parse it once per claim, not per delivery.
    const events = new Map<string, EventRecord>();
    const claimed: ClaimedDelivery[] = [];
    for (const id of ids) {
      if (lease.run(leaseUntil, now, id, now).changes === 0) {
        setAside.run(now, id, now);
        continue;
      }
      const delivery = toDelivery(selectDelivery.get(id) as Row);
      let event = events.get(delivery.event_id);
      if (!event) {
        event = toEvent(selectEvent.get(delivery.event_id) as Row);
        events.set(event.id, event);
      }
      claimed.push({ delivery, event });
    }
    return claimed;
  }

  async releaseLeases(ids: string[], now: number, dueAt?: number): Promise<void> {
    // A lease handed back on purpose (pacing, shutdown) is a finished claim.
    const release = this.#stmt(`UPDATE deliveries SET status = ${WAITING_STATUS}, lease_until = NULL, updated_at = ?, next_attempt_at = COALESCE(?, next_attempt_at), unfinished_claims = MAX(unfinished_claims - 1, 0) WHERE id = ? AND status = 'delivering'`);
    this.#relaxed(() => {
      for (const id of ids) release.run(now, dueAt ?? null, id);
    });
  }

  async renewLeases(ids: string[], leaseUntil: number): Promise<void> {
    const renew = this.#stmt("UPDATE deliveries SET lease_until = ? WHERE id = ? AND status = 'delivering'");
    this.#relaxed(() => {
      for (const id of ids) renew.run(leaseUntil, id);
    });
  }

  async reclaimExpiredLeases(now: number): Promise<number> {
    return this.#stmt(`UPDATE deliveries SET status = ${WAITING_STATUS}, lease_until = NULL, updated_at = ? WHERE status = 'delivering' AND lease_until < ?`).run(now, now).changes;
  }

  async completeAttempts(completions: AttemptCompletion[], now: number): Promise<CompletionResult> {
    const insertAttempt = this.#stmt(`INSERT INTO attempts (id, delivery_id, chain, number, started_at, outcome, method, url, request_headers, request_body, response_status, response_headers, response_body, latency_ms, error, steps)
      VALUES (@id, @delivery_id, @chain, @number, @started_at, @outcome, @method, @url, @request_headers, @request_body, @response_status, @response_headers, @response_body, @latency_ms, @error, @steps)`);
    // Only a delivery still leased by us is updated: a deleted subscription cancels it meanwhile.
    const updateDelivery = this.#stmt(`UPDATE deliveries SET status = CASE WHEN @status = 'pending' THEN ${WAITING_STATUS} ELSE @status END, attempts = attempts + 1, next_attempt_at = COALESCE(@next_attempt_at, next_attempt_at), lease_until = NULL,
      unfinished_claims = 0, updated_at = @now, last_attempt_at = @started_at, last_status_code = @status_code, last_error = @error, last_latency_ms = @latency, blocks_key = @block
      WHERE id = @id AND status = 'delivering' AND chain = @chain`);
    const touchSubscription = this.#stmt(`UPDATE subscriptions SET last_delivery_at = @now, last_delivery_status = @status,
      last_success_at = CASE WHEN @success = 1 THEN @now ELSE last_success_at END,
      failing_since = CASE @failing WHEN 'reset' THEN NULL WHEN 'restart' THEN @now WHEN 'continue' THEN COALESCE(failing_since, @now) ELSE failing_since END
      WHERE id = @id`);
    const disable = this.#stmt('UPDATE subscriptions SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ? AND enabled = 1 AND deleted_at IS NULL');
    const remove = this.#stmt('UPDATE subscriptions SET deleted_at = ?, enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL');
    const cancelPending = this.#stmt(`UPDATE deliveries SET status = 'cancelled', lease_until = NULL, updated_at = ?, last_error = ? WHERE subscription_id = ? AND status IN ${UNFINISHED} AND id != ?`);
    const result: CompletionResult = { applied: [], disabledBy: [], woken: [] };
    const finishedKeys: { sub: string; key: string }[] = [];
    this.#relaxed(() => {
      for (const c of completions) {
        const a = c.attempt;
        insertAttempt.run({
          ...a,
          request_headers: JSON.stringify(a.request_headers),
          response_headers: json(a.response_headers),
          steps: json(a.steps),
        });
        const block = c.status === 'failed' && c.block_key === true && !!c.ordering_key;
        const applied = updateDelivery.run({ id: c.delivery_id, status: c.status, next_attempt_at: c.next_attempt_at, now, started_at: a.started_at, status_code: a.response_status, error: a.error, chain: a.chain, latency: a.latency_ms, block: block ? 1 : 0 }).changes;
        if (applied) result.applied.push(c.delivery_id);
        // Finished (not retried, not blocking): the next delivery of its key may go.
        if (applied && c.ordering_key && c.status !== 'pending' && !block) finishedKeys.push({ sub: c.subscription_id, key: c.ordering_key });
        if (c.delete_subscription) {
          if (remove.run(now, c.disable_subscription_reason, now, c.subscription_id).changes) result.disabledBy.push(c.delivery_id);
          cancelPending.run(now, c.disable_subscription_reason, c.subscription_id, c.delivery_id);
          this.#forgetOrdering(c.subscription_id);
        } else if (c.disable_subscription_reason) {
          // Disabled, not deleted: what waits for it is paused, not dropped.
          if (disable.run(c.disable_subscription_reason, now, c.subscription_id).changes) {
            this.#pauseOrResume(c.subscription_id, false, now);
            result.disabledBy.push(c.delivery_id);
          }
        }
      }
      // One health update per subscription per batch, not one per attempt.
      for (const [id, health] of foldSubscriptionHealth(completions)) touchSubscription.run({ id, now, ...health });
      result.woken = this.#wake(finishedKeys);
    });
    return result;
  }

  async nextDueAt(): Promise<number | null> {
    const row = this.#stmt("SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE status = 'pending'").get() as Row;
    return row.t ?? null;
  }

  // --- delivery log ---------------------------------------------------------------------
  async getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    const row = this.#stmt('SELECT * FROM deliveries WHERE id = ?').get(id) as Row | undefined;
    return row ? toDelivery(row) : undefined;
  }

  async listDeliveries(query: DeliveryQuery): Promise<DeliveryRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.subscription_id) { where.push('subscription_id = ?'); params.push(query.subscription_id); }
    if (query.status) where.push(statusCondition(query.status, params));
    if (query.event) { where.push('event = ?'); params.push(query.event); }
    if (query.cursor) { where.push('id < ?'); params.push(query.cursor); }
    const sql = `SELECT * FROM deliveries ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    return (this.#stmt(sql).all(...params, query.limit) as Row[]).map(toDelivery);
  }

  async listAttempts(deliveryId: string): Promise<AttemptRecord[]> {
    return (this.#stmt('SELECT * FROM attempts WHERE delivery_id = ? ORDER BY started_at, chain, number').all(deliveryId) as Row[]).map(toAttempt);
  }

  async replayDeliveries(ids: string[], now: number): Promise<ReplayResult[]> {
    const select = this.#stmt('SELECT status, ordering_key, blocks_key FROM deliveries WHERE id = ?');
    const replay = this.#stmt(`UPDATE deliveries SET status = ${WAITING_STATUS}, attempts = 0, chain = chain + 1, unfinished_claims = 0, next_attempt_at = ?, lease_until = NULL, updated_at = ?, blocks_key = 0
      WHERE id = ? AND status IN ('delivered','failed','cancelled','pending','paused','waiting')`);
    // The same message (webhook-id) again, as a new delivery at the end of its key's queue.
    const replayAsNew = this.#stmt(`INSERT INTO deliveries (id, event_id, subscription_id, event, msg_id, status, attempts, chain, next_attempt_at, lease_until, created_at, updated_at,
        last_attempt_at, last_status_code, last_error, unfinished_claims, ordering_key, sequence, blocks_key, replay_of)
      SELECT @new_id, event_id, subscription_id, event, msg_id, ${WAITING_STATUS}, 0, 1, @now, NULL, @now, @now, NULL, NULL, NULL, 0, ordering_key, @sequence, 0, id
      FROM deliveries WHERE id = @id`);
    return this.#immediate(() => {
      const out: ReplayResult[] = [];
      for (const id of ids) {
        const row = select.get(id) as Row | undefined;
        if (!row || row.status === 'delivering') continue;
        if (isOldOrdered(row.status, row.ordering_key, row.blocks_key === 1)) {
          const newId_ = newId('dlv', now);
          replayAsNew.run({ new_id: newId_, now, sequence: this.#nextSequence(), id });
          out.push({ id, queued: newId_ });
        } else if (replay.run(now, now, id).changes > 0) {
          out.push({ id, queued: id });
        }
      }
      return out;
    });
  }

  async skipBlocked(id: string, now: number): Promise<{ skipped: boolean; woken: string[] }> {
    return this.#immediate(() => {
      const row = this.#stmt(`UPDATE deliveries SET blocks_key = 0, updated_at = ? WHERE id = ? AND ordering_key IS NOT NULL AND ${holdsKey('deliveries', ORDERING)} AND blocks_key = 1 RETURNING subscription_id, ordering_key`).get(now, id) as Row | undefined;
      if (!row) return { skipped: false, woken: [] };
      return { skipped: true, woken: this.#wake([{ sub: row.subscription_id, key: row.ordering_key }]) };
    });
  }

  async listBlockedKeys(subscriptionId: string, limit: number): Promise<BlockedKey[]> {
    const rows = this.#stmt(`SELECT b.*, (SELECT COUNT(*) FROM deliveries w WHERE w.subscription_id = b.subscription_id AND w.ordering_key = b.ordering_key AND ${holdsKey('w', ORDERING)} AND w.id <> b.id) AS waiting_count
      FROM deliveries b WHERE b.subscription_id = ? AND b.ordering_key IS NOT NULL AND ${holdsKey('b', ORDERING)} AND b.blocks_key = 1 ORDER BY b.sequence LIMIT ?`).all(subscriptionId, limit) as Row[];
    return rows.map(({ waiting_count: waiting, ...delivery }) => ({ ordering_key: delivery.ordering_key, delivery: toDelivery(delivery), waiting }));
  }

  async orderingBlockers(ids: string[]): Promise<Map<string, OrderingBlocker>> {
    // The first of the key ahead of it: here (one process, sequences in commit order) the one in
    // flight, when there is one, is always that one.
    const ahead = this.#stmt(`SELECT d.id AS for_id, (${aheadOf('d', ORDERING)} ORDER BY o.sequence LIMIT 1) AS blocker_id FROM deliveries d
      WHERE d.id = ? AND d.ordering_key IS NOT NULL AND d.status IN ('pending','paused','waiting')`);
    const out = new Map<string, OrderingBlocker>();
    for (const id of ids) {
      const blockerId = (ahead.get(id) as Row | undefined)?.blocker_id as string | null | undefined;
      const blocker = blockerId ? (this.#stmt('SELECT id, status, blocks_key FROM deliveries WHERE id = ?').get(blockerId) as Row) : undefined;
      if (blocker) out.set(id, { delivery_id: blocker.id, status: blocker.status, blocks_key: blocker.blocks_key === 1 });
    }
    return out;
  }

  async wakeFreeKeys(now: number): Promise<string[]> {
    return this.#relaxed(() => (this.#stmt(`UPDATE deliveries AS d SET status = ${WAITING_STATUS.replaceAll('deliveries.', 'd.')}, updated_at = ?
      WHERE d.ordering_key IS NOT NULL AND ${holdsKey('d', ORDERING)} AND d.status = 'waiting' AND ${mayStart('d', ORDERING)} RETURNING id, status`).all(now) as Row[])
      .filter((r) => r.status === 'pending').map((r) => r.id as string));
  }

  async getConnectorState(subscriptionId: string, orderingKey: string): Promise<Record<string, string> | undefined> {
    const row = this.#stmt('SELECT value FROM connector_state WHERE subscription_id = ? AND ordering_key = ?').get(subscriptionId, orderingKey) as Row | undefined;
    return row ? JSON.parse(row.value) : undefined;
  }

  async setConnectorState(subscriptionId: string, orderingKey: string, value: Record<string, string> | null, now: number): Promise<void> {
    if (value === null) this.#stmt('DELETE FROM connector_state WHERE subscription_id = ? AND ordering_key = ?').run(subscriptionId, orderingKey);
    else this.#stmt('INSERT INTO connector_state (subscription_id, ordering_key, value, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (subscription_id, ordering_key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at')
      .run(subscriptionId, orderingKey, JSON.stringify(value), now);
  }

  async pruneConnectorState(before: number, limit: number): Promise<number> {
    return this.#relaxed(() => this.#stmt('DELETE FROM connector_state WHERE rowid IN (SELECT rowid FROM connector_state WHERE updated_at < ? ORDER BY updated_at LIMIT ?)').run(before, limit).changes);
  }

  async findDeliveriesForReplay(query: ReplayQuery): Promise<string[]> {
    const where = ['subscription_id = ?'];
    const params: unknown[] = [query.subscription_id];
    if (query.status) where.push(statusCondition(query.status, params));
    if (query.event) { where.push('event = ?'); params.push(query.event); }
    if (query.since !== undefined) { where.push('created_at >= ?'); params.push(query.since); }
    if (query.until !== undefined) { where.push('created_at <= ?'); params.push(query.until); }
    if (query.after !== undefined) { where.push('id > ?'); params.push(query.after); }
    return (this.#stmt(`SELECT id FROM deliveries WHERE ${where.join(' AND ')} ORDER BY id LIMIT ?`).all(...params, query.limit) as Row[]).map((r) => r.id);
  }

  async deliveryStats(subscriptionId: string, since: number): Promise<{ delivered: number; failed: number; pending: number }> {
    const row = this.#stmt(`SELECT
        SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END) AS delivered,
        SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed,
        SUM(CASE WHEN status IN ${UNFINISHED} THEN 1 ELSE 0 END) AS pending
      FROM deliveries WHERE subscription_id = ? AND id >= ?`).get(subscriptionId, idFloor('dlv', since)) as Row;
    return { delivered: row.delivered ?? 0, failed: row.failed ?? 0, pending: row.pending ?? 0 };
  }

  // --- data lifecycle -------------------------------------------------------------------
  async pruneDeliveries(cutoffs: PruneCutoffs, limit: number): Promise<PruneCounts> {
    // Each reads one partial index, oldest first: nothing retention keeps is passed over.
    const finished = this.#stmt("SELECT id, event_id FROM deliveries INDEXED BY deliveries_finished WHERE status IN ('delivered','cancelled') AND updated_at < ? ORDER BY updated_at LIMIT ?");
    // A failed delivery that blocks its key stays (its key would go on unseen): replay or skip it.
    const dead = this.#stmt("SELECT id, event_id FROM deliveries INDEXED BY deliveries_dead WHERE status = 'failed' AND updated_at < ? AND blocks_key = 0 ORDER BY updated_at LIMIT ?");
    const deleteAttempts = this.#stmt('DELETE FROM attempts WHERE delivery_id = ?');
    const deleteDelivery = this.#stmt("DELETE FROM deliveries WHERE id = ? AND status IN ('delivered','cancelled','failed') AND blocks_key = 0");
    const deleteEventIfBare = this.#stmt('DELETE FROM events WHERE id = ? AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_id = ?)');
    // Without an fsync: a prune lost to a power cut is simply done again by the next pass.
    return this.#relaxed(() => {
      const rows = finished.all(cutoffs.finishedBefore, limit) as Row[];
      if (rows.length < limit) rows.push(...(dead.all(cutoffs.failedBefore, limit - rows.length) as Row[]));
      const counts: PruneCounts = { deliveries: 0, attempts: 0, events: 0 };
      for (const row of rows) {
        counts.attempts += deleteAttempts.run(row.id).changes;
        counts.deliveries += deleteDelivery.run(row.id).changes;
      }
      for (const eventId of new Set(rows.map((r) => r.event_id as string))) counts.events += deleteEventIfBare.run(eventId, eventId).changes;
      return counts;
    });
  }

  async sweepEvents(query: EventSweepQuery): Promise<EventSweepResult> {
    const after = query.after ?? { received_at: query.receivedFrom, id: '' };
    const page = this.#stmt('SELECT id, received_at FROM events WHERE received_at < ? AND (received_at, id) > (?, ?) ORDER BY received_at, id LIMIT ?');
    const deleteEventIfBare = this.#stmt('DELETE FROM events WHERE id = ? AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_id = ?)');
    return this.#relaxed(() => {
      const rows = page.all(query.receivedBefore, after.received_at, after.id, query.limit) as Row[];
      let deleted = 0;
      for (const row of rows) deleted += deleteEventIfBare.run(row.id, row.id).changes;
      const last = rows.at(-1);
      return { scanned: rows.length, deleted, last: last ? { received_at: last.received_at, id: last.id } : undefined };
    });
  }

  async eraseEvent(id: string): Promise<EraseResult> {
    return this.#immediate((): EraseResult => {
      if (!this.#stmt('SELECT 1 FROM events WHERE id = ?').get(id)) return { outcome: 'not_found' };
      // An attempt on the wire would record its outcome for a delivery that no longer exists:
      // refuse, change nothing, and let the caller ask again once it finished.
      const inFlight = (this.#stmt("SELECT id FROM deliveries WHERE event_id = ? AND status = 'delivering'").all(id) as Row[]).map((r) => r.id as string);
      if (inFlight.length) return { outcome: 'in_flight', delivery_ids: inFlight };
      const cancelled = (this.#stmt("SELECT COUNT(*) AS n FROM deliveries WHERE event_id = ? AND status IN ('pending','paused','waiting')").get(id) as Row).n as number;
      // Keys this event held (an unfinished or blocking delivery): the next of each goes once it is gone.
      const held = (this.#stmt(`SELECT DISTINCT subscription_id AS sub, ordering_key AS key FROM deliveries WHERE event_id = ? AND ordering_key IS NOT NULL AND ${holdsKey('deliveries', ORDERING)}`).all(id) as { sub: string; key: string }[]);
      const attempts = this.#stmt('DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id = ?)').run(id).changes;
      const deliveries = this.#stmt('DELETE FROM deliveries WHERE event_id = ?').run(id).changes;
      this.#stmt('DELETE FROM events WHERE id = ?').run(id);
      const woken = this.#wake(held);
      return { outcome: 'erased', deliveries, attempts, cancelled, ...(woken.length ? { woken } : {}) };
    });
  }

  async databaseSize(): Promise<DatabaseSize> {
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    return { bytes: pages * pageSize, free_bytes: free * pageSize };
  }

  /**
   * A consistent copy of the database while the gateway keeps writing (SQLite's online backup:
   * pages are copied in steps, and restarted if a write lands in between). SQLite only: the
   * PostgreSQL engine is backed up with pg_dump.
   */
  async backup(file: string): Promise<{ pages: number }> {
    fs.closeSync(fs.openSync(file, 'wx', 0o600));
    const result = await this.db.backup(file);
    return { pages: result.totalPages };
  }
}
