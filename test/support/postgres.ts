import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The PostgreSQL server the tests use (the .ci/run script starts it); overridable for other setups. */
export const POSTGRES_ADMIN_URL = process.env.SLUICE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  /** A URL for the fresh database. */
  url: string;
  name: string;
  /** Drops the database (closing whatever is still connected). */
  drop(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (err) {
    // Not a skip: a suite that cannot reach its database has not tested the PostgreSQL engine.
    throw new Error(`PostgreSQL is not reachable at ${POSTGRES_ADMIN_URL} (${(err as Error).message}); start it (.ci/run does) — the PostgreSQL tests need it and do not skip`);
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh, empty database for one test file; call drop() in afterAll. */
export async function createTestDatabase(label = 'test'): Promise<TestDatabase> {
  const name = `sluice_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () => admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

/** A URL for a fresh schema inside `database` (cheaper than a database per test). */
export async function createTestSchema(database: TestDatabase): Promise<string> {
  const schema = `s_${randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await client.end();
  }
  const url = new URL(database.url);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}
