/**
 * The JSONata engine behind mapping templates and subscription filters: compile once,
 * evaluate many times under limits, and turn every jsonata failure into a TemplateError
 * that says where (line, column, token) and why.
 *
 * Limits (jsonata 2.2), enforced here for one evaluation at a time:
 * - Time: jsonata's own `timeout` option, wall-clock from the start of an evaluation.
 *   Evaluations run one after another (see `serially`), so that clock is their own.
 * - Depth and sequence size: jsonata's `stack` and `sequence` options.
 * - Output size: the final JSON larger than `maxOutputBytes` fails the evaluation, and so
 *   does a `$pad` wider than that (checked before the string is built). Checking every step's
 *   result would cost a quarter of a large template's time; other ways of growing a string
 *   are bounded by the heap of the thread the evaluation runs on.
 * - Regular expressions run on a linear-time engine (linear-regex.ts); patterns it cannot
 *   run are refused at compile time.
 * What these cannot stop (one huge native allocation, a bug in jsonata) is contained by the
 * evaluation pool (services/evaluation-pool.ts): every template and filter the gateway runs is
 * evaluated on a worker thread with a capped heap and a wall-clock watchdog.
 */
import jsonata from 'jsonata';
import { TemplateError, type ErrorDetail } from '../errors.ts';
import { TEMPLATE_HELPERS } from './template-helpers.ts';
import { LinearRegex, findUnsupportedRegex } from './linear-regex.ts';

export interface EvaluationLimits {
  /** CPU time one evaluation may use, in milliseconds. */
  timeoutMs: number;
  /** Deepest nesting of evaluation steps (expressions and function calls). */
  maxDepth: number;
  /** Largest sequence (array) an evaluation may build, e.g. with the range operator `[1..n]`. */
  maxSequence: number;
  /** Longest string an evaluation may build, and largest output as JSON, in bytes (UTF-16 units for strings). */
  maxOutputBytes: number;
}

export const DEFAULT_EVALUATION_LIMITS: Readonly<EvaluationLimits> = Object.freeze({
  timeoutMs: 100,
  maxDepth: 500,
  maxSequence: 100_000,
  maxOutputBytes: 1_000_000,
});

/** What a template or filter sees besides the event: `$subscription` and `$env(name)`. */
export interface TemplateBindings {
  /** `$subscription`: its id, description and non-secret connector options. */
  subscription?: Readonly<Record<string, unknown>>;
  /** Values `$env(name)` may return: only allow-listed variables (see pickTemplateEnv). */
  env?: Readonly<Record<string, string>>;
}

export type ExpressionKind = 'template' | 'filter' | 'ordering_key';

/** What the evaluators are asked to run: one expression, or a `route` (a filter and an ordering key together). */
export type EvaluationKind = ExpressionKind | 'route';

/** How errors name an expression of this kind. */
export function expressionLabel(kind: EvaluationKind): string {
  return { template: 'Template', filter: 'Filter', ordering_key: 'Ordering key', route: 'Filter or ordering key' }[kind];
}

export interface CompileOptions {
  /** Limits the first jsonata expression is compiled for (others are compiled on demand). */
  limits?: Partial<EvaluationLimits>;
}

/** A compiled JSONata expression; share it freely, evaluations do not interfere. */
export class CompiledExpression<K extends ExpressionKind = ExpressionKind> {
  readonly #byLimits = new Map<string, jsonata.Expression>();

  /** Use compileTemplate / compileFilter: they turn syntax errors into TemplateErrors. */
  constructor(
    readonly kind: K,
    readonly source: string,
    limits: EvaluationLimits,
  ) {
    this.expressionFor(limits);
  }

