/**
 * The evaluator: a child process of the gateway that compiles templates and filters by source id
 * (cached) and evaluates one request at a time with the limits the pool gave it. Whatever goes
 * wrong in here — a limit, an allocation past its heap, a native call that never returns — ends
 * at most this process: the pool's watchdog kills it and starts another. (A worker thread is not
 * enough: V8 aborts the whole process when some allocations fail at a thread's heap limit.)
 *
 * The pool runs this file bundled into one script (see evaluation-pool.ts), so it must not rely
 * on tsx or import.meta. It gets no environment: `$env` values arrive with each request.
 */
import { TemplateError } from '../errors.ts';
import { compileFilter, compileTemplate, evaluateFilter, evaluateTemplate, type EvaluationKind, type EvaluationLimits, type TemplateBindings } from '../core/mapping.ts';
import { compileRoute, evaluateRoute } from '../core/ordering.ts';
import type { EvaluatorReply, EvaluatorRequest } from './evaluation-protocol.ts';

const limits = JSON.parse(process.argv[2] ?? '{}') as Partial<EvaluationLimits>;
type Run = (event: unknown, bindings: TemplateBindings) => Promise<unknown>;
/** Each compiled source, and whether it has finished an evaluation here yet (see evaluate). */
const compiled = new Map<number, { run: Run; warm: boolean }>();

/** Compiles a source of this kind into what evaluates it. */
function compileRun(kind: EvaluationKind, source: string): Run {
  switch (kind) {
    case 'template': {
      const expression = compileTemplate(source, { limits });
      return (event, bindings) => evaluateTemplate(expression, event, bindings, limits);
    }
    case 'filter': {
      const expression = compileFilter(source, { limits });
      return (event, bindings) => evaluateFilter(expression, event, bindings, limits);
    }
    case 'route': {
      const route = compileRoute(source, { limits });
      return (event, bindings) => evaluateRoute(route, event, bindings, limits);
    }
    case 'ordering_key':
      throw new Error('ordering keys are evaluated as part of a route');
  }
}
const CACHE_LIMIT = 500;

function reply(message: EvaluatorReply): void {
  process.send!(message);
}

/**
 * A fresh process runs jsonata cold: its first evaluations are many times slower until V8 has
 * compiled the interpreter's hot paths. Exercise them once before taking work, so that a real
 * template's first evaluation here is not the one that pays for it.
 */
async function warmUp(): Promise<void> {
  const sample = compileTemplate('{"id": id, "n": $count(data.items), "names": data.items[price > 1].($uppercase(name) & "!"), "total": $sum(data.items.price), "when": $exists(data.at) ? data.at : "now"}');
  const event = { id: 'evt_warm', data: { at: '2026-01-01T00:00:00Z', items: [{ name: 'a', price: 1 }, { name: 'b', price: 2 }] } };
  for (let i = 0; i < 200; i++) await evaluateTemplate(sample, event, {}, { timeoutMs: 0 });
}

async function evaluate(req: EvaluatorRequest): Promise<EvaluatorReply> {
  let entry = compiled.get(req.sourceId);
  if (!entry) {
    if (req.source === undefined) return { id: req.id, unknownSource: true };
    entry = { run: compileRun(req.kind, req.source), warm: false };
    if (compiled.size >= CACHE_LIMIT) compiled.delete(compiled.keys().next().value!);
    compiled.set(req.sourceId, entry);
  }
  const run = () => entry.run(req.event, req.bindings);
  let output: unknown;
  try {
    output = await run();
  } catch (err) {
    // The first evaluation of a template in a process includes V8's warm-up for it; on a loaded
    // machine that alone can pass the time limit. It gets one more try, now warm; a template
    // that is really too slow fails the second time too.
    if (entry.warm || !(err instanceof TemplateError) || !err.code.endsWith('_timeout')) throw err;
    entry.warm = true;
    output = await run();
  }
  entry.warm = true;
  return { id: req.id, output };
}

process.on('message', async (req: EvaluatorRequest) => {
  let message: EvaluatorReply;
  try {
    message = await evaluate(req);
  } catch (err) {
    message = err instanceof TemplateError
      ? { id: req.id, error: { code: err.code, message: err.message, details: err.details } }
      : { id: req.id, error: { code: `${req.kind}_runtime_error`, message: String((err as Error)?.message ?? err), details: [] } };
  }
  reply(message);
});
// The gateway went away (even by kill -9): nothing is left to evaluate for.
process.on('disconnect', () => process.exit(0));
void warmUp().then(() => reply({ ready: true }));
