/**
 * Thread side of the evaluation pool: compiles templates and filters by source id (cached) and
 * evaluates one request at a time with the limits the pool was started with. Whatever goes
 * wrong in here (a limit, an allocation past the heap cap, a native call that never returns)
 * stays in here: the pool's watchdog ends the thread and starts another.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TemplateError } from '../errors.ts';
import { compileFilter, compileTemplate, evaluateFilter, evaluateTemplate, type CompiledExpression, type EvaluationLimits } from '../core/mapping.ts';
import type { ThreadReply, ThreadRequest } from './evaluation-protocol.ts';

const limits = (workerData as { limits: Partial<EvaluationLimits> }).limits;
/** Each compiled source, and whether it has finished an evaluation here yet (see evaluate). */
const compiled = new Map<number, { expression: CompiledExpression; warm: boolean }>();
const CACHE_LIMIT = 500;

/**
 * A fresh thread runs jsonata cold: its first evaluations are many times slower until V8 has
 * compiled the interpreter's hot paths. Exercise them once before taking work, so that a real
 * template's first evaluation here is not the one that pays for it.
 */
async function warmUp(): Promise<void> {
  const sample = compileTemplate('{"id": id, "n": $count(data.items), "names": data.items[price > 1].($uppercase(name) & "!"), "total": $sum(data.items.price), "when": $exists(data.at) ? data.at : "now"}');
  const event = { id: 'evt_warm', data: { at: '2026-01-01T00:00:00Z', items: [{ name: 'a', price: 1 }, { name: 'b', price: 2 }] } };
  for (let i = 0; i < 200; i++) await evaluateTemplate(sample, event, {}, { timeoutMs: 0 });
}

async function evaluate(req: ThreadRequest): Promise<ThreadReply> {
  let entry = compiled.get(req.sourceId);
  if (!entry) {
    if (req.source === undefined) return { id: req.id, unknownSource: true };
    entry = { expression: req.kind === 'template' ? compileTemplate(req.source, { limits }) : compileFilter(req.source, { limits }), warm: false };
    if (compiled.size >= CACHE_LIMIT) compiled.delete(compiled.keys().next().value!);
    compiled.set(req.sourceId, entry);
  }
  const run = () => req.kind === 'template'
    ? evaluateTemplate(entry.expression as CompiledExpression<'template'>, req.event, req.bindings, limits)
    : evaluateFilter(entry.expression as CompiledExpression<'filter'>, req.event, req.bindings, limits);
  let output: unknown;
  try {
    output = await run();
  } catch (err) {
    // The first evaluation of a template in a thread includes V8's warm-up for it; on a loaded
    // machine that alone can pass the time limit. It gets one more try, now warm; a template
    // that is really too slow fails the second time too.
    if (entry.warm || !(err instanceof TemplateError) || !err.code.endsWith('_timeout')) throw err;
    entry.warm = true;
    output = await run();
  }
  entry.warm = true;
  return { id: req.id, output };
}

parentPort!.on('message', async (req: ThreadRequest) => {
  let reply: ThreadReply;
  try {
    reply = await evaluate(req);
  } catch (err) {
    reply = err instanceof TemplateError
      ? { id: req.id, error: { code: err.code, message: err.message, details: err.details } }
      : { id: req.id, error: { code: `${req.kind}_runtime_error`, message: String((err as Error)?.message ?? err), details: [] } };
  }
  parentPort!.postMessage(reply);
});
await warmUp();
parentPort!.postMessage({ ready: true } satisfies ThreadReply);
