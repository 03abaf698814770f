import { Worker } from 'node:worker_threads';
import { TemplateError } from '../errors.ts';
import type { EvaluationLimits, TemplateBindings } from '../core/mapping.ts';
import type { RenderReply, RenderRequest } from './template-worker.ts';
import type { Logger } from '../logger.ts';

/**
 * Evaluates delivery templates on worker threads (SLUICE_TEMPLATE_THREADS), so a heavy template
 * (the Slack default takes about 0.6 ms) runs beside the event loop that does HTTP and SQLite
 * rather than on it. Requests go round-robin. A thread that dies is replaced; the evaluations
 * it had are rejected with a template error, which fails those deliveries visibly (replayable).
 */
export class TemplatePool {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void; worker: Worker }>();
  #next = 0;
  #seq = 0;
  #closed = false;

  constructor(
    private readonly threads: number,
    private readonly limits: Partial<EvaluationLimits>,
    private readonly logger?: Logger,
  ) {
    for (let i = 0; i < threads; i++) this.#workers.push(this.#spawn());
  }

  #spawn(): Worker {
    // The entry registers tsx in the thread, then loads template-worker.ts.
    // Small heaps: a thread holds compiled templates and one evaluation at a time.
    const worker = new Worker(new URL('./template-worker-entry.js', import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 4 } });
    worker.unref();
    worker.on('message', (reply: RenderReply) => {
      const waiter = this.#pending.get(reply.id);
      if (!waiter) return;
      this.#pending.delete(reply.id);
      if ('error' in reply) waiter.reject(new TemplateError(reply.error.message, reply.error.details, reply.error.code));
      else waiter.resolve(reply.output);
    });
    worker.on('error', (err) => this.logger?.error({ err }, 'template thread failed'));
    worker.on('exit', () => {
      for (const [id, waiter] of this.#pending) {
        if (waiter.worker !== worker) continue;
        this.#pending.delete(id);
        waiter.reject(new TemplateError('The template thread stopped while evaluating this template.', [{ message: 'template thread stopped' }], 'template_runtime_error'));
      }
      const index = this.#workers.indexOf(worker);
      if (index >= 0 && !this.#closed) this.#workers[index] = this.#spawn();
    });
    return worker;
  }

  render(source: string, event: unknown, bindings: TemplateBindings): Promise<unknown> {
    const worker = this.#workers[this.#next++ % this.#workers.length];
    const id = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, worker });
      const request: RenderRequest = { id, source, event, bindings, limits: this.limits };
      worker.postMessage(request);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}
