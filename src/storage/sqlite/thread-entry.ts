import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { serveStorage, type StoragePreload } from './storage-thread.ts';
import { runCheckpointer } from './checkpointer.ts';
import type { ThreadData } from './thread-protocol.ts';

/** The bundled script both SQLite threads run (see thread-storage.ts); workerData says which. */
export function startThread(preload?: StoragePreload): void {
  const { data, wal } = workerData as { data: ThreadData; wal: MessagePort };
  if (data.role === 'checkpointer') runCheckpointer(parentPort!, wal, data);
  else serveStorage(parentPort!, wal, data, preload);
}
