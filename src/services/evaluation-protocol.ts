/** Messages between the evaluation pool and its evaluator processes. */
import type { EvaluationKind, TemplateBindings } from '../core/mapping.ts';
import type { ErrorDetail } from '../errors.ts';

export interface EvaluatorRequest {
  id: number;
  kind: EvaluationKind;
  /** The pool's number for this source; the source itself comes along the first time an evaluator sees it. */
  sourceId: number;
  source?: string;
  event: unknown;
  bindings: TemplateBindings;
}

export type EvaluatorReply =
  | { ready: true }
  | { id: number; output: unknown }
  | { id: number; error: { code: string; message: string; details: ErrorDetail[] } }
  /** The evaluator dropped this source from its cache: send it again with the source. */
  | { id: number; unknownSource: true };
