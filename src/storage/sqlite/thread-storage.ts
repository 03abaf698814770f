import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Storage } from '../types.ts';
import { bundleScript } from '../../bundle-script.ts';
import { ServiceUnavailableError } from '../../errors.ts';
import { reviveStorageError, type CheckpointReport, type StorageReply, type StorageRequest, type ThreadData } from './thread-protocol.ts';

export interface SqliteThreadOptions {
  /** The storage thread died (or could not start): every call in flight has been rejected. */
  onFatal: (err: Error) => void;
  /** The SQLite time of each call, measured in the storage thread. */
  onCall?: (method: string, seconds: number) => void;
  onCheckpoint?: (report: CheckpointReport) => void;
  /** A test seam: a module whose default export (storage: SqliteStorage) => void runs in the storage thread. */
  preload?: string;
  checkpointIntervalMs?: number;
  finishCheckpointAtFrames?: number;
  walSizeLimitBytes?: number;
}

/** Storage methods that are calls into the thread (SQLite has none of the shared-database ones). */
type Forwarded = Exclude<keyof Storage, 'engine' | 'close' | 'watch' | 'isAvailable' | 'masterKeyCheck' | 'reserveRateSlot'>;
type Method<K extends Forwarded> = NonNullable<Storage[K]> & ((...args: any[]) => Promise<unknown>);

interface Pending {
  method: string;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Small young generations (V8 reserves them whether used or not, against a 200 MB budget for
 * the whole gateway). The storage thread's old generation may grow as far as the gateway's own
 * (128 MB): a group commit of many large events passes through it whole, and running out of
 * heap there would end the process. The checkpointer holds nothing but its code.
 */
const RESOURCE_LIMITS = {
  storage: { maxOldGenerationSizeMb: 128, maxYoungGenerationSizeMb: 2 },
  checkpointer: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 1 },
};

const DEFAULTS = { checkpointIntervalMs: 100, finishCheckpointAtFrames: 4_096, walSizeLimitBytes: 16 * 1024 * 1024 };

function threadScript(preload?: string): string {
  const entry = fileURLToPath(new URL('./thread-entry.ts', import.meta.url));
  const contents = preload
    ? `import { startThread } from ${JSON.stringify(entry)}; import preload from ${JSON.stringify(path.resolve(preload))}; startThread(preload);`
    : `import { startThread } from ${JSON.stringify(entry)}; startThread();`;
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  return bundleScript('sluice-sqlite-thread', { stdin: { contents, resolveDir: path.dirname(entry), loader: 'ts' } }, { 'better-sqlite3': driver });
}

/**
 * A Storage whose every method is a call into the SQLite storage thread by name: the pending
 * calls, their answers and failures. Subclasses say how a request is sent.
 */
abstract class ForwardingStorage implements Storage {
  readonly engine = 'sqlite' as const;
  readonly #pending = new Map<number, Pending>();
  #seq = 0;
  protected closing = false;
  protected failure?: Error;

  protected abstract send(request: StorageRequest): void;
  abstract close(): Promise<void>;

  /** The SQLite time of an answered call, measured in the storage thread. */
  protected answered(_method: string, _ms: number): void {}

  protected receive(reply: Extract<StorageReply, { id: number }>): void {
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    this.answered(pending.method, reply.ms);
    if ('error' in reply) pending.reject(reviveStorageError(reply.error));
    else pending.resolve(reply.result);
  }

