/**
 * Which templates and filters are cheap enough, provably, to evaluate on the gateway's own
 * event loop instead of sending them to an evaluator process (a round trip that costs more than
 * a simple mapping itself).
 *
 * The bounded subset: literals, field paths made of plain names (with predicates that are
 * themselves in the subset), object and array constructors outside paths, arithmetic,
 * comparison, `&`, `and`/`or`, `in`, conditionals and blocks. No function calls, variables
 * (`$`, `$$`, `$env`…), wildcards, descendants, ranges, regexes, sorting, grouping, bindings,
 * lambdas or transforms. In that subset every path walks down the event from the root (or, in
 * a predicate, from the item it filters), so one path visits each event node at most once and
 * its result holds at most the event's nodes, by reference. A template with `references` paths
 * therefore does work, and builds output, in proportion to `references × event size`: the
 * caller checks that product against a budget before running it here.
 */

/** What the gateway needs to know about a bounded expression to budget one evaluation. */
export interface BoundedShape {
  /** How many paths it reads: its cost is at most proportional to this times the event's size. */
  references: number;
}

/** A node of jsonata's parse tree, as `expression.ast()` returns it (only what is read here). */
interface AstNode {
  type: string;
  value?: unknown;
  steps?: AstNode[];
  stages?: { type: string; expr: AstNode }[];
  lhs?: AstNode | [AstNode, AstNode][];
  rhs?: AstNode;
  expression?: AstNode;
  expressions?: AstNode[];
  condition?: AstNode;
  then?: AstNode;
  else?: AstNode;
  [key: string]: unknown;
}

const BINARY_OPERATORS = new Set(['+', '-', '*', '/', '%', '=', '!=', '<', '<=', '>', '>=', '&', 'and', 'or', 'in']);
/** Properties a path or step may carry without leaving the subset (positions, `[]` keeping arrays). */
const PLAIN_PATH_KEYS = new Set(['type', 'steps', 'keepSingletonArray', 'position']);
const PLAIN_STEP_KEYS = new Set(['type', 'value', 'position', 'stages', 'keepArray']);

/** The expression's shape if it is in the bounded subset; undefined if it is not. */
export function boundedShape(ast: unknown): BoundedShape | undefined {
  const counter = { references: 0 };
  return isBounded(ast as AstNode, counter) ? { references: counter.references } : undefined;
}

function isBounded(node: AstNode | undefined, counter: { references: number }): boolean {
  if (!node || typeof node !== 'object') return false;
  switch (node.type) {
    case 'string':
    case 'number':
    case 'value':
      return true;
    case 'path':
      counter.references++;
      return Object.keys(node).every((key) => PLAIN_PATH_KEYS.has(key))
        && Array.isArray(node.steps) && node.steps.length > 0
        && node.steps.every((step) => isPlainStep(step, counter));
    case 'binary':
      return BINARY_OPERATORS.has(node.value as string) && isBounded(node.lhs as AstNode, counter) && isBounded(node.rhs, counter);
    case 'condition':
      return isBounded(node.condition, counter) && isBounded(node.then, counter) && (node.else === undefined || isBounded(node.else, counter));
    case 'block':
      return Array.isArray(node.expressions) && node.expressions.every((e) => isBounded(e, counter));
    case 'unary':
      if (node.value === '-') return isBounded(node.expression, counter);
      if (node.value === '[') return Array.isArray(node.expressions) && node.expressions.every((e) => isBounded(e, counter));
      if (node.value === '{') return Array.isArray(node.lhs) && node.lhs.every((pair) => isBounded(pair[0], counter) && isBounded(pair[1], counter));
      return false;
    default:
      return false;
  }
}

function isPlainStep(step: AstNode, counter: { references: number }): boolean {
  return step.type === 'name'
    && Object.keys(step).every((key) => PLAIN_STEP_KEYS.has(key))
    && (step.stages ?? []).every((stage) => stage.type === 'filter' && isBounded(stage.expr, counter));
}

/**
 * The value's size as JSON, counted only up to `limit`: undefined as soon as it is known to be
 * larger, so checking a huge event against a small budget costs no more than the budget.
 */
export function jsonSizeWithin(value: unknown, limit: number): number | undefined {
  let size = 0;
  const stack: unknown[] = [value];
  while (stack.length) {
    const item = stack.pop();
    if (typeof item === 'string') size += item.length + 2;
    else if (typeof item === 'number' || typeof item === 'boolean') size += 8;
    else if (item === null || item === undefined) size += 4;
    else if (Array.isArray(item)) {
      size += 2 + item.length;
      if (size > limit) return undefined;
      for (const element of item) stack.push(element);
    } else if (typeof item === 'object') {
      for (const key in item) {
        size += key.length + 4;
        if (size > limit) return undefined;
        stack.push((item as Record<string, unknown>)[key]);
      }
      size += 2;
    } else return undefined; // functions and the like: not plain JSON, not for the fast path
    if (size > limit) return undefined;
  }
  return size;
}
