/**
 * Regular expressions for templates and filters on a linear-time engine (RE2 semantics, via
 * the pure-JS re2js port): a pattern like /^(a+)+$/ that backtracks for minutes in V8's
 * engine runs in time proportional to its input here. jsonata takes the engine as its
 * `RegexEngine` option and only ever uses `new Engine(regExp)`, `lastIndex` and `exec(str)`,
 * which is all this class provides.
 *
 * RE2 has no backreferences and no lookaround; such a pattern is refused when the template is
 * compiled (see findUnsupportedRegex), with its position, never at delivery time.
 */
import { RE2JS } from 're2js';

/** Compiled patterns by flags and source: jsonata constructs an engine on every evaluation. */
const compiledCache = new Map<string, RE2JS>();
const CACHE_LIMIT = 1_000;

function compileLinear(source: string, flags: string): RE2JS {
  const key = `${flags}/${source}`;
  let compiled = compiledCache.get(key);
  if (!compiled) {
    let re2Flags = 0;
    if (flags.includes('i')) re2Flags |= RE2JS.CASE_INSENSITIVE;
    if (flags.includes('m')) re2Flags |= RE2JS.MULTILINE;
    compiled = RE2JS.compile(RE2JS.translateRegExp(source), re2Flags);
    if (compiledCache.size >= CACHE_LIMIT) compiledCache.delete(compiledCache.keys().next().value!);
    compiledCache.set(key, compiled);
  }
  return compiled;
}

/** A RegExp stand-in with the behaviour jsonata relies on: global `exec` from `lastIndex`. */
export class LinearRegex {
  lastIndex = 0;
  readonly #compiled: RE2JS;

  constructor(pattern: RegExp | string, flags?: string) {
    const source = typeof pattern === 'string' ? pattern : pattern.source;
    this.#compiled = compileLinear(source, flags ?? (typeof pattern === 'string' ? '' : pattern.flags));
  }

  exec(input: string): RegExpExecArray | null {
    const matcher = this.#compiled.matcher(input);
    if (this.lastIndex > input.length || !matcher.find(this.lastIndex)) {
      this.lastIndex = 0;
      return null;
    }
    const match: string[] = [];
    for (let group = 0; group <= matcher.groupCount(); group++) {
      // A group that took no part in the match is undefined, as with RegExp.
      match.push(matcher.group(group) ?? (undefined as unknown as string));
    }
    const start = matcher.start();
    const end = matcher.end();
    // As a global RegExp does: the next search starts where this match ended (jsonata itself
    // refuses a pattern that keeps matching the empty string there).
    this.lastIndex = end;
    return Object.assign(match, { index: start, input }) as RegExpExecArray;
  }
}

/** A regular expression in a template that the linear engine cannot run. */
export interface UnsupportedRegex {
  /** The pattern as written between the slashes. */
  pattern: string;
  /** jsonata's position of the regex literal (1-based index of the character after it). */
  position: number;
  /** Why RE2 refuses it, e.g. "invalid escape sequence: `\1`". */
  reason: string;
}

interface AstNode {
  type?: string;
  value?: unknown;
  position?: number;
}

/**
 * Walks a jsonata AST and returns the first (leftmost) regex literal RE2 cannot compile (backreferences,
 * lookahead, lookbehind), or undefined when every one is fine.
 */
export function findUnsupportedRegex(ast: unknown): UnsupportedRegex | undefined {
  let first: UnsupportedRegex | undefined;
  const seen = new Set<object>();
  const stack: unknown[] = [ast];
  while (stack.length) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object' || seen.has(node)) continue;
    seen.add(node);
    const { type, value, position } = node as AstNode;
    if (type === 'regex' && value instanceof RegExp) {
      try {
        compileLinear(value.source, value.flags);
      } catch (err) {
        const reason = String((err as Error).message ?? err).replace(/^error parsing regexp: /, '');
        if (!first || (position ?? 0) < first.position) first = { pattern: value.source, position: position ?? 0, reason };
      }
      continue;
    }
    for (const child of Object.values(node)) if (child && typeof child === 'object') stack.push(child);
  }
  return first;
}
