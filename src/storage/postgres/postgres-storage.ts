import type pg from 'pg';
import type {
  ApiKeyRecord, AttemptCompletion, AttemptRecord, BlockedKey, ClaimedDelivery, CompletionResult, DatabaseSize, DeliveryQuery, DeliveryRecord,
  EraseResult, EventRecord, EventSweepQuery, EventSweepResult, IngestItem, IngestResult, OrderingBlocker, PruneCounts, PruneCutoffs,
  ReplayQuery, ReplayResult, Storage, StorageChange, SubscriptionRecord,
} from '../types.ts';
import { CLAIM_SCAN_LIMIT, itemRequestHash } from '../types.ts';
import { foldSubscriptionHealth } from '../subscription-health.ts';
import { POSTGRES_MIGRATIONS } from './migrations.ts';
import { CHANGES_CHANNEL, ChangeListener } from './change-listener.ts';
import { createPool, DatabaseStartError, OLDEST_SUPPORTED_VERSION, startErrorMessage } from './connection.ts';
import { idFloor, newId } from '../../core/ids.ts';
import { aheadOf, headOfKey, holdsKey, isOldOrdered, mayStart, POSTGRES_ORDERING, UNFINISHED, inFlightBeside } from '../ordering-sql.ts';
import { ConflictError } from '../../errors.ts';
import { json, parse, toAttempt } from '../json-columns.ts';

type Row = Record<string, any>;
type Queryable = pg.Pool | pg.PoolClient;

export interface PostgresOptions {
  url: string;
  poolSize: number;
  /** Names this instance in the leases it holds. */
  instanceId: string;
  /** Connection problems met in the background (idle clients, the listener). */
  onError?: (err: Error) => void;
}

/** Advisory lock key: several instances starting at once run migrations one after the other. */
const MIGRATION_LOCK = 7_261_001_011;

/** The status a delivery waiting for an attempt takes: paused while its subscription is disabled. */
const WAITING_STATUS = "CASE WHEN EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = deliveries.subscription_id AND NOT s.enabled) THEN 'paused' ELSE 'pending' END";
/** The ordering SQL as this engine writes it (storage/ordering-sql.ts). */
const ORDERING = POSTGRES_ORDERING;
/**
 * Wakes the first delivery of each key ($1 subscriptions, $2 keys) when it waits. A pending one is
 * touched too (and returned, to be claimed at once): its row lock is what makes a claimer that is
 * setting it aside at this moment either finish first (then this wakes it) or see this finish.
 */
const WAKE_HEADS = `UPDATE deliveries SET status = CASE WHEN deliveries.status = 'waiting' THEN ${WAITING_STATUS} ELSE deliveries.status END
  FROM (SELECT (${headOfKey(ORDERING, 'k.sub', 'k.key')}) AS id FROM unnest($1::text[], $2::text[]) AS k(sub, key)) heads
  WHERE deliveries.id = heads.id AND deliveries.status IN ('waiting','pending') RETURNING deliveries.id, deliveries.status`;


function toSubscription(row: Row): SubscriptionRecord {
  return {
    ...(row as SubscriptionRecord),
    events: JSON.parse(row.events),
    headers: JSON.parse(row.headers),
    connector_options: JSON.parse(row.connector_options),
    retry: parse(row.retry),
    ordering: parse(row.ordering),
  };
}

function toEvent(row: Row): EventRecord {
  return { ...(row as EventRecord), data: JSON.parse(row.data) };
}

/** The record as both engines return it: the columns only PostgreSQL keeps stay inside. */
function toDelivery(row: Row): DeliveryRecord {
  const { position: _position, lease_owner: _owner, picked_id: _picked, ...delivery } = row;
  return delivery as DeliveryRecord;
}

/** Builds `$n` placeholders as values are added. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

function statusCondition(status: string, params: Params): string {
  if (status === 'pending') return "status IN ('pending','paused','waiting')";
  return `status = ${params.add(status)}`;
}

const SUBSCRIPTION_COLUMNS = [
  'id', 'name', 'url', 'events', 'description', 'enabled', 'disabled_reason', 'headers', 'headers_sealed', 'auth_sealed', 'filter', 'mapping',
  'connector', 'connector_options', 'connector_secrets_sealed', 'retry', 'timeout_seconds', 'rate_limit', 'secret_sealed', 'secret_prefix',
  'previous_secret_sealed', 'previous_secret_expires_at', 'source', 'created_at', 'updated_at', 'last_delivery_at', 'last_delivery_status',
  'last_success_at', 'failing_since', 'deleted_at', 'ordering',
] as const;

/**
 * PostgreSQL engine: any number of gateway instances share one database as equals. Claims are one
 * statement with FOR UPDATE SKIP LOCKED, so two instances never lease the same delivery; a lease
 * names its owner and expires, and only expired leases are taken back. NOTIFY on one channel
 * tells the other instances about new work and about changed subscriptions and keys.
 */
export class PostgresStorage implements Storage {
  readonly engine = 'postgres' as const;
  readonly pool: pg.Pool;
  readonly #opts: PostgresOptions;
  #listener: ChangeListener | null = null;
  /** Set when a query fails to connect, cleared by the next success: readiness without polling. */
  #unreachableSince: number | null = null;

