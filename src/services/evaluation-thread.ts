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
const compiled = new Map<number, CompiledExpression>();
const CACHE_LIMIT = 500;

async function evaluate(req: ThreadRequest): Promise<ThreadReply> {
  let expression = compiled.get(req.sourceId);
  if (!expression) {
    if (req.source === undefined) return { id: req.id, unknownSource: true };
    expression = req.kind === 'template' ? compileTemplate(req.source, { limits }) : compileFilter(req.source, { limits });
    if (compiled.size >= CACHE_LIMIT) compiled.delete(compiled.keys().next().value!);
    compiled.set(req.sourceId, expression);
  }
  const output = req.kind === 'template'
    ? await evaluateTemplate(expression as CompiledExpression<'template'>, req.event, req.bindings, limits)
    : await evaluateFilter(expression as CompiledExpression<'filter'>, req.event, req.bindings, limits);
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
parentPort!.postMessage({ ready: true } satisfies ThreadReply);
