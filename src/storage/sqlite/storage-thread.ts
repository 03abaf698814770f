import type { MessagePort } from 'node:worker_threads';
import { SqliteStorage } from './sqlite-storage.ts';
import { errorToWire } from '../../errors.ts';
import { ownThreadId } from '../../thread-cpu.ts';
import { checkpoint, type StorageCall, type StorageReply, type StorageRequest, type ThreadData, type WalState } from './thread-protocol.ts';

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

  /** Runs one call (SQLite calls are synchronous: they never interleave, whoever sent them). */
  const serve = (request: StorageCall, reply: (answer: StorageReply) => void) => {
    const started = performance.now();
    let result: Promise<unknown>;
    try {
      const method = methods[request.method];
      if (typeof method !== 'function') throw new TypeError(`the storage has no method ${request.method}`);
      result = Promise.resolve(method.apply(storage, request.args));
    } catch (err) {
      result = Promise.reject(err);
    }
    const ms = performance.now() - started;
    result.then(
      (value) => reply({ id: request.id, result: value, ms }),
      (err: unknown) => reply({ id: request.id, error: errorToWire(err), ms }),
    );
  };
  const clients = new Set<MessagePort>();

  main.on('message', (request: StorageRequest) => {
    if ('close' in request) {
      for (const client of clients) client.close();
      void storage.close().finally(() => {
        main.close();
        wal.close();
      });
      return;
    }
    if ('attach' in request) {
      const client = request.attach;
      clients.add(client);
      client.on('message', (call: StorageCall) => serve(call, (answer) => client.postMessage(answer)));
      client.once('close', () => clients.delete(client));
      return;
    }
    serve(request, send);
  });

  // The checkpointer copied most of a long WAL: copy the rest here, between two transactions, so
  // the next write starts the WAL over instead of growing it.
  wal.on('message', (state: WalState) => {
    if (state.walFrames >= data.finishCheckpointAtFrames && storage.db.open) send({ checkpoint: checkpoint(storage.db, 'storage') });
  });
  send({ ready: true, osThreadId: ownThreadId() });
}
