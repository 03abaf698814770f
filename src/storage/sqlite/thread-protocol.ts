/** Messages between the gateway's main thread and the SQLite storage and checkpointer threads. */
import Database from 'better-sqlite3';
import type { MessagePort } from 'node:worker_threads';
import { errorFromWire, type WireError } from '../../errors.ts';

/** What the bundled thread script is told at start (workerData). */
export interface ThreadData {
  role: 'storage' | 'checkpointer';
  file: string;
  /** Checkpointer: how often it checkpoints what the WAL holds (PASSIVE: never waits, never blocks the writer). */
  checkpointIntervalMs: number;
  /**
   * Storage thread: when the checkpointer reports a WAL of this many frames or more, it checkpoints
   * the few frames not yet copied itself, between two transactions, so that its next write starts
   * the WAL over (a writer that never pauses would otherwise outrun every background checkpoint).
   */
  finishCheckpointAtFrames: number;
  /** Bytes a WAL file is truncated to when it starts over. */
  walSizeLimitBytes: number;
}

/**
 * Main thread -> storage thread: a Storage method and its arguments, the order to close, or a
 * port of another client (the delivery thread) to serve like the main thread (calls only).
 */
export type StorageCall = { id: number; method: string; args: unknown[] };
export type StorageRequest = StorageCall | { close: true } | { attach: MessagePort };

/** Storage thread -> main thread. `ms`: the SQLite work of the call, in the thread. */
export type StorageReply =
  | { id: number; result: unknown; ms: number }
  | { id: number; error: WireError; ms: number }
  | { ready: true; osThreadId?: number }
  | { checkpoint: CheckpointReport };

/** One checkpoint: by the checkpointer (PASSIVE, in the background) or by the storage thread (finishing one). */
export interface CheckpointReport {
  by: 'checkpointer' | 'storage';
  ms: number;
  /** Frames in the WAL, and of those, copied into the database file (SQLite's wal_checkpoint answer). */
  walFrames: number;
  checkpointed: number;
  busy: boolean;
}

/** Checkpointer -> storage thread (a port between the two). */
export interface WalState {
  walFrames: number;
  checkpointed: number;
}

/** Errors from the storage thread come back as the same classes: the error tree's, or the driver's. */
export function reviveStorageError(wire: WireError): Error {
  return errorFromWire(wire, (w) => (w.name === 'SqliteError' ? new Database.SqliteError(w.message, w.code ?? 'SQLITE_ERROR') : undefined));
}

/** Runs one checkpoint on `db` and says what it did (`mode` PASSIVE never waits for the writer). */
export function checkpoint(db: Database.Database, by: CheckpointReport['by']): CheckpointReport {
  const started = performance.now();
  const [row] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
  return { by, ms: performance.now() - started, walFrames: row.log, checkpointed: row.checkpointed, busy: row.busy === 1 };
}