  /** Rejects every call waiting; as the failure (later calls reject at once) unless only closing. */
  protected failAll(err: Error, isFailure = true): void {
    if (isFailure) this.failure = err;
    for (const pending of this.#pending.values()) pending.reject(err);
    this.#pending.clear();
  }

  /** Calls a method of the SqliteStorage in the thread by name (the typed methods below all come here). */
  call<T>(method: string, args: unknown[]): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new ServiceUnavailableError('The storage is closed.'));
    const id = ++this.#seq;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { method, resolve: resolve as (value: unknown) => void, reject });
      this.send({ id, method, args });
    });
  }

  #forward<K extends Forwarded>(method: K): Method<K> {
    return ((...args: unknown[]) => this.call(method, args)) as Method<K>;
  }

  readonly migrate = this.#forward('migrate');
  readonly insertApiKey = this.#forward('insertApiKey');
  readonly findApiKeyByHash = this.#forward('findApiKeyByHash');
  readonly listApiKeys = this.#forward('listApiKeys');
  readonly revokeApiKey = this.#forward('revokeApiKey');
  readonly countActiveAdminKeys = this.#forward('countActiveAdminKeys');
  readonly setApiKeyQuota = this.#forward('setApiKeyQuota');
  readonly insertSubscription = this.#forward('insertSubscription');
  readonly updateSubscription = this.#forward('updateSubscription');
  readonly getSubscription = this.#forward('getSubscription');
  readonly listSubscriptions = this.#forward('listSubscriptions');
  readonly deleteSubscription = this.#forward('deleteSubscription');
  readonly ingest = this.#forward('ingest');
  readonly getEvent = this.#forward('getEvent');
  readonly recentEvents = this.#forward('recentEvents');
  readonly claimDue = this.#forward('claimDue');
  readonly claimByIds = this.#forward('claimByIds');
  readonly releaseLeases = this.#forward('releaseLeases');
  readonly renewLeases = this.#forward('renewLeases');
  readonly reclaimExpiredLeases = this.#forward('reclaimExpiredLeases');
  readonly completeAttempts = this.#forward('completeAttempts');
  readonly nextDueAt = this.#forward('nextDueAt');
  readonly getDelivery = this.#forward('getDelivery');
  readonly listDeliveries = this.#forward('listDeliveries');
  readonly listAttempts = this.#forward('listAttempts');
  readonly replayDeliveries = this.#forward('replayDeliveries');
  readonly findDeliveriesForReplay = this.#forward('findDeliveriesForReplay');
  readonly deliveryStats = this.#forward('deliveryStats');
  readonly pruneDeliveries = this.#forward('pruneDeliveries');
  readonly sweepEvents = this.#forward('sweepEvents');
  readonly eraseEvent = this.#forward('eraseEvent');
  readonly databaseSize = this.#forward('databaseSize');
  readonly skipBlocked = this.#forward('skipBlocked');
  readonly listBlockedKeys = this.#forward('listBlockedKeys');
  readonly orderingBlockers = this.#forward('orderingBlockers');
  readonly wakeFreeKeys = this.#forward('wakeFreeKeys');
  readonly getConnectorState = this.#forward('getConnectorState');
  readonly setConnectorState = this.#forward('setConnectorState');
  readonly pruneConnectorState = this.#forward('pruneConnectorState');
}

/**
 * The SQLite engine as the gateway runs it: the connection lives in a storage thread (see
 * storage-thread.ts) and each Storage method here forwards its name and arguments there and
 * resolves with the answer (structured clone both ways), in call order. A checkpointer thread
 * with a second connection keeps the WAL short. The HTTP event loop never waits for a disk.
 * The storage thread dying is never silent: calls in flight reject, later calls reject at once,
 * and `onFatal` is told (the gateway exits non-zero).
 */
export class SqliteThreadStorage extends ForwardingStorage {
  readonly file: string;
  readonly #storage: Worker;
  #checkpointer?: Worker;
  readonly #startCheckpointer: () => Worker;
  /** Each thread's end, however it came. */
  readonly #exits = new Map<Worker, Promise<void>>();
  readonly #options: SqliteThreadOptions;
  #osThreadId?: number;

