import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { clientConfig, describeTarget, isConnectionError, startErrorMessage } from '../../src/storage/postgres/connection.ts';
import { CHANGES_CHANNEL, ChangeListener } from '../../src/storage/postgres/change-listener.ts';
import type { StorageChange } from '../../src/storage/types.ts';
import { POSTGRES_ADMIN_URL, createTestDatabase, createTestSchema, type TestDatabase } from '../support/postgres.ts';
import { waitFor } from '../support/gateway.ts';

/**
 * The PostgreSQL engine's connections: their settings, the one-line reasons given at start, which
 * errors count as a lost connection, and the change listener riding out a lost connection (the
 * multi-instance test sees the same through child gateways; this one watches the listener itself).
 */

describe('PostgreSQL connection settings and start-up messages', () => {
  it('merges the URL\'s own options with relaxed commits, and sets the timeouts and the application name', () => {
    const withOptions = clientConfig('postgres://u:p@db.example:6543/app?options=-c%20search_path%3Dtenant&sslmode=disable');
    expect(withOptions).toMatchObject({
      connectionString: 'postgres://u:p@db.example:6543/app?sslmode=disable',
      connectionTimeoutMillis: 5_000,
      statement_timeout: 30_000,
      idle_in_transaction_session_timeout: 60_000,
      application_name: 'sluice',
      options: '-c search_path=tenant -c synchronous_commit=off',
    });
    expect(clientConfig('postgres://u@db.example/app')).toMatchObject({ connectionString: 'postgres://u@db.example/app', options: '-c synchronous_commit=off' });
    // Not a URL (a bare connection string): passed on as it is.
    expect(clientConfig('host=/var/run/postgresql dbname=app')).toMatchObject({ connectionString: 'host=/var/run/postgresql dbname=app', options: '-c synchronous_commit=off' });
  });

  it('reads BIGINT columns as numbers, and other types as pg does', async () => {
    const client = new pg.Client(clientConfig(POSTGRES_ADMIN_URL));
    await client.connect();
    try {
      const row = (await client.query("SELECT 9007199254740991::bigint AS big, 5::int AS small, '12.5'::numeric AS exact, 'on' AS text")).rows[0];
      expect(row).toEqual({ big: 9007199254740991, small: 5, exact: '12.5', text: 'on' });
      expect((await client.query('SHOW synchronous_commit')).rows[0].synchronous_commit).toBe('off');
    } finally {
      await client.end();
    }
  });

  it('names the target without its password', () => {
    expect(describeTarget('postgres://sluice%40ops:s3cret@db.example:6543/events%20db')).toBe('sluice@ops@db.example:6543/events db');
    expect(describeTarget('postgres://db.example/app')).toBe('db.example:5432/app');
    expect(describeTarget('postgres://u@db.example:5433')).toBe('u@db.example:5433/(default database)');
    expect(describeTarget('postgres:///app')).toBe('localhost:5432/app');
    expect(describeTarget('not a url s3cret')).toBe('the configured database');
  });

  it('gives one line an operator can act on for each way a start can fail, never the password', () => {
    const url = 'postgres://sluice:s3cret@db.example:5432/app';
    const message = (err: unknown) => startErrorMessage(err, url);
    expect(message({ code: 'ECONNREFUSED' })).toBe('cannot reach PostgreSQL at sluice@db.example:5432/app: connection refused; is the server running and SLUICE_DATABASE_URL right?');
    for (const code of ['ENOTFOUND', 'EAI_AGAIN']) expect(message({ code })).toBe('cannot reach PostgreSQL at sluice@db.example:5432/app: unknown host; check the host name in SLUICE_DATABASE_URL');
    for (const code of ['ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']) expect(message({ code })).toBe(`cannot reach PostgreSQL at sluice@db.example:5432/app: ${code}; check the host, port and firewall`);
    expect(message({ code: '28P01' })).toBe('PostgreSQL at sluice@db.example:5432/app refused the password; check the credentials in SLUICE_DATABASE_URL');
    expect(message({ code: '28000', message: 'no pg_hba.conf entry' })).toBe('PostgreSQL at sluice@db.example:5432/app refused the connection: no pg_hba.conf entry; check the user in SLUICE_DATABASE_URL and pg_hba.conf');
    expect(message({ code: '3D000', message: 'database "app" does not exist' })).toBe('PostgreSQL at sluice@db.example:5432/app: database "app" does not exist; create it (createdb) or fix SLUICE_DATABASE_URL');
    expect(message({ code: '42501', message: 'permission denied for schema public' })).toBe('PostgreSQL at sluice@db.example:5432/app: permission denied (permission denied for schema public); the gateway\'s user must be able to create tables in its schema');
    expect(message(new Error('Connection Timeout exceeded'))).toBe('cannot reach PostgreSQL at sluice@db.example:5432/app: the connection timed out; check the host, port and firewall');
    expect(message(new Error('something odd\n    at stack line'))).toBe('cannot use PostgreSQL at sluice@db.example:5432/app: something odd');
    expect(message('a bare string')).toBe('cannot use PostgreSQL at sluice@db.example:5432/app: a bare string');
    expect(message(undefined)).toBe('cannot use PostgreSQL at sluice@db.example:5432/app: undefined');
  });

  it('counts a lost connection or a server going away as worth retrying, and a bad statement not', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', '57P01', '57P02', '57P03', '08000', '08003', '08006']) expect(isConnectionError({ code }), code).toBe(true);
    for (const message of ['Connection terminated unexpectedly', 'connection timeout expired', 'Client has encountered a connection error and is not queryable']) expect(isConnectionError(new Error(message)), message).toBe(true);
    for (const err of [{ code: '23505' }, { code: '42P01', message: 'relation "x" does not exist' }, new Error('syntax error at or near "SELEC"'), null, undefined, 'ECONNRESET']) expect(isConnectionError(err), String(err)).toBe(false);
  });
});

