import pg from 'pg';

/** The oldest PostgreSQL the gateway runs on: the oldest major version still supported upstream. */
export const OLDEST_SUPPORTED_VERSION = 13;

/** A database the gateway cannot use at start: a one-line reason, shown without a stack trace. */
export class DatabaseStartError extends Error {}

/** BIGINT (epoch ms, counts) as a number: every value the gateway stores fits in 2^53. */
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

export interface PoolOptions {
  url: string;
  max: number;
  onError: (err: Error) => void;
}

/**
 * One pool per instance. Commits are asynchronous by default (worker bookkeeping: losing one to a
 * crash only means a delivery is sent again); ingest and API writes turn synchronous commit back
 * on in their transaction, so a 202 is on disk. A statement that hangs is cut off, and so is a
 * transaction left open by a stalled process: neither may hold row locks for long.
 */
export function createPool({ url, max, onError }: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    ...clientConfig(url),
    max,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', onError);
  return pool;
}

export function clientConfig(url: string): pg.ClientConfig {
  // Values parsed from the URL override the config's, so the URL's own `options` are merged here.
  const { url: rest, options } = splitOptions(url);
  return {
    connectionString: rest,
    types,
    connectionTimeoutMillis: 5_000,
    statement_timeout: 30_000,
    idle_in_transaction_session_timeout: 60_000,
    application_name: 'sluice',
    options: [options, '-c synchronous_commit=off'].filter(Boolean).join(' '),
  };
}

function splitOptions(url: string): { url: string; options: string | null } {
  try {
    const parsed = new URL(url);
    const options = parsed.searchParams.get('options');
    parsed.searchParams.delete('options');
    return { url: parsed.toString(), options };
  } catch {
    return { url, options: null };
  }
}

/** Where the URL points, without the password: for messages. */
export function describeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.username ? `${decodeURIComponent(u.username)}@` : ''}${u.hostname || 'localhost'}:${u.port || 5432}/${decodeURIComponent(u.pathname.slice(1)) || '(default database)'}`;
  } catch {
    return 'the configured database';
  }
}

/** One line an operator can act on, for an error met while connecting at start. */
export function startErrorMessage(err: unknown, url: string): string {
  const target = describeTarget(url);
  const e = err as { code?: string; message?: string };
  switch (e?.code) {
    case 'ECONNREFUSED':
      return `cannot reach PostgreSQL at ${target}: connection refused; is the server running and SLUICE_DATABASE_URL right?`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot reach PostgreSQL at ${target}: unknown host; check the host name in SLUICE_DATABASE_URL`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot reach PostgreSQL at ${target}: ${e.code}; check the host, port and firewall`;
    case '28P01':
      return `PostgreSQL at ${target} refused the password; check the credentials in SLUICE_DATABASE_URL`;
    case '28000':
      return `PostgreSQL at ${target} refused the connection: ${e.message}; check the user in SLUICE_DATABASE_URL and pg_hba.conf`;
    case '3D000':
      return `PostgreSQL at ${target}: ${e.message}; create it (createdb) or fix SLUICE_DATABASE_URL`;
    case '42501':
      return `PostgreSQL at ${target}: permission denied (${e.message}); the gateway's user must be able to create tables in its schema`;
  }
  if (/timeout/i.test(e?.message ?? '')) return `cannot reach PostgreSQL at ${target}: the connection timed out; check the host, port and firewall`;
  return `cannot use PostgreSQL at ${target}: ${(e?.message ?? String(err)).split('\n')[0]}`;
}

/** Connection lost, server gone or shutting down: worth retrying, unlike a bad statement. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? '';
  const message = (err as Error)?.message ?? '';
  return ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', '57P01', '57P02', '57P03', '08000', '08003', '08006'].includes(code)
    || /Connection terminated|connection timeout|Client has encountered a connection error/i.test(message);
}