  /** @internal the jsonata expression compiled with these limits (jsonata's own guardrails). */
  expressionFor(limits: EvaluationLimits): jsonata.Expression {
    const key = `${limits.timeoutMs}:${limits.maxDepth}:${limits.maxSequence}:${limits.maxOutputBytes}`;
    let expression = this.#byLimits.get(key);
    if (!expression) {
      const timeout = Number.isFinite(limits.timeoutMs) && limits.timeoutMs > 0 ? limits.timeoutMs : 0;
      expression = jsonata(this.source, { timeout, stack: limits.maxDepth, sequence: limits.maxSequence, RegexEngine: LinearRegex as unknown as RegExpConstructor } as Parameters<typeof jsonata>[1]);
      if (this.#byLimits.size === 0) assertRegexesSupported(this.source, expression);
      for (const helper of TEMPLATE_HELPERS) {
        expression.registerFunction(helper.name, helper.implementation, helper.signature);
      }
      expression.registerFunction('pad', boundedPad(limits.maxOutputBytes), '<s-ns?:s>');
      this.#byLimits.set(key, expression);
    }
    return expression;
  }
}

/** A regex RE2 cannot run is a syntax error at its literal, thrown in jsonata's failure shape. */
function assertRegexesSupported(source: string, expression: jsonata.Expression): void {
  const unsupported = findUnsupportedRegex(expression.ast());
  if (!unsupported) return;
  throw {
    code: 'S0999',
    position: unsupported.position,
    token: `/${unsupported.pattern}/`,
    message: `regular expression /${unsupported.pattern}/ is not supported: ${unsupported.reason} (regular expressions run on a linear-time engine with RE2 syntax: no backreferences, no lookahead or lookbehind)`,
  };
}

/** Thrown by a size guard; turned into `*_size_exceeded` by evaluationError. */
class StringTooLong {
  constructor(readonly length: number) {}
}

/**
 * `$pad` with a width check first: jsonata's own builds the string before anything can look at
 * it, so `$pad("", 60000000)` would allocate 60 MB in one native call. Same semantics
 * otherwise: widths and lengths in code points, negative width pads on the left.
 */
function boundedPad(maxLength: number) {
  return (str: string | undefined, width: number, char?: string): string | undefined => {
    if (str === undefined) return undefined;
    const fill = char === undefined || char.length === 0 ? ' ' : char;
    const target = Math.abs(Math.trunc(width));
    if (target > maxLength) throw new StringTooLong(target);
    const padLength = target - Array.from(str).length;
    if (padLength <= 0) return str;
    const unit = Array.from(fill);
    const padding = unit.length === 1 ? fill.repeat(padLength) : Array.from({ length: padLength }, (_, i) => unit[i % unit.length]).join('');
    return width > 0 ? str + padding : padding + str;
  };
}

export type CompiledTemplate = CompiledExpression<'template'>;
export type CompiledFilter = CompiledExpression<'filter'>;
export type CompiledOrderingKey = CompiledExpression<'ordering_key'>;

/** Compiles a mapping template; a syntax error is a TemplateError `template_syntax_error`. */
export function compileTemplate(source: string, opts: CompileOptions = {}): CompiledTemplate {
  return compile('template', source, opts);
}

/** Compiles a filter predicate; a syntax error is a TemplateError `filter_syntax_error`. */
export function compileFilter(source: string, opts: CompileOptions = {}): CompiledFilter {
  return compile('filter', source, opts);
}

/** Compiles a subscription's ordering key; a syntax error is a TemplateError `ordering_key_syntax_error`. */
export function compileOrderingKey(source: string, opts: CompileOptions = {}): CompiledOrderingKey {
  return compile('ordering_key', source, opts);
}

function compile<K extends ExpressionKind>(kind: K, source: string, opts: CompileOptions): CompiledExpression<K> {
  try {
    return new CompiledExpression(kind, source, withDefaults(opts.limits));
  } catch (err) {
    throw compileError(kind, source, err);
  }
}

/**
 * The template's output for one event, as plain JSON. Throws TemplateError:
 * `template_runtime_error`, `template_timeout`, `template_depth_exceeded`,
 * `template_size_exceeded`, or `template_undefined_result` when the template produced
 * nothing for this event.
 */
export async function evaluateTemplate(
  compiled: CompiledTemplate,
  event: unknown,
  bindings: TemplateBindings = {},
  limits: Partial<EvaluationLimits> = {},
): Promise<unknown> {
  const result = await evaluate(compiled, event, bindings, limits);
  if (result === undefined) {
    throw new TemplateError(
      'The template produced no value for this event.',
      [{ message: 'the template produced no value for this event (every path it reads may be missing)' }],
      'template_undefined_result',
    );
  }
  if (typeof result === 'function' || (typeof result === 'object' && result !== null && isJsonataFunction(result))) {
    throw new TemplateError(
      'The template produced a function, not a JSON value.',
      [{ message: 'the template produced a function, not a JSON value' }],
      'template_runtime_error',
    );
  }
  const plain = toPlainJson(result);
  const size = jsonSize(plain);
  if (size > withDefaults(limits).maxOutputBytes) {
    const max = withDefaults(limits).maxOutputBytes;
    throw new TemplateError(
      `Template output is larger than its limit of ${max} bytes.`,
      [{ message: `the output is ${size} bytes as JSON, over the limit of ${max}`, limit: max }],
      'template_size_exceeded',
    );
  }
  return plain;
}

/** Length of the value as JSON (UTF-16 units; close enough to bytes for a limit). */
function jsonSize(value: unknown): number {
  return JSON.stringify(value)?.length ?? 0;
}

/**
 * Whether the event passes the filter, by JSONata's boolean rules (`$boolean`): a missing
 * field gives undefined, which does not match (`data.score < 60` is false for an event
 * without a score). Throws TemplateError `filter_runtime_error` (or `filter_timeout`,
 * `filter_depth_exceeded`, `filter_size_exceeded`); the caller decides what a failing
 * filter means.
 */
export async function evaluateFilter(
  compiled: CompiledFilter,
  event: unknown,
  bindings: TemplateBindings = {},
  limits: Partial<EvaluationLimits> = {},
): Promise<boolean> {
  return jsonataBoolean(await evaluate(compiled, event, bindings, limits)) === true;
}

/**
 * An ordering key's value for one event, as plain JSON; undefined when the expression gives
 * nothing (the event is then unordered). Throws TemplateError `ordering_key_*`.
 */
export async function evaluateOrderingKey(
  compiled: CompiledOrderingKey,
  event: unknown,
  bindings: TemplateBindings = {},
  limits: Partial<EvaluationLimits> = {},
): Promise<unknown> {
  const result = await evaluate(compiled, event, bindings, limits);
  return result === undefined || typeof result === 'function' ? undefined : toPlainJson(result);
}

/** JSONata's effective boolean value, as `$boolean` computes it (undefined stays undefined). */
export function jsonataBoolean(value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    if (value.length === 1) return jsonataBoolean(value[0]);
    return value.some((item) => jsonataBoolean(item) === true);
  }
  if (typeof value === 'string') return value.length > 0;
  if (typeof value === 'number') return value !== 0 && !Number.isNaN(value);
  if (typeof value === 'boolean') return value;
  if (typeof value === 'function' || value === null) return false;
  if (typeof value === 'object') return Object.keys(value).length > 0 && !isJsonataFunction(value);
  return false;
}

