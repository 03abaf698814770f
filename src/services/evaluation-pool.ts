/**
 * Where every template and filter the gateway runs is evaluated: a small pool of evaluator
 * processes (evaluator-process.ts), each with a capped heap, watched from here. Whatever a
 * template does — loop, allocate, meet a pathological input — it cannot crash the gateway, grow
 * its memory past `processes × heapMb`, or hold the event loop that serves HTTP and storage.
 *
 * Processes, not worker threads: measured here, a worker thread that runs out of heap while
 * growing one array aborts the whole process (V8's fatal OOM path; Node documents
 * `resourceLimits` as best effort), and `--max-old-space-size` on the gateway overrides a
 * thread's own limit. A process pays about 20 MB more RSS and a few tens of microseconds
 * more per evaluation (see the README's Limits section), and holds.
 *
 * - Inline fast path: an expression of the bounded subset (core/bounded-expression.ts: paths,
 *   literals, constructors, operators; no functions, variables or regexes) whose work budget,
 *   paths × event size, is under `inlineBudgetBytes` runs right here. It cannot loop, allocate
 *   past a few times the budget, or take more than a few milliseconds, and the round trip to an
 *   evaluator would cost more than it does (measured: about 40% less CPU per delivered event
 *   for the simple mapping of `npm run bench`; see the README's Limits).
 * - Watchdog: an evaluation still running `timeoutMs + graceMs` after it was handed to an
 *   evaluator kills that process; the evaluation fails `*_timeout` and a fresh one takes its
 *   place. (jsonata's own time limit stops most runaway templates at the limit, inside it.)
 * - Heap cap: an evaluator that runs out of memory dies alone; the evaluation fails
 *   `*_memory_exceeded`.
 * - Fairness: evaluations wait in one queue per owner (a subscription, the previews) and evaluators
 *   serve owners in turn. One owner never holds every ready evaluator: with two or more,
 *   someone else's evaluation always finds one, however slow this owner's evaluations are.
 * - Breaker (core/evaluation-breaker.ts): an owner that hit the time or memory limit runs one
 *   evaluation at a time, and only while another evaluator is ready (a replacement takes a
 *   moment to start); a source that keeps hitting it is refused outright for a cooling-off
 *   period (`*_suspended`).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleScript } from '../bundle-script.ts';
import { TemplateError } from '../errors.ts';
import { EvaluationBreaker, type BreakerOptions } from '../core/evaluation-breaker.ts';
import { DEFAULT_EVALUATION_LIMITS, compileFilter, compileTemplate, evaluateFilter, evaluateTemplate, expressionLabel, type CompiledExpression, type EvaluationKind, type EvaluationLimits, type TemplateBindings } from '../core/mapping.ts';
import { boundedShape, jsonSizeWithin } from '../core/bounded-expression.ts';
import type { EvaluatorReply, EvaluatorRequest } from './evaluation-protocol.ts';
import type { Logger } from '../logger.ts';

export interface EvaluationPoolOptions {
  threads: number;
  limits?: Partial<EvaluationLimits>;
  /** Old-generation heap of each evaluator process, in MB. */
  heapMb?: number;
  /** Extra time the watchdog allows over the time limit before it kills an evaluator (default: twice the limit, at least 1 s). */
  graceMs?: number;
  breaker?: Partial<BreakerOptions>;
  /**
   * Work budget, in bytes of `paths read × event size as JSON`, under which an expression of the
   * bounded subset (core/bounded-expression.ts) is evaluated right here instead of in an
   * evaluator: its cost is then a few milliseconds at most, less than a round trip. 0: never.
   */
  inlineBudgetBytes?: number;
  logger?: Logger;
  now?: () => number;
  /** The bundled evaluator script (built here by default; a delivery thread is given the HTTP thread's). */
  scriptPath?: string;
  /**
   * Start the evaluator processes at the first evaluation that needs one, not at once: for a pool
   * that mostly runs inline (the HTTP thread's, when templates run in the delivery thread).
   */
  lazy?: boolean;
}

export interface EvaluationRequest {
  /** `route`: `source` is routeSource(filter, key) (core/ordering.ts); the answer is a RouteResult. */
  kind: EvaluationKind;
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
  /** Evaluations of bounded expressions run in the gateway itself (see inlineBudgetBytes). */
  inlined: number;
}

