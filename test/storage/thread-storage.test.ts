import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { PortStorage, SqliteThreadStorage, type SqliteThreadOptions } from '../../src/storage/sqlite/thread-storage.ts';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';
import type { CheckpointReport } from '../../src/storage/sqlite/thread-protocol.ts';
import { ConflictError, ServiceUnavailableError } from '../../src/errors.ts';
import type { IngestItem } from '../../src/storage/types.ts';
import { SQLITE_THREAD_PROBE, fixture, startGateway, tempDir, waitFor } from '../support/gateway.ts';

/**
 * The gateway's SQLite engine: a storage thread owns the connection, a checkpointer thread keeps
 * the WAL short. Real threads on a real file. What the Storage contract says is in the
 * conformance suite (which runs this engine too); here: what the threads add.
 */
const open: SqliteThreadStorage[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

function start(options: Partial<SqliteThreadOptions> = {}, file = path.join(tempDir(), 'sluice.db')): SqliteThreadStorage {
  const storage = new SqliteThreadStorage(file, { onFatal: (err) => { throw err; }, ...options });
  open.push(storage);
  return storage;
}

const key = (id: string) => ({ id, name: null, role: 'read' as const, prefix: `sk_read_${id}`, hash: id.padEnd(64, '0'), created_at: 1, revoked_at: null });

let seq = 0;
function item(data: unknown = fixture('call.ended').data): IngestItem {
  const id = `evt_thread_${process.pid}_${++seq}`;
  return { event: { id, event: 'call.ended', timestamp: new Date(0).toISOString(), data, received_at: Date.now(), idempotency_key: null, test: false }, deliveries: [], request_hash: 'h' + id };
}

describe('SqliteThreadStorage', () => {
  it('errors come back as the classes they were thrown as: the error tree\'s, and the driver\'s', async () => {
    const storage = start();
    await storage.migrate();
    const first = item();
    await storage.ingest([first]);
    const conflict = await storage.ingest([{ ...first, request_hash: 'another body' }]).catch((err: unknown) => err);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect(conflict).toMatchObject({ status: 409, code: 'event_id_conflict', details: [{ path: '$.id' }] });

    await storage.insertApiKey(key('key_a'));
    const duplicate = await storage.insertApiKey(key('key_a')).catch((err: unknown) => err);
    expect(duplicate).toBeInstanceOf(Database.SqliteError);
    expect(duplicate).toMatchObject({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
  });

  it('answers calls in the order they were made', async () => {
    const storage = start();
    await storage.migrate();
    // Not awaited one by one: all in flight at once, each read sees the writes sent before it.
    const writes = Array.from({ length: 20 }, (_, i) => storage.insertApiKey(key(`key_${String(i).padStart(2, '0')}`)));
    const counts = Array.from({ length: 5 }, () => storage.listApiKeys().then((keys) => keys.length));
    const revoke = storage.revokeApiKey('key_00', 5);
    const after = storage.listApiKeys();
    await Promise.all(writes);
    expect(await Promise.all(counts)).toEqual([20, 20, 20, 20, 20]);
    expect(await revoke).toBe(true);
    expect((await after).find((k) => k.id === 'key_00')!.revoked_at).toBe(5);
  });

  it('a crash of the storage thread is not silent: calls in flight and later ones fail, and onFatal is told', async () => {
    let fatal: Error | undefined;
    const storage = start({ preload: SQLITE_THREAD_PROBE, onFatal: (err) => (fatal = err) });
    await storage.migrate();
    const inFlight = storage.call('probeCrash', []);
    await expect(inFlight).rejects.toBeInstanceOf(ServiceUnavailableError);
    await waitFor(() => fatal, 10_000, 'onFatal');
    expect(fatal).toBeInstanceOf(ServiceUnavailableError);
    expect(fatal!.message).toMatch(/storage thread stopped: storage thread crash \(probe\)/);
    await expect(storage.listApiKeys()).rejects.toBe(fatal);
  });

  it('close lets what was sent finish, closes the database (its WAL checkpointed away), and refuses later calls', async () => {
    const file = path.join(tempDir(), 'sluice.db');
    const storage = start({}, file);
    await storage.migrate();
    const written = [item(), item()];
    const ingest = storage.ingest(written);
    await storage.close();
    expect((await ingest).map((r) => r.event_id)).toEqual(written.map((w) => w.event.id));
    await expect(storage.listApiKeys()).rejects.toBeInstanceOf(ServiceUnavailableError);
    // The last connection closed: SQLite checkpointed the WAL into the file and removed it.
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    const direct = new SqliteStorage(file);
    try {
      expect(await direct.getEvent(written[1].event.id)).toMatchObject({ id: written[1].event.id });
    } finally {
      await direct.close();
    }
  });

  it('commits with synchronous FULL and no checkpoint inside; the checkpointer copies the WAL and it starts over', async () => {
    const reports: CheckpointReport[] = [];
    const storage = start({ preload: SQLITE_THREAD_PROBE, checkpointIntervalMs: 5, finishCheckpointAtFrames: 64, onCheckpoint: (r) => reports.push(r) });
    await storage.migrate();
    expect(await storage.call('probePragma', ['synchronous'])).toBe(2);
    expect(await storage.call('probePragma', ['wal_autocheckpoint'])).toBe(0);
    const big = { blob: 'x'.repeat(20_000) };
    let peak = 0;
    // Keep writing until the WAL has grown past the threshold and then started over.
    await waitFor(async () => {
      await storage.ingest([item(big), item(big)]);
      peak = Math.max(peak, ...reports.map((r) => r.walFrames));
      const last = reports.at(-1);
      return peak >= 64 && last !== undefined && last.walFrames < peak && reports.some((r) => r.by === 'storage');
    }, 15_000, 'the WAL to grow past 64 frames and start over');
    const background = reports.filter((r) => r.by === 'checkpointer');
    expect(background.some((r) => r.checkpointed > 0)).toBe(true);
  });
});

describe('a gateway whose storage thread dies', () => {
  it('answers 503 instead of hanging, and reports it (the real entry point exits non-zero)', async () => {
    let fatal: Error | undefined;
    const gw = await startGateway({}, { sqliteThreadPreload: SQLITE_THREAD_PROBE, onFatal: (err) => (fatal = err) });
    try {
      const storage = gw.sluice.storage as SqliteThreadStorage;
      await expect(storage.call('probeCrash', [])).rejects.toBeInstanceOf(ServiceUnavailableError);
      await waitFor(() => fatal, 10_000, 'onFatal');
      const res = await gw.api('POST', '/api/v1/events', { ...fixture('call.ended'), id: `evt_dead_${process.pid}` });
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('unavailable');
    } finally {
      await gw.stop().catch(() => undefined);
    }
  });
});


describe('PortStorage (the delivery thread\'s client of the storage thread)', () => {
  it('runs its calls in the storage thread beside the owner\'s, with errors as their classes, and fails once the storage closes', async () => {
    const storage = start();
    await storage.migrate();
    const client = new PortStorage(storage.connect());
    // A write through one client is seen by the other: one connection, one thread.
    await client.insertApiKey(key('key_port'));
    expect((await storage.listApiKeys()).map((k) => k.id)).toEqual(['key_port']);
    await storage.insertApiKey(key('key_owner'));
    expect((await client.listApiKeys()).map((k) => k.id).sort()).toEqual(['key_owner', 'key_port']);
    const duplicate = await client.insertApiKey(key('key_port')).catch((err: unknown) => err);
    expect(duplicate).toBeInstanceOf(Database.SqliteError);
    const first = item();
    await client.ingest([first]);
    const conflict = await client.ingest([{ ...first, request_hash: 'another body' }]).catch((err: unknown) => err);
    expect(conflict).toBeInstanceOf(ConflictError);

    // The owner closing the database closes the port: a call waiting then, or made later, fails.
    await storage.close();
    const late = await client.listApiKeys().catch((err: unknown) => err);
    expect(late).toBeInstanceOf(ServiceUnavailableError);
  });
});