// --- evaluation -------------------------------------------------------------------------

/**
 * Evaluations run one after another. A jsonata evaluation never waits for I/O (every await in
 * it is on a value already there), so run alone it finishes within one turn of the event loop
 * and its wall-clock time is its own CPU time: jsonata's built-in timeout is then exact and
 * cheap. Interleaved, concurrent evaluations would share the clock and time each other out,
 * and a per-step accounting hook cost a quarter of a large template's evaluation time.
 */
let evaluationQueue: Promise<unknown> = Promise.resolve();
function serially<T>(run: () => Promise<T>): Promise<T> {
  const result = evaluationQueue.then(run, run);
  evaluationQueue = result.catch(() => undefined);
  return result;
}

async function evaluate(
  compiled: CompiledExpression,
  event: unknown,
  bindings: TemplateBindings,
  partialLimits: Partial<EvaluationLimits>,
): Promise<unknown> {
  const limits = withDefaults(partialLimits);
  const env = bindings.env ?? {};
  const jsonataBindings: Record<string, unknown> = {
    subscription: bindings.subscription,
    env: (name: unknown) => (typeof name === 'string' && Object.hasOwn(env, name) ? env[name] : undefined),
  };
  const expression = compiled.expressionFor(limits);
  try {
    return await serially(() => expression.evaluate(event, jsonataBindings));
  } catch (err) {
    throw evaluationError(compiled, err, limits);
  }
}

function withDefaults(limits: Partial<EvaluationLimits> = {}): EvaluationLimits {
  return {
    timeoutMs: limits.timeoutMs ?? DEFAULT_EVALUATION_LIMITS.timeoutMs,
    maxDepth: limits.maxDepth ?? DEFAULT_EVALUATION_LIMITS.maxDepth,
    maxSequence: limits.maxSequence ?? DEFAULT_EVALUATION_LIMITS.maxSequence,
    maxOutputBytes: limits.maxOutputBytes ?? DEFAULT_EVALUATION_LIMITS.maxOutputBytes,
  };
}

function isJsonataFunction(value: object): boolean {
  return (value as { _jsonata_lambda?: unknown })._jsonata_lambda === true
    || (value as { _jsonata_function?: unknown })._jsonata_function === true;
}

/**
 * A copy that is plain JSON: jsonata's sequences become arrays (dropping their marker
 * properties), functions inside objects are left out as JSON.stringify would, and the
 * caller can change the result without touching the event.
 */
function toPlainJson(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const item of value) {
      if (typeof item === 'function' || (item && typeof item === 'object' && isJsonataFunction(item))) continue;
      out.push(item === undefined ? null : toPlainJson(item));
    }
    return out;
  }
  if (isJsonataFunction(value)) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (item === undefined || typeof item === 'function') continue;
    const plain = toPlainJson(item);
    if (plain !== undefined) out[key] = plain;
  }
  return out;
}

