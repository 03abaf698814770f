import { PAGERDUTY_DEDUP_KEY_EXPRESSION } from '../../../connectors/pagerduty/dedup-key-expression.ts';

/** Numbered, append-only. Never edit a shipped migration: add the next number. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Migration 9 (SQLite) / 3 (PostgreSQL) gives PagerDuty subscriptions made before ordering existed
 * the connector's default ordering, by the dedup_key it derives from the event: what its guarantee
 * (a resolve never overtakes its trigger) needs. A database upgraded later gets the default of then.
 */
export const PAGERDUTY_ORDERING_SQL = `'${JSON.stringify({ key: PAGERDUTY_DEDUP_KEY_EXPRESSION, on_failure: 'continue' }).replaceAll("'", "''")}'`;

export const SQLITE_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT,
        role TEXT NOT NULL CHECK (role IN ('ingest','read','admin')),
        prefix TEXT NOT NULL,
        hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
      );
      CREATE INDEX api_keys_prefix ON api_keys(prefix);

      CREATE TABLE subscriptions (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        description TEXT,
        enabled INTEGER NOT NULL,
        disabled_reason TEXT,
        headers TEXT NOT NULL,
        auth_sealed TEXT,
        filter TEXT,
        mapping TEXT,
        connector TEXT NOT NULL,
        connector_options TEXT NOT NULL,
        connector_secrets_sealed TEXT,
        retry TEXT,
        timeout_seconds REAL,
        rate_limit REAL,
        secret_sealed TEXT NOT NULL,
        secret_prefix TEXT NOT NULL,
        previous_secret_sealed TEXT,
        previous_secret_expires_at INTEGER,
        source TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_delivery_at INTEGER,
        last_delivery_status TEXT,
        last_success_at INTEGER,
        failing_since INTEGER,
        deleted_at INTEGER
      );

      CREATE TABLE events (
        id TEXT PRIMARY KEY,
        event TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        data TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        idempotency_key TEXT UNIQUE,
        test INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX events_by_type ON events(event, received_at);

      CREATE TABLE deliveries (
        id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL REFERENCES events(id),
        subscription_id TEXT NOT NULL,
        event TEXT NOT NULL,
        msg_id TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        chain INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        lease_until INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_attempt_at INTEGER,
        last_status_code INTEGER,
        last_error TEXT
      );
      CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
      CREATE INDEX deliveries_by_event ON deliveries(event_id);
      CREATE INDEX deliveries_by_subscription ON deliveries(subscription_id, id);
      CREATE INDEX deliveries_leased ON deliveries(lease_until) WHERE status = 'delivering';

      CREATE TABLE attempts (
        id TEXT PRIMARY KEY,
        delivery_id TEXT NOT NULL,
        chain INTEGER NOT NULL,
        number INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        method TEXT NOT NULL,
        url TEXT NOT NULL,
        request_headers TEXT NOT NULL,
        request_body TEXT,
        response_status INTEGER,
        response_headers TEXT,
        response_body TEXT,
        latency_ms REAL NOT NULL,
        error TEXT,
        steps TEXT
      );
      CREATE INDEX attempts_by_delivery ON attempts(delivery_id, started_at);
    `,
  },
  {
    version: 2,
    name: 'latency of the last attempt on each delivery',
    sql: 'ALTER TABLE deliveries ADD COLUMN last_latency_ms REAL;',
  },
  {
    version: 3,
    name: 'api key prefixes shortened to a fixed part; keys looked up by hash',
    // A short bootstrap key used to be stored whole as its prefix: keep only the label and four
    // characters (what services/api-keys.ts keyPrefix() now stores).
    sql: `
      UPDATE api_keys SET prefix = CASE
        WHEN prefix GLOB 'sk_ingest_*' THEN substr(prefix, 1, 14)
        WHEN prefix GLOB 'sk_admin_*' THEN substr(prefix, 1, 13)
        WHEN prefix GLOB 'sk_read_*' THEN substr(prefix, 1, 12)
        ELSE substr(prefix, 1, 4) END;
      CREATE INDEX api_keys_hash ON api_keys(hash);
    `,
  },
  {
    version: 4,
    name: 'credential-like custom headers sealed',
    sql: 'ALTER TABLE subscriptions ADD COLUMN headers_sealed TEXT;',
  },
  {
    version: 5,
    name: 'events remember a hash of what was posted (idempotency conflicts)',
    sql: 'ALTER TABLE events ADD COLUMN request_hash TEXT;',
  },
  {
    version: 6,
    name: 'deliveries count claims that ended without an attempt record (crash loops)',
    sql: 'ALTER TABLE deliveries ADD COLUMN unfinished_claims INTEGER NOT NULL DEFAULT 0;',
  },
  {
    version: 7,
    name: 'subscription names (subscriptions as code)',
    sql: `
      ALTER TABLE subscriptions ADD COLUMN name TEXT;
      CREATE UNIQUE INDEX subscriptions_by_name ON subscriptions(name) WHERE name IS NOT NULL AND deleted_at IS NULL;
    `,
  },
  {
    version: 8,
    name: 'retention (finished deliveries and events by age) and ingest quotas on API keys',
    // Partial indexes: only finished deliveries enter them, so the hot path (pending ->
    // delivering -> delivered) pays one index insert per delivery, and the pruner reads the
    // oldest finished ones in order without passing over anything retention keeps.
    sql: `
      CREATE INDEX deliveries_finished ON deliveries(updated_at) WHERE status IN ('delivered','cancelled');
      CREATE INDEX deliveries_dead ON deliveries(updated_at) WHERE status = 'failed';
      CREATE INDEX events_by_received ON events(received_at, id);
      ALTER TABLE api_keys ADD COLUMN rate_limit REAL;
      ALTER TABLE api_keys ADD COLUMN rate_burst REAL;
    `,
  },
  {
    version: 9,
    name: 'ordered delivery per key: ordering policy, ordering key and sequence, blocked keys, connector state per key',
    // The partial index holds only unfinished ordered deliveries (and failed ones that block their
    // key): unordered deliveries never enter it, and the claim's check of a key reads a few entries.
    sql: `
      ALTER TABLE subscriptions ADD COLUMN ordering TEXT;
      ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
      ALTER TABLE deliveries ADD COLUMN sequence INTEGER;
      ALTER TABLE deliveries ADD COLUMN blocks_key INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE deliveries ADD COLUMN replay_of TEXT;
      CREATE INDEX deliveries_ordering ON deliveries(subscription_id, ordering_key, sequence)
        WHERE ordering_key IS NOT NULL AND (status IN ('pending','paused','waiting','delivering') OR blocks_key = 1);
      CREATE TABLE sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      INSERT INTO sequences (name, value) VALUES ('deliveries', 0);
      CREATE TABLE connector_state (
        subscription_id TEXT NOT NULL,
        ordering_key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (subscription_id, ordering_key)
      );
      CREATE INDEX connector_state_by_age ON connector_state(updated_at);
      UPDATE subscriptions SET ordering = ${PAGERDUTY_ORDERING_SQL} WHERE connector = 'pagerduty' AND ordering IS NULL;
    `,
  },
];
