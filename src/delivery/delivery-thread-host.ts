import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker, type MessagePort } from 'node:worker_threads';
import type { Config } from '../config.ts';
import { bundleScript } from '../bundle-script.ts';
import { errorFromWire, ServiceUnavailableError } from '../errors.ts';
import type { AttemptRecord, ClaimedDelivery } from '../storage/types.ts';
import type { DeliveryEngine } from './delivery-stack.ts';
import { WorkerCapacity } from './worker-capacity.ts';
import type { DeliveryStats, DeliveryThreadData, FromDelivery, ToDelivery } from './delivery-thread-protocol.ts';

export interface DeliveryThreadOptions {
  config: Config;
  storagePort?: MessagePort;
  instanceId?: string;
  evaluatorScript: string;
  /** One of the gateway's own events, raised by the worker: recorded through ingest here. */
  onOperationalEvent: (event: string, data: Record<string, unknown>) => void;
  /** The worker changed a subscription: the HTTP thread's cache reads it again. */
  onSubscriptionsChanged: () => void;
  onStats: (stats: DeliveryStats) => void;
  /** The thread died: deliveries would silently stop, so the gateway must not go on (it exits). */
  onFatal: (err: Error) => void;
}

function threadScript(): string {
  const entry = fileURLToPath(new URL('./delivery-thread-entry.ts', import.meta.url));
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  return bundleScript('sluice-delivery-thread', { entryPoints: [entry] }, { 'better-sqlite3': driver });
}

/**
 * The delivery engine as the HTTP thread sees it when delivery runs in its own thread
 * (SLUICE_DELIVERY_THREAD, on by default): each call becomes a message, except the slot
 * reservations of ingest's preclaim, which read and write the worker's counts in shared memory
 * (they must answer at once, inside a commit's preparation).
 */
export class DeliveryThread implements DeliveryEngine {
  readonly #options: DeliveryThreadOptions;
  readonly #capacity: WorkerCapacity;
  readonly #leaseMs: number;
  readonly #thread: Worker;
  readonly #exited: Promise<void>;
  #calls = new Map<number, { resolve: (attempt: AttemptRecord | undefined) => void; reject: (err: Error) => void }>();
  #seq = 0;
  #saturated = new Set<string>();
  #sending = 0;
  #stopping = false;
  #onStopped?: () => void;

  /** Settled by the thread's answer to `start` (or by its end before that). */
  #started: { resolve: () => void; reject: (err: Error) => void } | undefined;
  #running = false;
  #osThreadId?: number;

  /** The thread starts loading at once (its code, templates, evaluators) while the gateway migrates and binds. */
  constructor(options: DeliveryThreadOptions) {
    this.#options = options;
    this.#capacity = WorkerCapacity.shared(options.config.deliveryConcurrency);
    this.#leaseMs = options.config.leaseSeconds * 1000;
    const data: DeliveryThreadData = {
      config: options.config,
      storagePort: options.storagePort,
      instanceId: options.instanceId,
      capacity: this.#capacity.buffer as SharedArrayBuffer,
      evaluatorScript: options.evaluatorScript,
    };
    const thread = new Worker(threadScript(), { workerData: data, transferList: options.storagePort ? [options.storagePort] : [] });
    this.#thread = thread;
    // The HTTP server keeps the gateway alive; a gateway that failed to start must not be held by this thread.
    thread.unref();
    thread.on('message', (message: FromDelivery) => this.#onMessage(message));
    thread.on('error', (err) => this.#ended(err));
    this.#exited = new Promise((exited) => thread.once('exit', (code) => {
      this.#ended(new Error(`the delivery thread exited with code ${code}`));
      exited();
    }));
  }

  get sendingCount(): number {
    return this.#sending;
  }

  /** The delivery thread's kernel thread id, once it reported it (Linux). */
  get osThreadId(): number | undefined {
    return this.#osThreadId;
  }

  /** The thread itself: a seam for tests, which end it to see that the gateway does not go on without it. */
  get thread(): Worker {
    return this.#thread;
  }

  /** Once the database is migrated: the worker reclaims stale leases and starts claiming. */
  start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#started = { resolve, reject };
      this.#thread.postMessage({ start: true } satisfies ToDelivery);
    });
  }

  #ended(cause: Error): void {
    if (this.#started && !this.#running) {
      this.#started.reject(cause);
      return;
    }
    this.#fail(cause);
  }

  #onMessage(message: FromDelivery): void {
    if ('ready' in message) {
      this.#running = true;
      this.#osThreadId = message.osThreadId;
      this.#started?.resolve();
    } else if ('startFailed' in message) this.#started?.reject(errorFromWire(message.startFailed));
    else if ('reply' in message) {
      const call = this.#calls.get(message.reply);
      this.#calls.delete(message.reply);
      if ('error' in message) call?.reject(errorFromWire(message.error));
      else call?.resolve(message.attempt ?? undefined);
    } else if ('emit' in message) this.#options.onOperationalEvent(message.emit, message.data);
    else if ('subscriptionsChanged' in message) this.#options.onSubscriptionsChanged();
    else if ('stats' in message) {
      this.#sending = message.stats.sending;
      this.#saturated = new Set(message.stats.saturated ?? []);
      this.#options.onStats(message.stats);
    } else if ('stopped' in message) this.#onStopped?.();
  }

  #fail(cause: Error): void {
    if (this.#stopping) return;
    this.#stopping = true;
    const err = new ServiceUnavailableError(`The delivery thread stopped: ${cause.message}`);
    err.cause = cause;
    for (const call of this.#calls.values()) call.reject(err);
    this.#calls.clear();
    this.#options.onFatal(err);
  }

  #post(message: ToDelivery): void {
    if (!this.#stopping) this.#thread.postMessage(message);
  }

  notify(deliveryIds: string[]): void {
    this.#post({ notify: deliveryIds });
  }

  poke(): void {
    this.#post({ poke: true });
  }

  reserve(wanted: number): { count: number; leaseUntil: number } {
    const count = this.#stopping ? 0 : this.#capacity.reserve(wanted);
    return { count, leaseUntil: count ? Date.now() + this.#leaseMs : 0 };
  }

  release(count: number): void {
    this.#capacity.release(count);
  }

  /** The thread releases their reservation when it takes them (as the worker does in-process). */
  startPreclaimed(claimed: ClaimedDelivery[]): void {
    // Stopping: their leases expire and the next start sends them.
    if (this.#stopping) this.#capacity.release(claimed.length);
    else this.#post({ preclaimed: claimed });
  }

  isSaturated(subscriptionId: string): boolean {
    return this.#saturated.has(subscriptionId);
  }

  runNow(deliveryId: string): Promise<AttemptRecord | undefined> {
    if (this.#stopping) return Promise.resolve(undefined);
    const call = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#calls.set(call, { resolve, reject });
      this.#thread.postMessage({ call, runNow: deliveryId } satisfies ToDelivery);
    });
  }

  subscriptionsChanged(): void {
    this.#post({ subscriptionsChanged: true });
  }

  /** The worker drains within the grace period and the thread closes its pool and storage client, then ends. */
  async stop(): Promise<void> {
    const thread = this.#thread;
    if (this.#stopping) {
      await this.#exited;
      return;
    }
    const stopped = new Promise<void>((resolve) => (this.#onStopped = resolve));
    thread.postMessage({ stop: true } satisfies ToDelivery);
    this.#stopping = true;
    await Promise.race([stopped, this.#exited]);
    for (const call of this.#calls.values()) call.resolve(undefined);
    this.#calls.clear();
    await thread.terminate();
    await this.#exited;
  }
}