// --- errors -----------------------------------------------------------------------------

interface JsonataFailure {
  code?: string;
  message?: string;
  position?: number;
  token?: string;
  value?: unknown;
  /** Set by $eval: the failure inside the evaluated expression. */
  error?: JsonataFailure;
}

/** Line and column (1-based) where jsonata's failure points, at the start of its token. */
export interface SourceLocation {
  line: number;
  column: number;
}

/**
 * jsonata's `position` is the 1-based index of the last character it read: the end of
 * the offending token (or, for a function call, the opening parenthesis after the name).
 * Point at the token's first character instead, which is what an editor should highlight.
 */
export function locateInSource(source: string, position: number, token?: string): SourceLocation {
  let index: number;
  if (token === '(end)' || position >= source.length + 1) {
    index = Math.min(Math.max(position, 0), source.length);
  } else if (token && source.slice(position - token.length, position) === token) {
    index = position - token.length;
  } else {
    const found = token ? source.lastIndexOf(token, position - 1) : -1;
    // A name followed by "(" (function calls): the token ends a character or two earlier.
    index = found >= 0 && position - (found + token!.length) <= 2 ? found : Math.max(position - 1, 0);
  }
  const before = source.slice(0, index);
  const line = before.split('\n').length;
  const column = index - (before.lastIndexOf('\n') + 1) + 1;
  return { line, column };
}

function failureDetail(source: string, failure: JsonataFailure): ErrorDetail {
  const message = failure.message ?? String(failure);
  const detail: ErrorDetail = { message };
  if (typeof failure.position === 'number') {
    const { line, column } = locateInSource(source, failure.position, failure.token);
    detail.line = line;
    detail.column = column;
    if (failure.token !== undefined) detail.token = failure.token;
    detail.position = failure.position;
  }
  if (failure.code) detail.jsonata_code = failure.code;
  return detail;
}

function at(detail: ErrorDetail): string {
  return detail.line === undefined ? '' : ` at line ${detail.line}, column ${detail.column}`;
}

function compileError(kind: ExpressionKind, source: string, err: unknown): TemplateError {
  const failure = (err ?? {}) as JsonataFailure;
  const detail = failureDetail(source, failure);
  return new TemplateError(`Syntax error${at(detail)}: ${detail.message}`, [detail], `${kind}_syntax_error`);
}

function evaluationError(compiled: CompiledExpression, err: unknown, limits: EvaluationLimits): TemplateError {
  if (err instanceof TemplateError) return err;
  const kind = compiled.kind;
  const Kind = expressionLabel(kind);
  // $eval wraps the failure of the expression it ran; a limit hit in there is still a limit.
  let innermost = (err ?? {}) as JsonataFailure;
  while (innermost.error && typeof innermost.error === 'object') innermost = innermost.error;

  if (innermost.code === 'D1012') {
    return new TemplateError(
      `${Kind} evaluation exceeded its time limit of ${limits.timeoutMs} ms.`,
      [{ message: `evaluation stopped after ${limits.timeoutMs} ms (an unbounded loop or recursion?)`, limit_ms: limits.timeoutMs }],
      `${kind}_timeout`,
    );
  }
  if (innermost.code === 'D1011' || err instanceof RangeError) {
    return new TemplateError(
      `${Kind} evaluation exceeded its depth limit of ${limits.maxDepth}.`,
      [{ message: `evaluation nested deeper than ${limits.maxDepth} steps (a recursion that does not end?)`, limit: limits.maxDepth }],
      `${kind}_depth_exceeded`,
    );
  }
  if (err instanceof StringTooLong || innermost instanceof StringTooLong) {
    const length = (err instanceof StringTooLong ? err : (innermost as unknown as StringTooLong)).length;
    return new TemplateError(
      `${Kind} evaluation built a string longer than its limit of ${limits.maxOutputBytes} characters.`,
      [{ message: `a string of ${length} characters exceeds the limit of ${limits.maxOutputBytes}`, limit: limits.maxOutputBytes }],
      `${kind}_size_exceeded`,
    );
  }
  if (innermost.code === 'D2014' || innermost.code === 'D2015') {
    return new TemplateError(
      `${Kind} evaluation built a sequence larger than ${limits.maxSequence} items.`,
      [{ message: `a sequence of ${String(innermost.value)} items exceeds the limit of ${limits.maxSequence}`, limit: limits.maxSequence }],
      `${kind}_size_exceeded`,
    );
  }
  const detail = failureDetail(compiled.source, (err ?? {}) as JsonataFailure);
  return new TemplateError(`${Kind} runtime error${at(detail)}: ${detail.message}`, [detail], `${kind}_runtime_error`);
}
