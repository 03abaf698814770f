import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { PostgresStorage } from '../../src/storage/postgres/postgres-storage.ts';
import { clientConfig } from '../../src/storage/postgres/connection.ts';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { createTestDatabase, createTestSchema, type TestDatabase } from '../support/postgres.ts';
import { startReceiver } from '../support/receiver.ts';
import { durabilityWorkload } from './durability-workload.ts';

/**
 * "A 202 means the event is on disk", on PostgreSQL: the gateway's connections run with
 * `synchronous_commit = off` (the worker's claims and attempt records need no flush each), so
 * every write answered to a caller must commit with it on. The storage-level test
 * (conformance.test.ts) calls PostgresStorage directly; this one runs a real gateway on a
 * PostgreSQL schema and records, with triggers, the mode each of its writes ran under: it fails
 * if the wiring writes outside the store's durable transactions.
 */

/** Tables written by statement: the mode of each statement. */
const STATEMENT_TABLES = ['settings', 'api_keys', 'events', 'attempts', 'connector_state'];

interface Write {
  tbl: string;
  op: string;
  old_status: string | null;
  new_status: string | null;
  mode: string;
}

describe('synchronous_commit = on for every write a PostgreSQL gateway answers for', { timeout: 60_000 }, () => {
  let database: TestDatabase;
  let gw: TestGateway;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let probe: pg.Client;

  beforeAll(async () => {
    database = await createTestDatabase('pg_durability');
    const url = await createTestSchema(database);
    // Every third request fails: retries keep the worker claiming and recording between ingests.
    receiver = await startReceiver((_req, index) => ({ status: index % 3 === 0 ? 500 : 200 }));
    gw = await startGateway({ SLUICE_DATABASE_URL: url });
    expect(gw.sluice.storage).toBeInstanceOf(PostgresStorage);
    probe = new pg.Client(clientConfig(url));
    await probe.connect();
    // Deliveries are recorded row by row, with their status before and after: that tells a claim
    // or a completion (the worker's) from a replay (an operator's). Subscriptions too: the worker
    // records each one's last delivery (its health); an operator changes its settings.
    await probe.query(`CREATE TABLE commit_modes (tbl text, op text, old_status text, new_status text, mode text);
      CREATE FUNCTION record_statement_mode() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO commit_modes VALUES (TG_TABLE_NAME, TG_OP, NULL, NULL, current_setting('synchronous_commit')); RETURN NULL; END $$;
      CREATE FUNCTION record_delivery_mode() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO commit_modes VALUES ('deliveries', TG_OP,
          CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END, CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.status END,
          current_setting('synchronous_commit')); RETURN NULL; END $$;
      CREATE FUNCTION record_subscription_mode() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO commit_modes VALUES ('subscriptions', TG_OP, NULL,
          CASE WHEN TG_OP = 'UPDATE' AND NEW.last_delivery_at IS DISTINCT FROM OLD.last_delivery_at THEN 'health' ELSE 'settings' END,
          current_setting('synchronous_commit')); RETURN NULL; END $$;
      ${STATEMENT_TABLES.map((t) => `CREATE TRIGGER commit_mode AFTER INSERT OR UPDATE OR DELETE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION record_statement_mode();`).join('\n')}
      CREATE TRIGGER commit_mode AFTER INSERT OR UPDATE OR DELETE ON deliveries FOR EACH ROW EXECUTE FUNCTION record_delivery_mode();
      CREATE TRIGGER commit_mode AFTER INSERT OR UPDATE OR DELETE ON subscriptions FOR EACH ROW EXECUTE FUNCTION record_subscription_mode();`);
  });
  afterAll(async () => {
    await probe?.end();
    await gw?.stop();
    await receiver?.close();
    await database?.drop();
  });

  it('ingest, API writes and replays commit with synchronous_commit on; the worker\'s claims and attempt records without', async () => {
    await durabilityWorkload(gw, receiver.url, 3);

    const writes = (await probe.query<Write>('SELECT tbl, op, old_status, new_status, mode FROM commit_modes')).rows;
    const show = (list: Write[]) => list.map((w) => `${w.tbl} ${w.op} ${w.old_status ?? ''}->${w.new_status ?? ''}: ${w.mode}`);
    const finished = new Set(['delivered', 'failed', 'cancelled']);
    const callerWrites = writes.filter((w) =>
      ['events', 'api_keys'].includes(w.tbl)
      || (w.tbl === 'subscriptions' && w.new_status === 'settings')
      || (w.tbl === 'deliveries' && w.op === 'INSERT')
      // A replay: a finished delivery queued again.
      || (w.tbl === 'deliveries' && w.op === 'UPDATE' && finished.has(w.old_status!) && !finished.has(w.new_status!)));
    const workerWrites = writes.filter((w) =>
      (w.tbl === 'attempts' && w.op === 'INSERT')
      || (w.tbl === 'subscriptions' && w.new_status === 'health')
      // A claim (pending to delivering), a renewal, a completion or a lease given back.
      || (w.tbl === 'deliveries' && w.op === 'UPDATE' && (w.old_status === 'delivering' || w.new_status === 'delivering')));

    // The scenario did what it claims: events, API writes, replays, claims and attempts all ran.
    for (const [what, found] of [
      ['events', callerWrites.filter((w) => w.tbl === 'events').length],
      ['deliveries stored at ingest', callerWrites.filter((w) => w.tbl === 'deliveries' && w.op === 'INSERT').length],
      ['api keys', callerWrites.filter((w) => w.tbl === 'api_keys').length],
      ['subscription updates', callerWrites.filter((w) => w.tbl === 'subscriptions').length],
      ['replays', callerWrites.filter((w) => w.tbl === 'deliveries' && w.op === 'UPDATE').length],
      ['claims', workerWrites.filter((w) => w.new_status === 'delivering').length],
      ['attempt records', workerWrites.filter((w) => w.tbl === 'attempts').length],
      ['subscription health', workerWrites.filter((w) => w.tbl === 'subscriptions').length],
    ] as const) expect(found, what).toBeGreaterThan(0);
    // One statement per round at least (a round's three events may share one group commit).
    expect(callerWrites.filter((w) => w.tbl === 'events').length).toBeGreaterThanOrEqual(3);
    // Every write is one or the other: a new kind of write must be placed on a side.
    expect(show(writes.filter((w) => !callerWrites.includes(w) && !workerWrites.includes(w)))).toEqual([]);

    expect(show(callerWrites.filter((w) => w.mode !== 'on'))).toEqual([]);
    expect(show(workerWrites.filter((w) => w.mode !== 'off'))).toEqual([]);
  });
});
