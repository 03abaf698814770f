/** Messages between the gateway's HTTP thread and its delivery thread (see delivery-thread-host.ts). */
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config.ts';
import type { WireError } from '../errors.ts';
import type { AttemptRecord, ClaimedDelivery } from '../storage/types.ts';

/** What the delivery thread is given at start (workerData). */
export interface DeliveryThreadData {
  config: Config;
  /** SQLite: a port to the storage thread (SqliteThreadStorage.connect). PostgreSQL: none (its own pool). */
  storagePort?: MessagePort;
  /** PostgreSQL: the lease owner name of this gateway instance (its HTTP thread preclaims under it too). */
  instanceId?: string;
  /** The worker's slot counts, shared with ingest's preclaim (WorkerCapacity). */
  capacity: SharedArrayBuffer;
  /** The bundled evaluator script, built once by the HTTP thread. */
  evaluatorScript: string;
}

/** HTTP thread -> delivery thread. */
export type ToDelivery =
  | { start: true }
  | { notify: string[] }
  | { poke: true }
  | { preclaimed: ClaimedDelivery[] }
  | { subscriptionsChanged: true }
  | { call: number; runNow: string }
  | { stop: true };

/** What the delivery thread measured since its last report (merged into the HTTP thread's /metrics). */
export interface DeliveryStats {
  attempts: { outcome: string; seconds: number }[];
  storageCalls: { method: string; seconds: number }[];
  sending: number;
  /** Subscriptions whose destination queue is full (null: none). */
  saturated: string[] | null;
}

/** Delivery thread -> HTTP thread. */
export type FromDelivery =
  | { ready: true; osThreadId?: number }
  | { startFailed: WireError }
  | { reply: number; attempt: AttemptRecord | null }
  | { reply: number; error: WireError }
  | { emit: string; data: Record<string, unknown> }
  | { subscriptionsChanged: true }
  | { stats: DeliveryStats }
  | { stopped: true };
