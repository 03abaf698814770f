import type { MessagePort } from 'node:worker_threads';
import { SqliteStorage } from './sqlite-storage.ts';
import { errorToWire } from '../../errors.ts';
import { checkpoint, type StorageReply, type StorageRequest, type ThreadData, type WalState } from './thread-protocol.ts';

/** A test seam: runs in the storage thread on the storage it serves, before the first call. */
export type StoragePreload = (storage: SqliteStorage) => void;

/**
 * The SQLite storage thread: owns the gateway's one connection and runs every Storage call the
 * main thread sends, one at a time in the order sent, so commits and their fsyncs (synchronous =
 * FULL, as set by SqliteStorage) never block the HTTP event loop. It does no checkpoint inside a
 * commit: the checkpointer thread copies the WAL into the database file in the background.
 */
export function serveStorage(main: MessagePort, wal: MessagePort, data: ThreadData, preload?: StoragePreload): void {
  const storage = new SqliteStorage(data.file);
  storage.db.pragma('wal_autocheckpoint = 0');
  storage.db.pragma(`journal_size_limit = ${data.walSizeLimitBytes}`);
  preload?.(storage);
  const send = (reply: StorageReply) => main.postMessage(reply);
  const methods = storage as unknown as Record<string, unknown>;

  main.on('message', (request: StorageRequest) => {
    if ('close' in request) {
      void storage.close().finally(() => {
        main.close();
        wal.close();
      });
      return;
    }
    const started = performance.now();
    let result: Promise<unknown>;
    try {
      const method = methods[request.method];
      if (typeof method !== 'function') throw new TypeError(`the storage has no method ${request.method}`);
      // Every SQLite call is synchronous: it is done when this returns, so calls never interleave.
      result = Promise.resolve(method.apply(storage, request.args));
    } catch (err) {
      result = Promise.reject(err);
    }
    const ms = performance.now() - started;
    result.then(
      (value) => send({ id: request.id, result: value, ms }),
      (err: unknown) => send({ id: request.id, error: errorToWire(err), ms }),
    );
  });

  // The checkpointer copied most of a long WAL: copy the rest here, between two transactions, so
  // the next write starts the WAL over instead of growing it.
  wal.on('message', (state: WalState) => {
    if (state.walFrames >= data.finishCheckpointAtFrames && storage.db.open) send({ checkpoint: checkpoint(storage.db, 'storage') });
  });
  send({ ready: true });
}