  constructor(file: string, options: SqliteThreadOptions) {
    super();
    this.file = file;
    this.#options = options;
    const data: Omit<ThreadData, 'role'> = {
      file,
      checkpointIntervalMs: options.checkpointIntervalMs ?? DEFAULTS.checkpointIntervalMs,
      finishCheckpointAtFrames: options.finishCheckpointAtFrames ?? DEFAULTS.finishCheckpointAtFrames,
      walSizeLimitBytes: options.walSizeLimitBytes ?? DEFAULTS.walSizeLimitBytes,
    };
    const script = threadScript(options.preload);
    const { port1, port2 } = new MessageChannel();
    const start = (role: ThreadData['role'], wal: typeof port1) => {
      const worker = new Worker(script, { workerData: { data: { ...data, role }, wal }, transferList: [wal], env: {}, resourceLimits: RESOURCE_LIMITS[role] });
      worker.on('message', (reply: StorageReply) => this.#onReply(reply));
      worker.on('error', (err) => this.#fail(role, err));
      this.#exits.set(worker, new Promise((resolve) => worker.once('exit', (code) => {
        this.#fail(role, new Error(`exited with code ${code}`));
        resolve();
      })));
      return worker;
    };
    this.#storage = start('storage', port1);
    // The checkpointer opens the file once the storage thread has created it (in WAL mode).
    this.#startCheckpointer = () => start('checkpointer', port2);
  }

  protected send(request: StorageRequest): void {
    this.#storage.postMessage(request);
  }

  protected override answered(method: string, ms: number): void {
    this.#options.onCall?.(method, ms / 1000);
  }

  #onReply(reply: StorageReply): void {
    if ('ready' in reply) {
      this.#osThreadId = reply.osThreadId;
      if (!this.closing && !this.failure) this.#checkpointer ??= this.#startCheckpointer();
      return;
    }
    if ('checkpoint' in reply) {
      this.#options.onCheckpoint?.(reply.checkpoint);
      return;
    }
    this.receive(reply);
  }

  #fail(thread: string, cause: Error): void {
    if (this.closing || this.failure) return;
    const failure = new ServiceUnavailableError(`The SQLite ${thread} thread stopped: ${cause.message}`);
    failure.cause = cause;
    this.failAll(failure);
    void this.#storage.terminate();
    void this.#checkpointer?.terminate();
    this.#options.onFatal(failure);
  }

  /** The storage thread's kernel thread id, once it reported it (Linux). */
  get osThreadId(): number | undefined {
    return this.#osThreadId;
  }

  /**
   * A second client of the storage thread (the delivery thread's): a port whose calls the
   * storage thread runs like this thread's own, one at a time. Transfer it to the thread that
   * will use it (see PortStorage).
   */
  connect(): MessagePort {
    const { port1, port2 } = new MessageChannel();
    this.#storage.postMessage({ attach: port2 } satisfies StorageRequest, [port2]);
    return port1;
  }

  /** Stops the checkpointer, then lets the storage thread finish what was sent and close the database. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.#checkpointer) {
      this.#checkpointer.postMessage({ close: true });
      await this.#exits.get(this.#checkpointer);
    }
    this.#storage.postMessage({ close: true } satisfies StorageRequest);
    await this.#exits.get(this.#storage);
    // Anything still waiting was sent after close: it will never be answered.
    this.failAll(new ServiceUnavailableError('The storage is closed.'), false);
  }
}

/**
 * The storage thread's other clients: Storage calls over a port from SqliteThreadStorage.connect(),
 * used in the delivery thread. Closing it closes only the port; the storage thread's owner closes
 * the database. The storage thread closing the port rejects what is still waiting.
 */
export class PortStorage extends ForwardingStorage {
  readonly #port: MessagePort;
  readonly #onCall?: (method: string, seconds: number) => void;

  constructor(port: MessagePort, onCall?: (method: string, seconds: number) => void) {
    super();
    this.#port = port;
    this.#onCall = onCall;
    port.on('message', (reply: StorageReply) => {
      if ('id' in reply) this.receive(reply);
    });
    port.once('close', () => {
      if (!this.closing) this.failAll(new ServiceUnavailableError('The SQLite storage thread closed its port.'));
    });
  }

  protected send(request: StorageRequest): void {
    this.#port.postMessage(request);
  }

  protected override answered(method: string, ms: number): void {
    this.#onCall?.(method, ms / 1000);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.#port.close();
    this.failAll(new ServiceUnavailableError('The storage is closed.'), false);
  }
}