describe('ChangeListener', () => {
  let database: TestDatabase;
  let admin: pg.Client;
  beforeAll(async () => {
    database = await createTestDatabase('change_listener');
    admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.query(`ALTER DATABASE ${database.name} ALLOW_CONNECTIONS true`).catch(() => undefined);
    await admin?.end();
    await database?.drop();
  });

  function listen(url: string) {
    const changes: StorageChange[] = [];
    const errors: { at: number; err: Error }[] = [];
    const listener = new ChangeListener(url, (change) => changes.push(change), (err) => errors.push({ at: Date.now(), err }));
    return { listener, changes, errors };
  }
  const notify = async (url: string, payload: string) => {
    const client = new pg.Client(clientConfig(url));
    await client.connect();
    await client.query(`SELECT pg_notify('${CHANGES_CHANNEL}', $1)`, [payload]);
    await client.end();
  };

  it('hears each known kind of change another connection announces, and ignores other payloads', async () => {
    const url = await createTestSchema(database);
    const { listener, changes, errors } = listen(url);
    expect(listener.connected).toBe(false);
    await listener.start();
    try {
      expect(listener.connected).toBe(true);
      for (const payload of ['work', 'forged', 'subscriptions', '', 'keys', 'work']) await notify(url, payload);
      await waitFor(() => changes.length === 4, 5_000, 'four changes heard');
      // The last notification arrived after the ignored ones: nothing else is coming.
      expect(changes).toEqual(['work', 'subscriptions', 'keys', 'work']);
      expect(errors).toEqual([]);
    } finally {
      await listener.close();
    }
    expect(listener.connected).toBe(false);
  });

  it('rides out a lost database: reports each failed reconnect, backs off, then reports every kind of change once back', async () => {
    const url = await createTestSchema(database);
    const { listener, changes, errors } = listen(url);
    await listener.start();
    try {
      await admin.query(`ALTER DATABASE ${database.name} ALLOW_CONNECTIONS false`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database.name]);
      await waitFor(() => !listener.connected, 5_000, 'the listener to see its connection lost');
      // The lost connection, then reconnects refused while the database takes no connections.
      await waitFor(() => errors.length >= 4, 10_000, 'three refused reconnects');
      // First the connection the server cut, then each refused reconnect.
      expect(errors[0].err.message).toMatch(/terminating connection due to administrator command/);
      const gaps = errors.slice(1, 4).map((e, i) => e.at - errors[i].at);
      // 100, 200, 400 ms apart, at least (later gaps include the time each attempt takes).
      expect(gaps[1]).toBeGreaterThanOrEqual(180);
      expect(gaps[2]).toBeGreaterThanOrEqual(380);
      expect(errors.slice(1).every((e) => /not currently accepting connections/.test(e.err.message))).toBe(true);
      expect(changes).toEqual([]);

      await admin.query(`ALTER DATABASE ${database.name} ALLOW_CONNECTIONS true`);
      await waitFor(() => listener.connected, 15_000, 'the listener to reconnect');
      // Notifications sent while it was away are lost: it reports every kind, once.
      expect(changes).toEqual(['work', 'subscriptions', 'keys']);
      await notify(url, 'keys');
      await waitFor(() => changes.length === 4, 5_000, 'a change heard after the reconnect');
      expect(changes.at(-1)).toBe('keys');
    } finally {
      await admin.query(`ALTER DATABASE ${database.name} ALLOW_CONNECTIONS true`);
      await listener.close();
    }
  });

  it('stops for good when closed: it hears nothing more, reports nothing and leaves no LISTEN session', async () => {
    const url = await createTestSchema(database);
    const { listener, changes, errors } = listen(url);
    await listener.start();
    await listener.close();
    await notify(url, 'work');
    // A fresh listener on the same channel hears the next notification: the closed one did not.
    const witness = listen(url);
    await witness.listener.start();
    try {
      await notify(url, 'subscriptions');
      await waitFor(() => witness.changes.length === 1, 5_000, 'the witness to hear a change');
      expect(changes).toEqual([]);
      expect(errors).toEqual([]);
      expect(listener.connected).toBe(false);
      const listening = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query = $2", [database.name, `LISTEN ${CHANGES_CHANNEL}`]);
      expect(listening.rows[0].n).toBe(1);
    } finally {
      await witness.listener.close();
    }
  });

  it('rejects start when the first connection fails', async () => {
    const { listener, errors } = listen('postgres://postgres@127.0.0.1:1/none');
    await expect(listener.start()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(listener.connected).toBe(false);
    await listener.close();
    expect(errors).toEqual([]);
  });
});
