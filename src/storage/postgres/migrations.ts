import { PAGERDUTY_ORDERING_SQL, type Migration } from '../sqlite/migrations.ts';

/**
 * Numbered, append-only, run under an advisory lock (see postgres-storage.ts migrate()). Never
 * edit a shipped migration: add the next number.
 *
 * Version 1 is the SQLite schema as of its migration 7, plus what several instances need: the
 * owner of a lease, rate-limit slots shared by all instances, and a settings table (the master
 * key check). Times are epoch milliseconds (BIGINT); JSON is kept as TEXT so a payload's key
 * order survives; ids compare bytewise (COLLATE "C") because the delivery log pages by id.
 */
export const POSTGRES_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'initial schema (SQLite schema 7, lease owners, shared rate-limit slots, settings)',
    sql: `
      CREATE TABLE api_keys (
        id TEXT COLLATE "C" PRIMARY KEY,
        name TEXT,
        role TEXT NOT NULL CHECK (role IN ('ingest','read','admin')),
        prefix TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
      );
      CREATE INDEX api_keys_prefix ON api_keys(prefix);

      CREATE TABLE subscriptions (
        id TEXT COLLATE "C" PRIMARY KEY,
        name TEXT,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        description TEXT,
        enabled BOOLEAN NOT NULL,
        disabled_reason TEXT,
        headers TEXT NOT NULL,
        headers_sealed TEXT,
        auth_sealed TEXT,
        filter TEXT,
        mapping TEXT,
        connector TEXT NOT NULL,
        connector_options TEXT NOT NULL,
        connector_secrets_sealed TEXT,
        retry TEXT,
        timeout_seconds DOUBLE PRECISION,
        rate_limit DOUBLE PRECISION,
        secret_sealed TEXT NOT NULL,
        secret_prefix TEXT NOT NULL,
        previous_secret_sealed TEXT,
        previous_secret_expires_at BIGINT,
        source TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        last_delivery_at BIGINT,
        last_delivery_status TEXT,
        last_success_at BIGINT,
        failing_since BIGINT,
        deleted_at BIGINT
      );
      CREATE UNIQUE INDEX subscriptions_by_name ON subscriptions(name) WHERE name IS NOT NULL AND deleted_at IS NULL;

      CREATE TABLE events (
        id TEXT COLLATE "C" PRIMARY KEY,
        event TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        data TEXT NOT NULL,
        received_at BIGINT NOT NULL,
        idempotency_key TEXT UNIQUE,
        test BOOLEAN NOT NULL DEFAULT false,
        request_hash TEXT
      );
      CREATE INDEX events_by_type ON events(event, received_at);

      CREATE TABLE deliveries (
        id TEXT COLLATE "C" PRIMARY KEY,
        event_id TEXT COLLATE "C" NOT NULL REFERENCES events(id),
        subscription_id TEXT COLLATE "C" NOT NULL,
        -- Its place among its event's deliveries: a duplicate ingest lists them in this order.
        position INTEGER NOT NULL DEFAULT 0,
        event TEXT NOT NULL,
        msg_id TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        chain INTEGER NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        lease_until BIGINT,
        -- The instance holding the lease: only it may renew, release or complete it.
        lease_owner TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        last_attempt_at BIGINT,
        last_status_code INTEGER,
        last_error TEXT,
        last_latency_ms DOUBLE PRECISION,
        unfinished_claims INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
      CREATE INDEX deliveries_by_event ON deliveries(event_id);
      CREATE INDEX deliveries_by_subscription ON deliveries(subscription_id, id);
      CREATE INDEX deliveries_leased ON deliveries(lease_until) WHERE status = 'delivering';

      CREATE TABLE attempts (
        id TEXT COLLATE "C" PRIMARY KEY,
        delivery_id TEXT COLLATE "C" NOT NULL,
        chain INTEGER NOT NULL,
        number INTEGER NOT NULL,
        started_at BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        method TEXT NOT NULL,
        url TEXT NOT NULL,
        request_headers TEXT NOT NULL,
        request_body TEXT,
        response_status INTEGER,
        response_headers TEXT,
        response_body TEXT,
        latency_ms DOUBLE PRECISION NOT NULL,
        error TEXT,
        steps TEXT
      );
      CREATE INDEX attempts_by_delivery ON attempts(delivery_id, started_at);

      -- rate_limit across instances: the earliest start of the next attempt per subscription.
      CREATE TABLE rate_slots (
        subscription_id TEXT COLLATE "C" PRIMARY KEY,
        next_slot BIGINT NOT NULL
      );

      CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'retention (finished deliveries and events by age) and ingest quotas on API keys (SQLite 8)',
    sql: `
      CREATE INDEX deliveries_finished ON deliveries(updated_at) WHERE status IN ('delivered','cancelled');
      CREATE INDEX deliveries_dead ON deliveries(updated_at) WHERE status = 'failed';
      CREATE INDEX events_by_received ON events(received_at, id);
      ALTER TABLE api_keys ADD COLUMN rate_limit DOUBLE PRECISION;
      ALTER TABLE api_keys ADD COLUMN rate_burst DOUBLE PRECISION;
    `,
  },
  {
    version: 3,
    name: 'ordered delivery per key: ordering policy, ordering key and sequence, blocked keys, connector state per key (SQLite 9)',
    sql: `
      ALTER TABLE subscriptions ADD COLUMN ordering TEXT;
      ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
      ALTER TABLE deliveries ADD COLUMN sequence BIGINT;
      ALTER TABLE deliveries ADD COLUMN blocks_key BOOLEAN NOT NULL DEFAULT false;
      ALTER TABLE deliveries ADD COLUMN replay_of TEXT COLLATE "C";
      CREATE INDEX deliveries_ordering ON deliveries(subscription_id, ordering_key, sequence)
        WHERE ordering_key IS NOT NULL AND (status IN ('pending','paused','waiting','delivering') OR blocks_key);
      -- Instances accepting events of one key at once may commit them out of sequence order: one
      -- in flight then holds the key whatever its sequence (ordering-sql.ts, inFlightBeside).
      CREATE INDEX deliveries_ordering_inflight ON deliveries(subscription_id, ordering_key) WHERE ordering_key IS NOT NULL AND status = 'delivering';
      -- Acceptance order of ordered deliveries, across instances.
      CREATE SEQUENCE delivery_sequence;
      CREATE TABLE connector_state (
        subscription_id TEXT COLLATE "C" NOT NULL,
        ordering_key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (subscription_id, ordering_key)
      );
      CREATE INDEX connector_state_by_age ON connector_state(updated_at);
      UPDATE subscriptions SET ordering = ${PAGERDUTY_ORDERING_SQL} WHERE connector = 'pagerduty' AND ordering IS NULL;
    `,
  },
];
