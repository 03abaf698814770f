/**
 * Worker-thread side of the template pool: compiles templates by source (cached) and
 * evaluates them with the same limits and helpers as the main thread.
 */
import { parentPort } from 'node:worker_threads';
import { TemplateError } from '../errors.ts';
import { compileTemplate, evaluateTemplate, type CompiledTemplate, type EvaluationLimits, type TemplateBindings } from '../core/mapping.ts';

export interface RenderRequest {
  id: number;
  source: string;
  event: unknown;
  bindings: TemplateBindings;
  limits: Partial<EvaluationLimits>;
}

export type RenderReply =
  | { id: number; output: unknown }
  | { id: number; error: { code: string; message: string; details: TemplateError['details'] } };

const compiled = new Map<string, CompiledTemplate>();

parentPort!.on('message', async (req: RenderRequest) => {
  let reply: RenderReply;
  try {
    let template = compiled.get(req.source);
    if (!template) {
      template = compileTemplate(req.source, { limits: req.limits });
      if (compiled.size > 500) compiled.clear();
      compiled.set(req.source, template);
    }
    reply = { id: req.id, output: await evaluateTemplate(template, req.event, req.bindings, req.limits) };
  } catch (err) {
    reply = err instanceof TemplateError
      ? { id: req.id, error: { code: err.code, message: err.message, details: err.details } }
      : { id: req.id, error: { code: 'template_runtime_error', message: (err as Error).message ?? String(err), details: [] } };
  }
  parentPort!.postMessage(reply);
});