/** A source's verdict for the inline path: compiled here if it is in the bounded subset. */
type InlineEntry = { compiled: CompiledExpression; references: number } | null;

export const DEFAULT_INLINE_BUDGET_BYTES = 64 * 1024;

interface Task {
  id: number;
  request: EvaluationRequest;
  sourceId: number;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  child: ChildProcess;
  ready: boolean;
  task?: Task;
  timer?: NodeJS.Timeout;
  /** Source ids this evaluator has been sent. */
  known: Set<number>;
  /** The end of what it wrote to stderr: V8 says there when it ran out of heap. */
  stderr: string;
}

/** The evaluator's code as one script fork() can run (see bundle-script.ts). */
export const evaluatorScriptPath = (): string => bundleScript('sluice-evaluator', { entryPoints: [fileURLToPath(new URL('./evaluator-process.ts', import.meta.url))] });

const MAX_SOURCE_IDS = 5_000;
/** util-linux's setpriv, to give evaluators a parent-death signal (Linux). */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((file) => fs.existsSync(file));
/** An evaluator that dies before it is ready (a broken install) is restarted after this long, not in a loop. */
const RESPAWN_DELAY_MS = 1_000;

export class EvaluationPool {
  readonly #slots: Slot[] = [];
  /** Waiting evaluations per owner; Map order is the turn order (served owners move to the back). */
  readonly #queues = new Map<string, Task[]>();
  readonly #sourceIds = new Map<string, number>();
  readonly #inline = new Map<string, InlineEntry>();
  readonly #inlineBudget: number;
  #inlined = 0;
  /** Evaluations in evaluators, per owner. */
  readonly #running = new Map<string, number>();
  readonly #breaker: EvaluationBreaker;
  readonly #limits: EvaluationLimits;
  readonly #heapMb: number;
  readonly #graceMs: number;
  readonly #logger?: Logger;
  readonly #now: () => number;
  #seq = 0;
  #restarts = 0;
  readonly #scriptPath?: string;
  readonly #threads: number;
  #queued = 0;
  #closed = false;

  constructor(opts: EvaluationPoolOptions) {
    this.#limits = { ...DEFAULT_EVALUATION_LIMITS, ...opts.limits };
    this.#heapMb = opts.heapMb ?? 64;
    // Generous: jsonata stops ordinary runaways at the limit inside the evaluator; the watchdog is
    // for the rare native call that never yields, and a second try for a cold first evaluation
    // (see evaluator-process.ts) must fit. A stuck evaluator delays no one else (see #nextTask).
    this.#graceMs = opts.graceMs ?? Math.max(1_000, this.#limits.timeoutMs * 2);
    this.#breaker = new EvaluationBreaker(opts.breaker);
    this.#inlineBudget = opts.inlineBudgetBytes ?? DEFAULT_INLINE_BUDGET_BYTES;
    this.#logger = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.#scriptPath = opts.scriptPath;
    this.#threads = Math.max(1, opts.threads);
    if (!opts.lazy) this.#spawnAll();
  }

