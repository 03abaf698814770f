/**
 * Where every template and filter the gateway runs is evaluated: a small pool of worker
 * threads, each with a capped heap, watched from this thread. Whatever a template does — loop,
 * allocate, meet a pathological input — it cannot crash the process, grow its memory past
 * `threads × heapMb`, or hold the event loop that serves HTTP and storage.
 *
 * - Watchdog: an evaluation still running `timeoutMs + graceMs` after it was handed to a thread
 *   ends that thread; the evaluation fails `*_timeout` and a fresh thread takes its place.
 *   (jsonata's own time limit stops most runaway templates at the limit, inside the thread.)
 * - Heap cap: a thread that runs out of memory dies alone; the evaluation fails
 *   `*_memory_exceeded`.
 * - Fairness: evaluations wait in one queue per owner (a subscription, the previews) and threads
 *   serve owners in turn. One owner never holds every ready thread: with two or more threads,
 *   someone else's evaluation always finds one, however slow this owner's evaluations are.
 * - Breaker (core/evaluation-breaker.ts): an owner that hit the time or memory limit runs one
 *   evaluation at a time, and only while another thread is ready (a replacement thread takes
 *   a moment to start); a source that keeps hitting it is refused outright for a cooling-off
 *   period (`*_suspended`).
 */
import { Worker } from 'node:worker_threads';
import { TemplateError } from '../errors.ts';
import { EvaluationBreaker, type BreakerOptions } from '../core/evaluation-breaker.ts';
import { DEFAULT_EVALUATION_LIMITS, type EvaluationLimits, type ExpressionKind, type TemplateBindings } from '../core/mapping.ts';
import type { ThreadReply, ThreadRequest } from './evaluation-protocol.ts';
import type { Logger } from '../logger.ts';

export interface EvaluationPoolOptions {
  threads: number;
  limits?: Partial<EvaluationLimits>;
  /** Old-generation heap of each thread, in MB. */
  heapMb?: number;
  /** Extra time the watchdog allows over the time limit before it ends a thread (default: twice the limit, at least 1 s). */
  graceMs?: number;
  breaker?: Partial<BreakerOptions>;
  logger?: Logger;
  now?: () => number;
}

export interface EvaluationRequest {
  kind: ExpressionKind;
  source: string;
  event: unknown;
  bindings: TemplateBindings;
  /** Who the evaluation is for (a subscription id, "preview"): fairness and the breaker are per owner. */
  owner: string;
}

export interface PoolStats {
  threads: number;
  busy: number;
  queued: number;
  restarts: number;
}

interface Task {
  id: number;
  request: EvaluationRequest;
  sourceId: number;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  task?: Task;
  timer?: NodeJS.Timeout;
  /** Source ids this thread has been sent. */
  known: Set<number>;
  /** Why the thread died, when it was not the watchdog: its 'error' event comes before 'exit'. */
  error?: Error & { code?: string };
}

const THREAD_ENTRY = new URL('./evaluation-thread-entry.js', import.meta.url);
const MAX_SOURCE_IDS = 5_000;
/** A thread that dies before it is ready (a broken install) is restarted after this long, not in a loop. */
const RESPAWN_DELAY_MS = 1_000;

export class EvaluationPool {
  readonly #slots: Slot[] = [];
  /** Waiting evaluations per owner; Map order is the turn order (served owners move to the back). */
  readonly #queues = new Map<string, Task[]>();
  readonly #sourceIds = new Map<string, number>();
  /** Evaluations in threads, per owner. */
  readonly #running = new Map<string, number>();
  readonly #breaker: EvaluationBreaker;
  readonly #limits: EvaluationLimits;
  readonly #heapMb: number;
  readonly #graceMs: number;
  readonly #logger?: Logger;
  readonly #now: () => number;
  #seq = 0;
  #restarts = 0;
  #queued = 0;
  #closed = false;

  constructor(opts: EvaluationPoolOptions) {
    this.#limits = { ...DEFAULT_EVALUATION_LIMITS, ...opts.limits };
    this.#heapMb = opts.heapMb ?? 64;
    // Generous: jsonata stops ordinary runaways at the limit inside the thread; the watchdog is
    // for the rare native call that never yields, and a second try for a cold first evaluation
    // (see evaluation-thread.ts) must fit. A stuck thread delays no one else (see #nextTask).
    this.#graceMs = opts.graceMs ?? Math.max(1_000, this.#limits.timeoutMs * 2);
    this.#breaker = new EvaluationBreaker(opts.breaker);
    this.#logger = opts.logger;
    this.#now = opts.now ?? Date.now;
    for (let i = 0; i < Math.max(1, opts.threads); i++) this.#slots.push(this.#spawn());
  }