  constructor(options: PostgresOptions) {
    this.#opts = options;
    this.pool = createPool({ url: options.url, max: options.poolSize, onError: (err) => this.#opts.onError?.(err) });
  }

  get instanceId(): string {
    return this.#opts.instanceId;
  }

  // --- lifecycle ------------------------------------------------------------------------
  /**
   * Checks the server, then applies pending migrations holding an advisory lock, each in its own
   * transaction: instances starting together wait for the first, then find nothing to do.
   * Problems reaching or using the database become a DatabaseStartError with one line.
   */
  async migrate(): Promise<number> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw new DatabaseStartError(startErrorMessage(err, this.#opts.url));
    }
    try {
      const version = Number((await client.query('SHOW server_version_num')).rows[0].server_version_num);
      if (Math.floor(version / 10_000) < OLDEST_SUPPORTED_VERSION) {
        throw new DatabaseStartError(`PostgreSQL ${Math.floor(version / 10_000)} is too old: Sluice needs PostgreSQL ${OLDEST_SUPPORTED_VERSION} or newer`);
      }
      await client.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK})`);
      try {
        await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
        const applied = new Set((await client.query('SELECT version FROM schema_migrations')).rows.map((r) => r.version as number));
        const newest = Math.max(0, ...applied);
        const known = POSTGRES_MIGRATIONS.at(-1)!.version;
        if (newest > known) throw new DatabaseStartError(`the database was migrated by a newer Sluice (schema ${newest}, this version knows ${known}); upgrade this instance instead`);
        let count = 0;
        for (const migration of POSTGRES_MIGRATIONS) {
          if (applied.has(migration.version)) continue;
          await client.query('BEGIN');
          try {
            await client.query(migration.sql);
            await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, Date.now()]);
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK').catch(() => undefined);
            throw err;
          }
          count++;
        }
        return count;
      } finally {
        await client.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`).catch(() => undefined);
      }
    } catch (err) {
      if (err instanceof DatabaseStartError) throw err;
      throw new DatabaseStartError(startErrorMessage(err, this.#opts.url));
    } finally {
      client.release();
    }
  }

  async watch(onChange: (change: StorageChange) => void): Promise<void> {
    this.#listener = new ChangeListener(this.#opts.url, onChange, (err) => this.#opts.onError?.(err));
    await this.#listener.start();
  }

  isAvailable(): boolean {
    return (this.#listener?.connected ?? true) && this.#unreachableSince === null;
  }

  async close(): Promise<void> {
    await this.#listener?.close();
    this.#listener = null;
    await this.pool.end().catch(() => undefined);
  }

  // --- plumbing ---------------------------------------------------------------------------
  async #query(sql: string, values: unknown[] = [], on: Queryable = this.pool): Promise<pg.QueryResult<Row>> {
    try {
      const result = await on.query(sql, values);
      this.#unreachableSince = null;
      return result;
    } catch (err) {
      if ((err as { code?: string }).code === undefined || /^(08|57P)/.test((err as { code: string }).code)) this.#unreachableSince ??= Date.now();
      throw err;
    }
  }

  /**
   * One transaction on one pooled connection. `durable`: the commit waits for the disk (ingest
   * and API writes); otherwise it is asynchronous (worker bookkeeping, see connection.ts).
   */
  async #transaction<T>(durable: boolean, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      this.#unreachableSince ??= Date.now();
      throw err;
    }
    let broken: Error | undefined;
    try {
      await this.#query(durable ? 'BEGIN; SET LOCAL synchronous_commit = on' : 'BEGIN', [], client);
      const result = await fn(client);
      await this.#query('COMMIT', [], client);
      return result;
    } catch (err) {
      // A connection that cannot even roll back is dropped from the pool, not reused.
      await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** A single durable write (API changes): answered only once it is on disk. */
  #write(sql: string, values: unknown[]): Promise<pg.QueryResult<Row>> {
    return this.#transaction(true, (client) => this.#query(sql, values, client));
  }

  #notify(change: StorageChange, on: Queryable = this.pool): Promise<unknown> {
    return this.#query('SELECT pg_notify($1, $2)', [CHANGES_CHANNEL, change], on);
  }

  // --- master key -------------------------------------------------------------------------
  async masterKeyCheck(sealed: string): Promise<string> {
    await this.#write("INSERT INTO settings (name, value) VALUES ('master_key_check', $1) ON CONFLICT (name) DO NOTHING", [sealed]);
    return (await this.#query("SELECT value FROM settings WHERE name = 'master_key_check'")).rows[0].value;
  }

  // --- API keys -------------------------------------------------------------------------
  async insertApiKey(key: ApiKeyRecord): Promise<void> {
    // The same bootstrap key registered by two instances starting together is one key.
    await this.#write('INSERT INTO api_keys (id, name, role, prefix, hash, created_at, revoked_at, rate_limit, rate_burst) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (hash) DO NOTHING',
      [key.id, key.name, key.role, key.prefix, key.hash, key.created_at, key.revoked_at, key.rate_limit ?? null, key.rate_burst ?? null]);
  }

  async setApiKeyQuota(id: string, rateLimit: number | null, rateBurst: number | null): Promise<boolean> {
    return this.#transaction(true, async (client) => {
      const changed = (await this.#query('UPDATE api_keys SET rate_limit = $1, rate_burst = $2 WHERE id = $3', [rateLimit, rateBurst, id], client)).rowCount! > 0;
      // Other instances re-read their key cache: the quota holds everywhere.
      if (changed) await this.#notify('keys', client);
      return changed;
    });
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    return (await this.#query('SELECT * FROM api_keys WHERE hash = $1', [hash])).rows[0] as ApiKeyRecord | undefined;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return (await this.#query('SELECT * FROM api_keys ORDER BY created_at, id')).rows as ApiKeyRecord[];
  }

  async revokeApiKey(id: string, now: number): Promise<boolean> {
    return this.#transaction(true, async (client) => {
      const changed = (await this.#query('UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [now, id], client)).rowCount! > 0;
      if (changed) await this.#notify('keys', client);
      return changed;
    });
  }

  async countActiveAdminKeys(): Promise<number> {
    return (await this.#query("SELECT COUNT(*) AS n FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL")).rows[0].n;
  }

  // --- subscriptions --------------------------------------------------------------------
  #subscriptionValues(sub: SubscriptionRecord): unknown[] {
    const row: Record<string, unknown> = {
      ...sub,
      name: sub.name ?? null,
      events: JSON.stringify(sub.events),
      headers: JSON.stringify(sub.headers),
      headers_sealed: sub.headers_sealed ?? null,
      connector_options: JSON.stringify(sub.connector_options),
      retry: json(sub.retry),
      ordering: json(sub.ordering ?? null),
    };
    return SUBSCRIPTION_COLUMNS.map((c) => row[c] ?? null);
  }

  async insertSubscription(sub: SubscriptionRecord): Promise<void> {
    await this.#transaction(true, async (client) => {
      await this.#query(`INSERT INTO subscriptions (${SUBSCRIPTION_COLUMNS.join(', ')}) VALUES (${SUBSCRIPTION_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`, this.#subscriptionValues(sub), client);
      await this.#notify('subscriptions', client);
    });
  }

  async updateSubscription(sub: SubscriptionRecord): Promise<void> {
    const values = this.#subscriptionValues(sub);
    const sets = SUBSCRIPTION_COLUMNS.map((c, i) => (c === 'id' ? null : `${c} = $${i + 1}`)).filter(Boolean).join(', ');
    await this.#transaction(true, async (client) => {
      const before = (await this.#query('SELECT enabled FROM subscriptions WHERE id = $1 FOR UPDATE', [sub.id], client)).rows[0];
      await this.#query(`UPDATE subscriptions SET ${sets} WHERE id = $1`, values, client);
      if (before && before.enabled !== sub.enabled) {
        await this.#pauseOrResume(client, sub.id, sub.enabled, sub.updated_at);
        if (sub.enabled) await this.#notify('work', client);
      }
      // No longer `block`: the keys its failures stopped go on.
      if (sub.ordering?.on_failure !== 'block') {
        const keys = (await this.#query(`UPDATE deliveries SET blocks_key = false WHERE subscription_id = $1 AND ordering_key IS NOT NULL AND ${holdsKey('deliveries', ORDERING)} AND blocks_key RETURNING ordering_key`, [sub.id], client)).rows;
        if (keys.length && (await this.#wake(client, keys.map((k) => ({ sub: sub.id, key: k.ordering_key })))).length) await this.#notify('work', client);
      }
      await this.#notify('subscriptions', client);
    });
  }

  /** Wakes the first delivery of each key; returns those now pending (to be claimed at once). */
  async #wake(client: Queryable, keys: { sub: string; key: string }[]): Promise<string[]> {
    if (!keys.length) return [];
    const unique = [...new Map(keys.map((k) => [`${k.sub}\u0000${k.key}`, k])).values()];
    const rows = (await this.#query(WAKE_HEADS, [unique.map((k) => k.sub), unique.map((k) => k.key)], client)).rows;
    return rows.filter((r) => r.status === 'pending').map((r) => r.id as string);
  }

  /** A deleted subscription's failed deliveries block nothing any more, and its connector state goes. */
  async #forgetOrdering(client: Queryable, subscriptionId: string): Promise<void> {
    await this.#query(`UPDATE deliveries SET blocks_key = false WHERE subscription_id = $1 AND ordering_key IS NOT NULL AND ${holdsKey('deliveries', ORDERING)} AND blocks_key`, [subscriptionId], client);
    await this.#query('DELETE FROM connector_state WHERE subscription_id = $1', [subscriptionId], client);
  }

  /** Disable pauses a subscription's pending deliveries; enable makes its paused ones pending again. */
  async #pauseOrResume(client: Queryable, subscriptionId: string, enabled: boolean, now: number): Promise<void> {
    const [from, to] = enabled ? ['paused', 'pending'] : ['pending', 'paused'];
    await this.#query('UPDATE deliveries SET status = $1, updated_at = $2 WHERE subscription_id = $3 AND status = $4', [to, now, subscriptionId, from], client);
  }

  async getSubscription(id: string): Promise<SubscriptionRecord | undefined> {
    const row = (await this.#query('SELECT * FROM subscriptions WHERE id = $1 AND deleted_at IS NULL', [id])).rows[0];
    return row ? toSubscription(row) : undefined;
  }

  async listSubscriptions(): Promise<SubscriptionRecord[]> {
    return (await this.#query('SELECT * FROM subscriptions WHERE deleted_at IS NULL ORDER BY created_at, id')).rows.map(toSubscription);
  }

  async deleteSubscription(id: string, now: number): Promise<boolean> {
    return this.#transaction(true, async (client) => {
      const changed = (await this.#query('UPDATE subscriptions SET deleted_at = $1, enabled = false, updated_at = $1 WHERE id = $2 AND deleted_at IS NULL', [now, id], client)).rowCount;
      if (!changed) return false;
      await this.#query(`UPDATE deliveries SET status = 'cancelled', lease_until = NULL, lease_owner = NULL, updated_at = $1, last_error = 'subscription deleted' WHERE subscription_id = $2 AND status IN ${UNFINISHED}`, [now, id], client);
      await this.#query('DELETE FROM rate_slots WHERE subscription_id = $1', [id], client);
      await this.#forgetOrdering(client, id);
      await this.#notify('subscriptions', client);
      return true;
    });
  }

  // --- ingest ---------------------------------------------------------------------------
  async ingest(items: IngestItem[]): Promise<IngestResult[]> {
    try {
      return await this.#transaction(true, (client) => this.#ingestIn(client, items));
    } catch (err) {
      // Another instance stored the same event id or idempotency key between our check and our
      // insert: once more, and this time it is found as a duplicate.
      if ((err as { code?: string }).code !== '23505') throw err;
      return this.#transaction(true, (client) => this.#ingestIn(client, items));
    }
  }

  async #ingestIn(client: pg.PoolClient, items: IngestItem[]): Promise<IngestResult[]> {
    type Known = { id: string; event: string; request_hash: string | null; deliveries?: IngestResult['deliveries'] };
    const ids = items.map((i) => i.event.id);
    const keys = items.map((i) => i.event.idempotency_key).filter((k): k is string => !!k);
    const stored = (await this.#query('SELECT id, event, request_hash, idempotency_key FROM events WHERE id = ANY($1::text[]) OR idempotency_key = ANY($2::text[])', [ids, keys], client)).rows;
    const byId = new Map<string, Known>(stored.map((r) => [r.id, r as Known]));
    const byKey = new Map<string, Known>(stored.filter((r) => r.idempotency_key).map((r) => [r.idempotency_key, r as Known]));

    const results: (IngestResult | { duplicateOf: Known })[] = [];
    const newEvents: IngestItem[] = [];
    // Duplicates inside one batch resolve to the first occurrence, as they would across batches.
    const hashes = new Map(items.map((item) => [item, itemRequestHash(item)]));
    for (const item of items) {
      const { event, deliveries } = item;
      const hash = hashes.get(item)!;
      const foundById = byId.get(event.id);
      const existing = foundById ?? (event.idempotency_key ? byKey.get(event.idempotency_key) : undefined);
      if (existing && hash && existing.request_hash && existing.request_hash !== hash) {
        throw foundById
          ? new ConflictError('event_id_conflict', `An event with id "${event.id}" was already accepted with different content; give this event its own id.`, [{ path: '$.id', message: 'was already used for a different event', id: event.id }])
          : new ConflictError('idempotency_key_conflict', 'This Idempotency-Key was already used with a different body; use a new key for a new event.', [{ path: 'header:Idempotency-Key', message: 'was already used with a different body' }]);
      }
      if (existing) {
        results.push({ duplicateOf: existing });
        continue;
      }
      const own = deliveries.map((d) => ({ id: d.id, subscription_id: d.subscription_id }));
      const known: Known = { id: event.id, event: event.event, request_hash: hash, deliveries: own };
      byId.set(event.id, known);
      if (event.idempotency_key) byKey.set(event.idempotency_key, known);
      newEvents.push(item);
      results.push({ event_id: event.id, event: event.event, deliveries: own, duplicate: false });
    }

    // The first answer's deliveries, in the order it listed them, for events stored before.
    const earlier = [...new Set(results.flatMap((r) => ('duplicateOf' in r && !r.duplicateOf.deliveries ? [r.duplicateOf.id] : [])))];
    const earlierDeliveries = new Map<string, IngestResult['deliveries']>();
    if (earlier.length) {
      const rows = (await this.#query('SELECT event_id, id, subscription_id FROM deliveries WHERE event_id = ANY($1::text[]) AND replay_of IS NULL ORDER BY event_id, position', [earlier], client)).rows;
      for (const r of rows) {
        const list = earlierDeliveries.get(r.event_id) ?? [];
        list.push({ id: r.id, subscription_id: r.subscription_id });
        earlierDeliveries.set(r.event_id, list);
      }
    }

    if (newEvents.length) {
      const e = newEvents.map((i) => i.event);
      await this.#query(`INSERT INTO events (id, event, timestamp, data, received_at, idempotency_key, test, request_hash)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::boolean[], $8::text[])`, [
        e.map((x) => x.id), e.map((x) => x.event), e.map((x) => x.timestamp), e.map((x) => JSON.stringify(x.data)), e.map((x) => x.received_at),
        e.map((x) => x.idempotency_key), e.map((x) => x.test), newEvents.map((i) => hashes.get(i) ?? null),
      ], client);
      const d = newEvents.flatMap((i) => i.deliveries.map((delivery, position) => ({ ...delivery, position })));
      if (d.length) {
        // A delivery stored already leased (preclaimed at ingest) is this instance's, its claim counted.
        // Ordered deliveries take the next number of the acceptance order (a sequence shared by all instances).
        await this.#query(`INSERT INTO deliveries (id, event_id, subscription_id, position, event, msg_id, status, attempts, chain, next_attempt_at, lease_until, lease_owner,
            created_at, updated_at, last_attempt_at, last_status_code, last_error, unfinished_claims, ordering_key, sequence)
          SELECT id, event_id, subscription_id, position, event, msg_id, status, attempts, chain, next_attempt_at, lease_until,
            CASE WHEN status = 'delivering' THEN $17 END, created_at, updated_at, last_attempt_at, last_status_code, last_error,
            CASE WHEN status = 'delivering' THEN 1 ELSE 0 END, ordering_key, CASE WHEN ordering_key IS NOT NULL THEN nextval('delivery_sequence') END
          FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::int[], $9::int[], $10::bigint[], $11::bigint[],
            $12::bigint[], $13::bigint[], $14::bigint[], $15::int[], $16::text[], $18::text[])
            AS t(id, event_id, subscription_id, position, event, msg_id, status, attempts, chain, next_attempt_at, lease_until, created_at, updated_at, last_attempt_at, last_status_code, last_error, ordering_key)`, [
          d.map((x) => x.id), d.map((x) => x.event_id), d.map((x) => x.subscription_id), d.map((x) => x.position), d.map((x) => x.event), d.map((x) => x.msg_id),
          d.map((x) => x.status), d.map((x) => x.attempts), d.map((x) => x.chain), d.map((x) => x.next_attempt_at), d.map((x) => x.lease_until),
          d.map((x) => x.created_at), d.map((x) => x.updated_at), d.map((x) => x.last_attempt_at), d.map((x) => x.last_status_code), d.map((x) => x.last_error),
          this.#opts.instanceId, d.map((x) => x.ordering_key ?? null),
        ], client);
        // Work another instance may take: delivered at commit, so nobody looks before it exists.
        if (d.some((x) => x.status === 'pending')) await this.#notify('work', client);
      }
    }

    return results.map((r) => {
      if (!('duplicateOf' in r)) return r;
      const { id, event, deliveries } = r.duplicateOf;
      return { event_id: id, event, deliveries: deliveries ?? earlierDeliveries.get(id) ?? [], duplicate: true };
    });
  }

  async getEvent(id: string): Promise<EventRecord | undefined> {
    const row = (await this.#query('SELECT * FROM events WHERE id = $1', [id])).rows[0];
    return row ? toEvent(row) : undefined;
  }

  async recentEvents(eventName: string, limit: number): Promise<EventRecord[]> {
    return (await this.#query('SELECT * FROM events WHERE event = $1 AND NOT test ORDER BY received_at DESC, id DESC LIMIT $2', [eventName, limit])).rows.map(toEvent);
  }

  // --- data lifecycle -------------------------------------------------------------------
  async pruneDeliveries(cutoffs: PruneCutoffs, limit: number): Promise<PruneCounts> {
    // Without waiting for the disk: a prune lost to a crash is simply done again by the next pass.
    return this.#transaction(false, async (client) => {
      const rows = (await this.#query(`(SELECT id, event_id FROM deliveries WHERE status IN ('delivered','cancelled') AND updated_at < $1 ORDER BY updated_at LIMIT $3)
        UNION ALL (SELECT id, event_id FROM deliveries WHERE status = 'failed' AND updated_at < $2 AND NOT blocks_key ORDER BY updated_at LIMIT $3)`, [cutoffs.finishedBefore, cutoffs.failedBefore, limit], client)).rows.slice(0, limit);
      if (!rows.length) return { deliveries: 0, attempts: 0, events: 0 };
      const ids = rows.map((r) => r.id as string);
      const attempts = (await this.#query('DELETE FROM attempts WHERE delivery_id = ANY($1::text[])', [ids], client)).rowCount ?? 0;
      // A failed delivery that blocks its key stays (its key would go on unseen): replay or skip it.
      const deliveries = (await this.#query("DELETE FROM deliveries WHERE id = ANY($1::text[]) AND status IN ('delivered','cancelled','failed') AND NOT blocks_key", [ids], client)).rowCount ?? 0;
      const eventIds = [...new Set(rows.map((r) => r.event_id as string))];
      const events = (await this.#query('DELETE FROM events e WHERE e.id = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)', [eventIds], client)).rowCount ?? 0;
      return { deliveries, attempts, events };
    });
  }

  async sweepEvents(query: EventSweepQuery): Promise<EventSweepResult> {
    const after = query.after ?? { received_at: query.receivedFrom, id: '' };
    return this.#transaction(false, async (client) => {
      const rows = (await this.#query('SELECT id, received_at FROM events WHERE received_at < $1 AND (received_at, id) > ($2, $3) ORDER BY received_at, id LIMIT $4',
        [query.receivedBefore, after.received_at, after.id, query.limit], client)).rows;
      const ids = rows.map((r) => r.id as string);
      const deleted = ids.length
        ? (await this.#query('DELETE FROM events e WHERE e.id = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)', [ids], client)).rowCount ?? 0
        : 0;
      const last = rows.at(-1);
      return { scanned: rows.length, deleted, last: last ? { received_at: Number(last.received_at), id: last.id as string } : undefined };
    });
  }

  async eraseEvent(id: string): Promise<EraseResult> {
    return this.#transaction(true, async (client): Promise<EraseResult> => {
      // The event row locked first: a claim or an ingest of the same event waits for this.
      if (!(await this.#query('SELECT 1 FROM events WHERE id = $1 FOR UPDATE', [id], client)).rows.length) return { outcome: 'not_found' };
      const deliveries = (await this.#query(`SELECT id, status, subscription_id, ordering_key, ${holdsKey('deliveries', ORDERING)} AS holds FROM deliveries WHERE event_id = $1 FOR UPDATE`, [id], client)).rows;
      // An attempt on the wire would record its outcome for a delivery that no longer exists:
      // refuse, change nothing, and let the caller ask again once it finished.
      const inFlight = deliveries.filter((d) => d.status === 'delivering').map((d) => d.id as string);
      if (inFlight.length) return { outcome: 'in_flight', delivery_ids: inFlight };
      const cancelled = deliveries.filter((d) => d.status === 'pending' || d.status === 'paused' || d.status === 'waiting').length;
      const attempts = (await this.#query('DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id = $1)', [id], client)).rowCount ?? 0;
      const removed = (await this.#query('DELETE FROM deliveries WHERE event_id = $1', [id], client)).rowCount ?? 0;
      await this.#query('DELETE FROM events WHERE id = $1', [id], client);
      // Keys this event held: the next of each goes once it is gone.
      const woken = await this.#wake(client, deliveries.filter((d) => d.ordering_key && d.holds).map((d) => ({ sub: d.subscription_id, key: d.ordering_key })));
      if (woken.length) await this.#notify('work', client);
      return { outcome: 'erased', deliveries: removed, attempts, cancelled, ...(woken.length ? { woken } : {}) };
    });
  }

  async databaseSize(): Promise<DatabaseSize> {
    // PostgreSQL reuses what autovacuum frees; it does not say how much is free to reuse.
    const row = (await this.#query('SELECT pg_database_size(current_database()) AS bytes')).rows[0];
    return { bytes: Number(row.bytes), free_bytes: null };
  }

  // --- delivery worker ------------------------------------------------------------------
  /**
   * One statement leases what is due: rows another instance is leasing right now are skipped,
   * not waited for. The claim is counted before anything is done with the delivery (see
   * unfinished_claims).
   */
  async claimDue(now: number, limit: number, leaseUntil: number, skip?: ReadonlySet<string>): Promise<ClaimedDelivery[]> {
    if (!skip?.size) {
      return this.#claim(`SELECT id, ordering_key IS NOT NULL AS ordered FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED`, [now, leaseUntil, this.#opts.instanceId, limit]);
    }
    // Subscriptions whose destination is saturated here are passed over (see the worker), within
    // a bounded scan of what is due.
    return this.#claim(`SELECT id, ordering_key IS NOT NULL AS ordered FROM (SELECT id, subscription_id, ordering_key FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $5) due
      WHERE subscription_id <> ALL($6::text[]) LIMIT $4`, [now, leaseUntil, this.#opts.instanceId, limit, CLAIM_SCAN_LIMIT, [...skip]], true);
  }

  async claimByIds(ids: string[], now: number, leaseUntil: number): Promise<ClaimedDelivery[]> {
    if (!ids.length) return [];
    return this.#claim(`SELECT id, ordering_key IS NOT NULL AS ordered FROM deliveries WHERE id = ANY($4::text[]) AND status = 'pending' AND next_attempt_at <= $1 FOR UPDATE SKIP LOCKED`, [now, leaseUntil, this.#opts.instanceId, ids]);
  }

  /**
   * `recheck`: the pick could not lock its rows (a subquery), so the update checks again that each
   * is still pending. An ordered delivery is leased only when nothing ahead of it on its key is
   * unfinished (ordering-sql.ts); the statement's snapshot sees committed state, so a predecessor
   * another instance holds, or leases at this very moment (its pending row is still there in the
   * snapshot), keeps it back. Ordered deliveries picked but not leased are set aside (#setAside).
   */
  async #claim(pick: string, values: unknown[], recheck = false): Promise<ClaimedDelivery[]> {
    const rows = (await this.#query(`WITH picked AS (${pick}),
      leased AS (UPDATE deliveries SET status = 'delivering', lease_until = $2, lease_owner = $3, updated_at = $1, unfinished_claims = unfinished_claims + 1
        WHERE id IN (SELECT id FROM picked)${recheck ? " AND status = 'pending' AND next_attempt_at <= $1" : ''} AND ${mayStart('deliveries', ORDERING)} RETURNING *)
      SELECT leased.*, picked.id AS picked_id FROM picked LEFT JOIN leased ON leased.id = picked.id WHERE leased.id IS NOT NULL OR picked.ordered`, values)).rows;
    const leased = rows.filter((r) => r.id !== null);
    const heldBack = rows.filter((r) => r.id === null).map((r) => r.picked_id as string);
    if (heldBack.length) await this.#setAside(heldBack, values[0] as number);
    if (!leased.length) return [];
    // A fanned-out event has many deliveries: read and parse it once per claim, not per delivery.
    const eventIds = [...new Set(leased.map((d) => d.event_id as string))];
    const events = new Map((await this.#query('SELECT * FROM events WHERE id = ANY($1::text[])', [eventIds])).rows.map((r) => [r.id as string, toEvent(r)]));
    // Due order, as the worker expects (RETURNING keeps no order).
    leased.sort((a, b) => a.next_attempt_at - b.next_attempt_at || (a.id < b.id ? -1 : 1));
    return leased.map((d) => ({ delivery: toDelivery(d), event: events.get(d.event_id)! }));
  }

  /**
   * Ordered deliveries a claim could not lease: those still held back by a delivery ahead of them
   * become `waiting`, out of the claims' way, until a finish wakes them (WAKE_HEADS). Their rows are
   * locked first and judged by a later statement's snapshot: a finish that committed before the
   * lock is seen (they stay pending and are claimed next), and one that comes after waits for this
   * transaction and then wakes them. Rows locked by someone else are left pending for the next claim.
   */
  async #setAside(ids: string[], now: number): Promise<void> {
    await this.#transaction(false, async (client) => {
      const locked = (await this.#query("SELECT id FROM deliveries WHERE id = ANY($1::text[]) AND status = 'pending' ORDER BY id FOR UPDATE SKIP LOCKED", [ids], client)).rows.map((r) => r.id as string);
      if (!locked.length) return;
      await this.#query(`UPDATE deliveries SET status = 'waiting', updated_at = $2 WHERE id = ANY($1::text[]) AND status = 'pending' AND next_attempt_at <= $2 AND NOT ${mayStart('deliveries', ORDERING)}`, [locked, now], client);
    });
  }

  async releaseLeases(ids: string[], now: number, dueAt?: number): Promise<void> {
    if (!ids.length) return;
    // A lease handed back on purpose (pacing, shutdown) is a finished claim; only its owner may.
    await this.#transaction(false, async (client) => {
      const released = (await this.#query(`UPDATE deliveries SET status = ${WAITING_STATUS}, lease_until = NULL, lease_owner = NULL, updated_at = $2, next_attempt_at = COALESCE($3, next_attempt_at),
        unfinished_claims = GREATEST(unfinished_claims - 1, 0) WHERE id = ANY($1::text[]) AND status = 'delivering' AND lease_owner = $4`, [ids, now, dueAt ?? null, this.#opts.instanceId], client)).rowCount;
      if (released) await this.#notify('work', client);
    });
  }

  async renewLeases(ids: string[], leaseUntil: number): Promise<void> {
    if (!ids.length) return;
    await this.#query("UPDATE deliveries SET lease_until = $1 WHERE id = ANY($2::text[]) AND status = 'delivering' AND lease_owner = $3", [leaseUntil, ids, this.#opts.instanceId]);
  }

  /** Any instance may take back an expired lease, whoever held it: that is how a dead one's work survives. */
  async reclaimExpiredLeases(now: number): Promise<number> {
    return this.#transaction(false, async (client) => {
      const count = (await this.#query(`UPDATE deliveries SET status = ${WAITING_STATUS}, lease_until = NULL, lease_owner = NULL, updated_at = $1
        WHERE id IN (SELECT id FROM deliveries WHERE status = 'delivering' AND lease_until < $1 FOR UPDATE SKIP LOCKED)`, [now], client)).rowCount ?? 0;
      if (count) await this.#notify('work', client);
      return count;
    });
  }

  async completeAttempts(completions: AttemptCompletion[], now: number): Promise<CompletionResult> {
    if (!completions.length) return { applied: [], disabledBy: [], woken: [] };
    return this.#transaction(false, async (client) => {
      const a = completions.map((c) => c.attempt);
      await this.#query(`INSERT INTO attempts (id, delivery_id, chain, number, started_at, outcome, method, url, request_headers, request_body, response_status, response_headers, response_body, latency_ms, error, steps)
        SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], $12::text[], $13::text[], $14::float8[], $15::text[], $16::text[])
        ON CONFLICT (id) DO NOTHING`, [
        a.map((x) => x.id), a.map((x) => x.delivery_id), a.map((x) => x.chain), a.map((x) => x.number), a.map((x) => x.started_at), a.map((x) => x.outcome),
        a.map((x) => x.method), a.map((x) => x.url), a.map((x) => JSON.stringify(x.request_headers)), a.map((x) => x.request_body), a.map((x) => x.response_status),
        a.map((x) => json(x.response_headers)), a.map((x) => x.response_body), a.map((x) => x.latency_ms), a.map((x) => x.error), a.map((x) => json(x.steps)),
      ], client);
      // Only a delivery still leased by this instance is updated: a deleted subscription cancels
      // it meanwhile, and a lease that expired may be another instance's now.
      const blocks = completions.map((c) => c.status === 'failed' && c.block_key === true && !!c.ordering_key);
      const applied = (await this.#query(`UPDATE deliveries SET status = CASE WHEN c.status = 'pending' THEN ${WAITING_STATUS} ELSE c.status END, attempts = attempts + 1,
          next_attempt_at = COALESCE(c.next_attempt_at, deliveries.next_attempt_at), lease_until = NULL, lease_owner = NULL, unfinished_claims = 0, updated_at = $9,
          last_attempt_at = c.started_at, last_status_code = c.status_code, last_error = c.error, last_latency_ms = c.latency, blocks_key = c.block
        FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::int[], $6::text[], $7::float8[], $8::int[], $11::boolean[]) AS c(id, status, next_attempt_at, started_at, status_code, error, latency, chain, block)
        WHERE deliveries.id = c.id AND deliveries.status = 'delivering' AND deliveries.chain = c.chain AND deliveries.lease_owner = $10
        RETURNING deliveries.id, deliveries.status, deliveries.subscription_id, deliveries.blocks_key`, [
        completions.map((c) => c.delivery_id), completions.map((c) => c.status), completions.map((c) => c.next_attempt_at), a.map((x) => x.started_at),
        a.map((x) => x.response_status), a.map((x) => x.error), a.map((x) => x.latency_ms), a.map((x) => x.chain), now, this.#opts.instanceId, blocks,
      ], client)).rows;
      const disabledBy: string[] = [];
      let subscriptionsChanged = false;
      for (const c of completions) {
        if (c.delete_subscription) {
          const removed = (await this.#query('UPDATE subscriptions SET deleted_at = $1, enabled = false, disabled_reason = $2, updated_at = $1 WHERE id = $3 AND deleted_at IS NULL', [now, c.disable_subscription_reason, c.subscription_id], client)).rowCount;
          await this.#query(`UPDATE deliveries SET status = 'cancelled', lease_until = NULL, lease_owner = NULL, updated_at = $1, last_error = $2 WHERE subscription_id = $3 AND status IN ${UNFINISHED} AND id != $4`,
            [now, c.disable_subscription_reason, c.subscription_id, c.delivery_id], client);
          await this.#forgetOrdering(client, c.subscription_id);
          if (removed) disabledBy.push(c.delivery_id);
          subscriptionsChanged = true;
        } else if (c.disable_subscription_reason) {
          // Disabled, not deleted: what waits for it is paused, not dropped. Decided once: the
          // instance whose update finds it still enabled is the one that disabled it.
          const disabled = (await this.#query('UPDATE subscriptions SET enabled = false, disabled_reason = $1, updated_at = $2 WHERE id = $3 AND enabled AND deleted_at IS NULL', [c.disable_subscription_reason, now, c.subscription_id], client)).rowCount;
          if (disabled) {
            await this.#pauseOrResume(client, c.subscription_id, false, now);
            disabledBy.push(c.delivery_id);
            subscriptionsChanged = true;
          }
        }
      }
      // One health update per subscription per batch, not one per attempt; ids in a fixed order
      // so two instances' batches never wait on each other's rows in a cycle.
      const health = [...foldSubscriptionHealth(completions)].sort(([x], [y]) => (x < y ? -1 : 1));
      if (health.length) {
        await this.#query(`UPDATE subscriptions s SET last_delivery_at = $1, last_delivery_status = h.status,
            last_success_at = CASE WHEN h.success = 1 THEN $1 ELSE s.last_success_at END,
            failing_since = CASE h.failing WHEN 'reset' THEN NULL WHEN 'restart' THEN $1 WHEN 'continue' THEN COALESCE(s.failing_since, $1) ELSE s.failing_since END
          FROM unnest($2::text[], $3::text[], $4::int[], $5::text[]) AS h(id, status, success, failing) WHERE s.id = h.id`, [
          now, health.map(([id]) => id), health.map(([, h]) => h.status), health.map(([, h]) => h.success), health.map(([, h]) => h.failing),
        ], client);
      }
      if (subscriptionsChanged) await this.#notify('subscriptions', client);
      // Finished (not retried, not blocking): the next delivery of its key may go.
      const keyOf = new Map(completions.map((c) => [c.delivery_id, c.ordering_key]));
      const finished = applied.filter((r) => keyOf.get(r.id) && r.status !== 'pending' && r.status !== 'paused' && !r.blocks_key);
      const woken = await this.#wake(client, finished.map((r) => ({ sub: r.subscription_id, key: keyOf.get(r.id)! })));
      // A retry scheduled here may come due on another instance before this one polls again.
      if (woken.length || applied.some((r) => r.status === 'pending')) await this.#notify('work', client);
      return { applied: applied.map((r) => r.id as string), disabledBy, woken };
    });
  }

  async nextDueAt(): Promise<number | null> {
    return (await this.#query("SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE status = 'pending'")).rows[0].t ?? null;
  }

  async reserveRateSlot(subscriptionId: string, now: number, intervalMs: number): Promise<number> {
    const row = (await this.#query(`INSERT INTO rate_slots AS r (subscription_id, next_slot) VALUES ($1, $2::bigint + $3::bigint)
      ON CONFLICT (subscription_id) DO UPDATE SET next_slot = GREATEST(r.next_slot, $2::bigint) + $3::bigint RETURNING next_slot`, [subscriptionId, now, Math.ceil(intervalMs)])).rows[0];
    return row.next_slot - Math.ceil(intervalMs);
  }

  // --- delivery log ---------------------------------------------------------------------
  async getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    const row = (await this.#query('SELECT * FROM deliveries WHERE id = $1', [id])).rows[0];
    return row ? toDelivery(row) : undefined;
  }

  async listDeliveries(query: DeliveryQuery): Promise<DeliveryRecord[]> {
    const where: string[] = [];
    const p = new Params();
    if (query.subscription_id) where.push(`subscription_id = ${p.add(query.subscription_id)}`);
    if (query.status) where.push(statusCondition(query.status, p));
    if (query.event) where.push(`event = ${p.add(query.event)}`);
    if (query.cursor) where.push(`id < ${p.add(query.cursor)}`);
    const sql = `SELECT * FROM deliveries ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ${p.add(query.limit)}`;
    return (await this.#query(sql, p.values)).rows.map(toDelivery);
  }

  async listAttempts(deliveryId: string): Promise<AttemptRecord[]> {
    return (await this.#query('SELECT * FROM attempts WHERE delivery_id = $1 ORDER BY started_at, chain, number', [deliveryId])).rows.map(toAttempt);
  }

  async replayDeliveries(ids: string[], now: number): Promise<ReplayResult[]> {
    if (!ids.length) return [];
    return this.#transaction(true, async (client) => {
      const rows = new Map((await this.#query('SELECT id, status, ordering_key, blocks_key FROM deliveries WHERE id = ANY($1::text[]) FOR UPDATE', [ids], client)).rows.map((r) => [r.id as string, r]));
      const asNew = ids.filter((id) => rows.has(id) && isOldOrdered(rows.get(id)!.status, rows.get(id)!.ordering_key, rows.get(id)!.blocks_key));
      const inPlace = ids.filter((id) => rows.has(id) && !asNew.includes(id));
      const replayed = new Set((await this.#query(`UPDATE deliveries SET status = ${WAITING_STATUS}, attempts = 0, chain = chain + 1, unfinished_claims = 0, next_attempt_at = $1,
          lease_until = NULL, lease_owner = NULL, updated_at = $1, blocks_key = false
        WHERE id = ANY($2::text[]) AND status IN ('delivered','failed','cancelled','pending','paused','waiting') RETURNING id`, [now, inPlace], client)).rows.map((r) => r.id as string));
      // The same message (webhook-id) again, as a new delivery at the end of its key's queue.
      const fresh = new Map(asNew.map((id) => [id, newId('dlv', now)]));
      if (fresh.size) {
        await this.#query(`INSERT INTO deliveries (id, event_id, subscription_id, position, event, msg_id, status, attempts, chain, next_attempt_at, created_at, updated_at,
            unfinished_claims, ordering_key, sequence, blocks_key, replay_of)
          SELECT n.new_id, deliveries.event_id, deliveries.subscription_id, deliveries.position, deliveries.event, deliveries.msg_id, ${WAITING_STATUS}, 0, 1, $3, $3, $3,
            0, deliveries.ordering_key, nextval('delivery_sequence'), false, deliveries.id
          FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS n(old_id, new_id, ord) JOIN deliveries ON deliveries.id = n.old_id ORDER BY n.ord`, [[...fresh.keys()], [...fresh.values()], now], client);
      }
      if (replayed.size || fresh.size) await this.#notify('work', client);
      return ids.flatMap((id): ReplayResult[] => (fresh.has(id) ? [{ id, queued: fresh.get(id)! }] : replayed.has(id) ? [{ id, queued: id }] : []));
    });
  }

  async skipBlocked(id: string, now: number): Promise<{ skipped: boolean; woken: string[] }> {
    return this.#transaction(true, async (client) => {
      const row = (await this.#query(`UPDATE deliveries SET blocks_key = false, updated_at = $2 WHERE id = $1 AND ordering_key IS NOT NULL AND ${holdsKey('deliveries', ORDERING)} AND blocks_key
        RETURNING subscription_id, ordering_key`, [id, now], client)).rows[0];
      if (!row) return { skipped: false, woken: [] };
      const woken = await this.#wake(client, [{ sub: row.subscription_id, key: row.ordering_key }]);
      if (woken.length) await this.#notify('work', client);
      return { skipped: true, woken };
    });
  }

  async listBlockedKeys(subscriptionId: string, limit: number): Promise<BlockedKey[]> {
    const rows = (await this.#query(`SELECT b.*, (SELECT COUNT(*)::int FROM deliveries w WHERE w.subscription_id = b.subscription_id AND w.ordering_key = b.ordering_key AND ${holdsKey('w', ORDERING)} AND w.id <> b.id) AS waiting_count
      FROM deliveries b WHERE b.subscription_id = $1 AND b.ordering_key IS NOT NULL AND ${holdsKey('b', ORDERING)} AND b.blocks_key ORDER BY b.sequence LIMIT $2`, [subscriptionId, limit])).rows;
    return rows.map(({ waiting_count: waiting, ...delivery }) => ({ ordering_key: delivery.ordering_key, delivery: toDelivery(delivery), waiting }));
  }

  async orderingBlockers(ids: string[]): Promise<Map<string, OrderingBlocker>> {
    if (!ids.length) return new Map();
    // The one of its key in flight if any, else the first of the key ahead of it.
    const rows = (await this.#query(`SELECT d.id AS for_id, a.* FROM deliveries d CROSS JOIN LATERAL (
        (${inFlightBeside('d', 'f.id, f.status, f.blocks_key, 0 AS rank')} LIMIT 1)
        UNION ALL (${aheadOf('d', ORDERING, 'o.id, o.status, o.blocks_key, 1 AS rank')} ORDER BY o.sequence LIMIT 1)
        ORDER BY rank LIMIT 1) a
      WHERE d.id = ANY($1::text[]) AND d.ordering_key IS NOT NULL AND d.status IN ('pending','paused','waiting')`, [ids])).rows;
    return new Map(rows.map((r) => [r.for_id as string, { delivery_id: r.id, status: r.status, blocks_key: r.blocks_key }]));
  }

  async wakeFreeKeys(now: number): Promise<string[]> {
    return this.#transaction(false, async (client) => {
      const rows = (await this.#query(`UPDATE deliveries SET status = ${WAITING_STATUS}, updated_at = $1
        WHERE id IN (SELECT d.id FROM deliveries d WHERE d.ordering_key IS NOT NULL AND ${holdsKey('d', ORDERING)} AND d.status = 'waiting' AND ${mayStart('d', ORDERING)} FOR UPDATE SKIP LOCKED)
          AND status = 'waiting' RETURNING id, status`, [now], client)).rows;
      const woken = rows.filter((r) => r.status === 'pending').map((r) => r.id as string);
      if (woken.length) await this.#notify('work', client);
      return woken;
    });
  }

  async getConnectorState(subscriptionId: string, orderingKey: string): Promise<Record<string, string> | undefined> {
    const row = (await this.#query('SELECT value FROM connector_state WHERE subscription_id = $1 AND ordering_key = $2', [subscriptionId, orderingKey])).rows[0];
    return row ? JSON.parse(row.value) : undefined;
  }

  async setConnectorState(subscriptionId: string, orderingKey: string, value: Record<string, string> | null, now: number): Promise<void> {
    if (value === null) await this.#write('DELETE FROM connector_state WHERE subscription_id = $1 AND ordering_key = $2', [subscriptionId, orderingKey]);
    else await this.#write('INSERT INTO connector_state (subscription_id, ordering_key, value, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (subscription_id, ordering_key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
      [subscriptionId, orderingKey, JSON.stringify(value), now]);
  }

  async pruneConnectorState(before: number, limit: number): Promise<number> {
    return (await this.#query('DELETE FROM connector_state WHERE (subscription_id, ordering_key) IN (SELECT subscription_id, ordering_key FROM connector_state WHERE updated_at < $1 ORDER BY updated_at LIMIT $2)', [before, limit])).rowCount ?? 0;
  }

  async findDeliveriesForReplay(query: ReplayQuery): Promise<string[]> {
    const p = new Params();
    const where = [`subscription_id = ${p.add(query.subscription_id)}`];
    if (query.status) where.push(statusCondition(query.status, p));
    if (query.event) where.push(`event = ${p.add(query.event)}`);
    if (query.since !== undefined) where.push(`created_at >= ${p.add(query.since)}`);
    if (query.until !== undefined) where.push(`created_at <= ${p.add(query.until)}`);
    if (query.after !== undefined) where.push(`id > ${p.add(query.after)}`);
    return (await this.#query(`SELECT id FROM deliveries WHERE ${where.join(' AND ')} ORDER BY id LIMIT ${p.add(query.limit)}`, p.values)).rows.map((r) => r.id);
  }

  async deliveryStats(subscriptionId: string, since: number): Promise<{ delivered: number; failed: number; pending: number }> {
    const row = (await this.#query(`SELECT
        COUNT(*) FILTER (WHERE status = 'delivered') AS delivered,
        COUNT(*) FILTER (WHERE status = 'failed') AS failed,
        COUNT(*) FILTER (WHERE status IN ${UNFINISHED}) AS pending
      FROM deliveries WHERE subscription_id = $1 AND id >= $2`, [subscriptionId, idFloor('dlv', since)])).rows[0];
    return { delivered: row.delivered, failed: row.failed, pending: row.pending };
  }
}