  get stats(): PoolStats {
    return { threads: this.#slots.length, busy: this.#slots.filter((s) => s.task).length, queued: this.#queued, restarts: this.#restarts, inlined: this.#inlined };
  }

  /** Resolves when every evaluator has started (start-up, and tests that time evaluations). */
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
    const inline = this.#inlineEntry(request);
    if (inline && jsonSizeWithin(request.event, this.#inlineBudget / inline.references) !== undefined) {
      return this.#evaluateInline(inline.compiled, request);
    }
    return this.#enqueue(request);
  }

  #spawnAll(): void {
    while (this.#slots.length < this.#threads) this.#slots.push(this.#spawn());
  }

  #enqueue(request: EvaluationRequest): Promise<unknown> {
    if (this.#slots.length === 0) this.#spawnAll(); // a lazy pool's first evaluation out of line
    return new Promise((resolve, reject) => {
      const task: Task = { id: ++this.#seq, request, sourceId: this.#sourceId(request.kind, request.source), resolve, reject };
      const queue = this.#queues.get(request.owner);
      if (queue) queue.push(task);
      else this.#queues.set(request.owner, [task]);
      this.#queued++;
      this.#pump();
    });
  }

  /** The compiled expression if this template or filter may run inline (bounded, and inlining is on). */
  #inlineEntry(request: EvaluationRequest): InlineEntry {
    if (this.#inlineBudget <= 0 || (request.kind !== 'template' && request.kind !== 'filter')) return null;
    const key = `${request.kind}\u0000${request.source}`;
    let entry = this.#inline.get(key);
    if (entry === undefined) {
      entry = null;
      try {
        const options = { limits: this.#limits };
        const compiled = request.kind === 'template' ? compileTemplate(request.source, options) : compileFilter(request.source, options);
        const shape = boundedShape(compiled.expressionFor(this.#limits).ast());
        if (shape) entry = { compiled, references: Math.max(1, shape.references) };
      } catch {
        // Not compilable here: the evaluator reports the error as it always has.
      }
      if (this.#inline.size >= MAX_SOURCE_IDS) this.#inline.clear();
      this.#inline.set(key, entry);
    }
    return entry;
  }

  async #evaluateInline(compiled: CompiledExpression, request: EvaluationRequest): Promise<unknown> {
    this.#inlined++;
    try {
      const { event, bindings } = request;
      const output = compiled.kind === 'template'
        ? await evaluateTemplate(compiled as CompiledExpression<'template'>, event, bindings, this.#limits)
        : await evaluateFilter(compiled as CompiledExpression<'filter'>, event, bindings, this.#limits);
      this.#breaker.recordSuccess(request.owner, request.source);
      return output;
    } catch (err) {
      // A bounded expression cannot really run out of time; a cold first run on a loaded machine
      // can. The evaluator, with its warm-up and second try, decides.
      if (err instanceof TemplateError && err.code.endsWith('_timeout')) return this.#enqueue(request);
      this.#breaker.recordSuccess(request.owner, request.source);
      throw err;
    }
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
      await stopProcess(slot.child);
    }));
  }

  /** Per kind and source: the same text is another expression as a template, a filter or a route. */
  #sourceId(kind: EvaluationKind, text: string): number {
    const source = `${kind}\u0000${text}`;
    let id = this.#sourceIds.get(source);
    if (id === undefined) {
      // Ids only grow, so forgetting old ones is safe: an evaluator asks again for a source it lacks.
      if (this.#sourceIds.size >= MAX_SOURCE_IDS) this.#sourceIds.clear();
      id = ++this.#seq;
      this.#sourceIds.set(source, id);
    }
    return id;
  }

  /** Hands waiting evaluations to idle evaluators, owners in turn. */
  #pump(): void {
    if (this.#closed || this.#queued === 0) return;
    for (const slot of this.#slots) {
      if (!slot.ready || slot.task) continue;
      let task: Task | undefined;
      while ((task = this.#nextTask())) {
        // The breaker may have opened while this one waited: it fails now, without an evaluator.
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
    const message: EvaluatorRequest = { id: task.id, kind: request.kind, sourceId: task.sourceId, event: request.event, bindings: request.bindings };
    if (withSource || !slot.known.has(task.sourceId)) {
      message.source = request.source;
      slot.known.add(task.sourceId);
    }
    clearTimeout(slot.timer);
    slot.timer = setTimeout(() => this.#watchdog(slot, task), this.#limits.timeoutMs + this.#graceMs);
    slot.child.send(message);
  }

  /** The task leaves its evaluator: bookkeeping shared by every way an evaluation ends. */
  #finish(slot: Slot, task: Task): void {
    clearTimeout(slot.timer);
    slot.task = undefined;
    const { owner } = task.request;
    const running = (this.#running.get(owner) ?? 1) - 1;
    if (running > 0) this.#running.set(owner, running);
    else this.#running.delete(owner);
  }

  #onReply(slot: Slot, reply: EvaluatorReply): void {
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
      [{ message: `evaluation still running after ${this.#limits.timeoutMs} ms; its evaluator was stopped (a single huge operation?)`, limit_ms: this.#limits.timeoutMs }],
      `${kind}_timeout`,
    ));
    this.#logger?.warn({ owner: task.request.owner, kind }, 'evaluation ran past its time limit; its evaluator was replaced');
    this.#replace(slot);
  }

  #onExit(slot: Slot, code: number | null, signal: NodeJS.Signals | null): void {
    const task = slot.task;
    if (task) {
      this.#finish(slot, task);
      const { kind } = task.request;
      const how = signal ? `killed by ${signal}` : `exit code ${code}`;
      if (/heap out of memory|Reached heap limit|Allocation failed/i.test(slot.stderr)) {
        this.#recordLimitFailure(task);
        task.reject(new TemplateError(
          `${label(kind)} evaluation ran out of memory (limit ${this.#heapMb} MB).`,
          [{ message: `evaluation needed more than the ${this.#heapMb} MB its evaluator may use (building a huge string or array?)`, limit_mb: this.#heapMb }],
          `${kind}_memory_exceeded`,
        ));
      } else {
        task.reject(new TemplateError(
          `${label(kind)} evaluation stopped its evaluator (${how}).`,
          [{ message: `evaluator process stopped: ${how}` }],
          `${kind}_runtime_error`,
        ));
      }
      this.#logger?.warn({ owner: task.request.owner, kind, how }, 'evaluator process died; replaced');
    } else if (!this.#closed) {
      this.#logger?.warn({ code, signal }, 'an idle evaluator process exited; replaced');
    }
    this.#replace(slot);
  }

  #recordLimitFailure(task: Task): void {
    const until = this.#breaker.recordFailure(task.request.owner, task.request.source, this.#now());
    if (until !== undefined) {
      this.#logger?.warn({ owner: task.request.owner, kind: task.request.kind, until: new Date(until).toISOString() }, 'evaluation suspended after repeated time or memory limit failures');
    }
  }

  /** Swaps a dead or stopped evaluator for a fresh one in the same place. */
  #replace(slot: Slot): void {
    const index = this.#slots.indexOf(slot);
    if (index < 0 || this.#closed) return;
    this.#slots.splice(index, 1);
    slot.child.removeAllListeners('close');
    void stopProcess(slot.child);
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
    // Its own heap cap (not the gateway's flags), no tsx, and no environment: nothing secret of
    // the gateway's is in reach of a template.
    const execArgv = [`--max-old-space-size=${this.#heapMb}`, '--max-semi-space-size=4', '--v8-pool-size=1', '--stack-size=4000'];
    const args = [this.#scriptPath ?? evaluatorScriptPath(), JSON.stringify(this.#limits)];
    const options = { env: {}, serialization: 'advanced' as const, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] as ('ignore' | 'pipe' | 'ipc')[] };
    // An evaluator stuck in a native call cannot hear its channel close: if the gateway is
    // killed (-9), the kernel kills the evaluator too (parent-death signal), where setpriv exists.
    const child = SETPRIV
      ? spawn(SETPRIV, ['--pdeathsig', 'KILL', process.execPath, ...execArgv, ...args], options)
      : fork(args[0], args.slice(1), { ...options, execArgv });
    const slot: Slot = { child, ready: false, known: new Set(), stderr: '' };
    // Neither the process nor its channel keeps the gateway alive.
    child.unref();
    child.channel?.unref();
    (child.stderr as (NodeJS.ReadableStream & { unref?: () => void }) | null)?.unref?.();
    child.stderr?.on('data', (chunk: Buffer) => {
      slot.stderr = (slot.stderr + chunk.toString('utf8')).slice(-4096);
    });
    child.on('message', (reply: EvaluatorReply) => this.#onReply(slot, reply));
    child.on('error', (err) => this.#logger?.error({ err }, 'an evaluator process failed'));
    // 'close', not 'exit': stderr is read to its end first (V8's out-of-memory report is there).
    child.on('close', (code, signal) => this.#onExit(slot, code, signal));
    return slot;
  }
}

/** SIGKILL and wait for the exit: an evaluator holds nothing that needs a clean shutdown. */
function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function label(kind: EvaluationKind): string {
  return expressionLabel(kind);
}

function suspended(kind: EvaluationKind, until: number): TemplateError {
  const at = new Date(until).toISOString();
  return new TemplateError(
    `${label(kind)} suspended until ${at}: it ran into its time or memory limit repeatedly. Fix it (a changed ${kind} starts afresh) or wait.`,
    [{ message: `suspended until ${at} after repeated time or memory limit failures`, until: at }],
    `${kind}_suspended`,
  );
}