  get stats(): PoolStats {
    return { threads: this.#slots.length, busy: this.#slots.filter((s) => s.task).length, queued: this.#queued, restarts: this.#restarts };
  }

  /** Resolves when every thread has loaded (start-up, and tests that time evaluations). */
  async ready(): Promise<void> {
    while (!this.#closed && this.#slots.some((s) => !s.ready)) await new Promise((r) => setTimeout(r, 5));
  }

  /**
   * A template's output, or a filter's verdict (boolean). Rejects with a TemplateError whose
   * code says what happened (`template_timeout`, `filter_memory_exceeded`, …); with a plain
   * Error only when the pool is closing (the caller's work is unfinished, not failed).
   */
  evaluate(request: EvaluationRequest): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error('the evaluation pool is closed'));
    const openUntil = this.#breaker.openUntil(request.owner, request.source, this.#now());
    if (openUntil !== undefined) return Promise.reject(suspended(request.kind, openUntil));
    return new Promise((resolve, reject) => {
      const task: Task = { id: ++this.#seq, request, sourceId: this.#sourceId(request.source), resolve, reject };
      const queue = this.#queues.get(request.owner);
      if (queue) queue.push(task);
      else this.#queues.set(request.owner, [task]);
      this.#queued++;
      this.#pump();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const queue of this.#queues.values()) for (const task of queue) task.reject(new Error('the evaluation pool is closed'));
    this.#queues.clear();
    this.#queued = 0;
    await Promise.all(this.#slots.map(async (slot) => {
      clearTimeout(slot.timer);
      slot.task?.reject(new Error('the evaluation pool is closed'));
      slot.task = undefined;
      await slot.worker.terminate();
    }));
  }

  #sourceId(source: string): number {
    let id = this.#sourceIds.get(source);
    if (id === undefined) {
      // Ids only grow, so forgetting old ones is safe: a thread asks again for a source it lacks.
      if (this.#sourceIds.size >= MAX_SOURCE_IDS) this.#sourceIds.clear();
      id = ++this.#seq;
      this.#sourceIds.set(source, id);
    }
    return id;
  }

  /** Hands waiting evaluations to idle threads, owners in turn. */
  #pump(): void {
    if (this.#closed || this.#queued === 0) return;
    for (const slot of this.#slots) {
      if (!slot.ready || slot.task) continue;
      let task: Task | undefined;
      while ((task = this.#nextTask())) {
        // The breaker may have opened while this one waited: it fails now, without a thread.
        const openUntil = this.#breaker.openUntil(task.request.owner, task.request.source, this.#now());
        if (openUntil === undefined) break;
        task.reject(suspended(task.request.kind, openUntil));
      }
      if (!task) return;
      this.#send(slot, task, false);
    }
  }

  #nextTask(): Task | undefined {
    const now = this.#now();
    const ready = this.#slots.reduce((n, s) => n + (s.ready ? 1 : 0), 0);
    for (const [owner, queue] of this.#queues) {
      const running = this.#running.get(owner) ?? 0;
      let allowed: number;
      if (this.#slots.length === 1) allowed = 1; // nothing to keep in reserve
      else if (this.#breaker.isSuspect(owner, now)) allowed = ready >= 2 ? 1 : 0;
      else allowed = Math.max(1, ready - 1);
      if (running >= allowed) continue;
      const task = queue.shift()!;
      this.#queues.delete(owner);
      if (queue.length) this.#queues.set(owner, queue); // to the back of the turn order
      this.#queued--;
      return task;
    }
    return undefined;
  }

  #send(slot: Slot, task: Task, withSource: boolean): void {
    slot.task = task;
    const { owner } = task.request;
    this.#running.set(owner, (this.#running.get(owner) ?? 0) + 1);
    const { request } = task;
    const message: ThreadRequest = { id: task.id, kind: request.kind, sourceId: task.sourceId, event: request.event, bindings: request.bindings };
    if (withSource || !slot.known.has(task.sourceId)) {
      message.source = request.source;
      slot.known.add(task.sourceId);
    }
    clearTimeout(slot.timer);
    slot.timer = setTimeout(() => this.#watchdog(slot, task), this.#limits.timeoutMs + this.#graceMs);
    slot.worker.postMessage(message);
  }

  /** The task leaves its thread: bookkeeping shared by every way an evaluation ends. */
  #finish(slot: Slot, task: Task): void {
    clearTimeout(slot.timer);
    slot.task = undefined;
    const { owner } = task.request;
    const running = (this.#running.get(owner) ?? 1) - 1;
    if (running > 0) this.#running.set(owner, running);
    else this.#running.delete(owner);
  }

  #onReply(slot: Slot, reply: ThreadReply): void {
    if ('ready' in reply) {
      slot.ready = true;
      this.#pump();
      return;
    }
    const task = slot.task;
    if (!task || task.id !== reply.id) return;
    if ('unknownSource' in reply) {
      this.#finish(slot, task);
      this.#send(slot, task, true);
      return;
    }
    this.#finish(slot, task);
    if ('error' in reply) {
      if (reply.error.code.endsWith('_timeout')) this.#recordLimitFailure(task);
      else this.#breaker.recordSuccess(task.request.owner, task.request.source);
      task.reject(new TemplateError(reply.error.message, reply.error.details, reply.error.code));
    } else {
      this.#breaker.recordSuccess(task.request.owner, task.request.source);
      task.resolve(reply.output);
    }
    this.#pump();
  }

  #watchdog(slot: Slot, task: Task): void {
    if (slot.task !== task) return;
    this.#finish(slot, task);
    this.#recordLimitFailure(task);
    const { kind } = task.request;
    task.reject(new TemplateError(
      `${label(kind)} evaluation exceeded its time limit of ${this.#limits.timeoutMs} ms.`,
      [{ message: `evaluation still running after ${this.#limits.timeoutMs} ms; its thread was stopped (a regular expression or a single huge operation?)`, limit_ms: this.#limits.timeoutMs }],
      `${kind}_timeout`,
    ));
    this.#logger?.warn({ owner: task.request.owner, kind }, 'evaluation ran past its time limit; its thread was replaced');
    this.#replace(slot);
  }

  #onExit(slot: Slot): void {
    const task = slot.task;
    if (task) {
      this.#finish(slot, task);
      const { kind } = task.request;
      if (slot.error?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        this.#recordLimitFailure(task);
        task.reject(new TemplateError(
          `${label(kind)} evaluation ran out of memory (limit ${this.#heapMb} MB).`,
          [{ message: `evaluation needed more than the ${this.#heapMb} MB its thread may use (building a huge string or array?)`, limit_mb: this.#heapMb }],
          `${kind}_memory_exceeded`,
        ));
      } else {
        task.reject(new TemplateError(
          `${label(kind)} evaluation stopped its thread: ${slot.error?.message ?? 'the thread exited'}.`,
          [{ message: `evaluation thread stopped: ${slot.error?.message ?? 'exited'}` }],
          `${kind}_runtime_error`,
        ));
      }
      this.#logger?.warn({ owner: task.request.owner, kind, err: slot.error?.message }, 'evaluation thread died; replaced');
    }
    this.#replace(slot);
  }

  #recordLimitFailure(task: Task): void {
    const until = this.#breaker.recordFailure(task.request.owner, task.request.source, this.#now());
    if (until !== undefined) {
      this.#logger?.warn({ owner: task.request.owner, kind: task.request.kind, until: new Date(until).toISOString() }, 'evaluation suspended after repeated time or memory limit failures');
    }
  }

  /** Swaps a dead or stopped thread for a fresh one in the same place. */
  #replace(slot: Slot): void {
    const index = this.#slots.indexOf(slot);
    if (index < 0 || this.#closed) return;
    this.#slots.splice(index, 1);
    slot.worker.removeAllListeners('exit');
    void slot.worker.terminate();
    const diedBeforeReady = !slot.ready;
    this.#restarts++;
    const start = () => {
      if (this.#closed) return;
      this.#slots.splice(Math.min(index, this.#slots.length), 0, this.#spawn());
    };
    if (diedBeforeReady) setTimeout(start, RESPAWN_DELAY_MS).unref();
    else start();
    this.#pump();
  }

  #spawn(): Slot {
    const worker = new Worker(THREAD_ENTRY, {
      workerData: { limits: this.#limits },
      resourceLimits: { maxOldGenerationSizeMb: this.#heapMb, maxYoungGenerationSizeMb: 8, stackSizeMb: 4 },
    });
    worker.unref();
    const slot: Slot = { worker, ready: false, known: new Set() };
    worker.on('message', (reply: ThreadReply) => this.#onReply(slot, reply));
    worker.on('error', (err) => {
      slot.error = err;
      if (!slot.ready) this.#logger?.error({ err }, 'an evaluation thread failed to start');
    });
    worker.on('exit', () => this.#onExit(slot));
    return slot;
  }
}

function label(kind: ExpressionKind): string {
  return kind === 'template' ? 'Template' : 'Filter';
}

function suspended(kind: ExpressionKind, until: number): TemplateError {
  const at = new Date(until).toISOString();
  return new TemplateError(
    `${label(kind)} suspended until ${at}: it ran into its time or memory limit repeatedly. Fix it (a changed ${kind} starts afresh) or wait.`,
    [{ message: `suspended until ${at} after repeated time or memory limit failures`, until: at }],
    `${kind}_suspended`,
  );
}
