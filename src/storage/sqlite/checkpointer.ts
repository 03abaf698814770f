import type { MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { checkpoint, type StorageReply, type ThreadData, type WalState } from './thread-protocol.ts';

/**
 * The checkpointer thread: its own connection copies the WAL into the database file (and fsyncs
 * that file) every `checkpointIntervalMs`, in PASSIVE mode, which never waits for the storage
 * thread's writes and never makes them wait. Durability does not depend on it (a commit is on
 * disk once its WAL frames are fsynced); it only keeps the WAL short.
 */
export function runCheckpointer(main: MessagePort, wal: MessagePort, data: ThreadData): void {
  const db = new Database(data.file, { fileMustExist: true });
  db.pragma('busy_timeout = 0');
  db.pragma('synchronous = FULL');
  db.pragma('wal_autocheckpoint = 0');
  db.pragma(`journal_size_limit = ${data.walSizeLimitBytes}`);
  const timer = setInterval(() => {
    const report = checkpoint(db, 'checkpointer');
    if (report.walFrames >= data.finishCheckpointAtFrames) wal.postMessage({ walFrames: report.walFrames, checkpointed: report.checkpointed } satisfies WalState);
    if (report.walFrames > 0) main.postMessage({ checkpoint: report } satisfies StorageReply);
  }, data.checkpointIntervalMs);
  main.on('message', () => {
    // The only message is the order to stop.
    clearInterval(timer);
    db.close();
    main.close();
    wal.close();
  });
}
