/**
 * `sluice mappings test`: runs every template's examples and reports, for each mismatch,
 * a line diff of expected against actual output (pretty-printed JSON, keys sorted so
 * only real differences show).
 */
import fs from 'node:fs';
import { AppError } from '../errors.ts';
import { MappingRegistry, type ExampleResult } from './mapping-registry.ts';

export interface ReportOptions {
  /** Unchanged lines shown around each difference; default 3. */
  context?: number;
}

/** The report's lines: one per example, a diff under each mismatch, and a summary line. */
export function formatExampleReport(results: readonly ExampleResult[], opts: ReportOptions = {}): string[] {
  const context = opts.context ?? 3;
  const lines: string[] = [];
  for (const result of results) {
    const label = resultLabel(result);
    if (result.ok) {
      lines.push(`PASS ${label}`);
      continue;
    }
    if (result.error) {
      const where = result.error.line !== undefined ? ` (line ${result.error.line}, column ${result.error.column})` : '';
      lines.push(`FAIL ${label}: ${result.error.code}${where}`);
      lines.push(`     ${result.error.message}`);
      continue;
    }
    lines.push(`FAIL ${label}: output differs from expected`);
    lines.push('     - expected', '     + actual');
    for (const line of diffLines(prettyJson(result.expected), prettyJson(result.actual), context)) {
      lines.push(`     ${line}`);
    }
  }
  const passed = results.filter((r) => r.ok).length;
  lines.push(`${passed} passed, ${results.length - passed} failed`);
  return lines;
}

function resultLabel(result: ExampleResult): string {
  if (result.index === null) return `${result.name}`;
  const description = result.description ? ` (${result.description})` : '';
  return `${result.name} example ${result.index + 1}${description}`;
}

/** Pretty JSON with object keys sorted, split into lines; undefined prints as `undefined`. */
function prettyJson(value: unknown): string[] {
  if (value === undefined) return ['undefined'];
  return JSON.stringify(sortKeys(value), null, 2).split('\n');
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value).sort().map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
  );
}

type DiffOp = { kind: ' ' | '-' | '+'; text: string };

/** Largest diff computed line by line (expected lines × actual lines); beyond it, both are shown whole. */
const MAX_DIFF_CELLS = 4_000_000;

/**
 * A unified-style diff: `- ` lines only in expected, `+ ` lines only in actual, `  `
 * unchanged lines within `context` of a change, and `...` where unchanged lines are left out.
 */
export function diffLines(expected: readonly string[], actual: readonly string[], context = 3): string[] {
  const ops = expected.length * actual.length > MAX_DIFF_CELLS
    ? [...expected.map((text) => ({ kind: '-' as const, text })), ...actual.map((text) => ({ kind: '+' as const, text }))]
    : lcsDiff(expected, actual);
  const shown = new Array<boolean>(ops.length).fill(false);
  ops.forEach((op, i) => {
    if (op.kind === ' ') return;
    for (let j = Math.max(0, i - context); j <= Math.min(ops.length - 1, i + context); j++) shown[j] = true;
  });
  const out: string[] = [];
  let skipped = false;
  ops.forEach((op, i) => {
    if (!shown[i]) {
      skipped = true;
      return;
    }
    if (skipped) out.push('  ...');
    skipped = false;
    out.push(`${op.kind} ${op.text}`);
  });
  if (skipped) out.push('  ...');
  return out;
}

/** Line diff from a longest-common-subsequence table; removals before additions at each change. */
function lcsDiff(a: readonly string[], b: readonly string[]): DiffOp[] {
  const width = b.length + 1;
  // common[i * width + j] = length of the LCS of a[i..] and b[j..]
  const common = new Uint32Array((a.length + 1) * width);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      common[i * width + j] = a[i] === b[j]
        ? common[(i + 1) * width + j + 1] + 1
        : Math.max(common[(i + 1) * width + j], common[i * width + j + 1]);
    }
  }
  const ops: DiffOp[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      ops.push({ kind: ' ', text: a[i] });
      i++;
      j++;
    } else if (j >= b.length || (i < a.length && common[(i + 1) * width + j] >= common[i * width + j + 1])) {
      ops.push({ kind: '-', text: a[i] });
      i++;
    } else {
      ops.push({ kind: '+', text: b[j] });
      j++;
    }
  }
  return ops;
}

export interface MappingsTestOptions {
  /** The mappings directory. */
  dir: string;
  /** Only this template's examples. */
  name?: string;
  /** Variables templates may read with `$env(name)`. */
  envAllowlist: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  out: (line: string) => void;
}

const EXAMPLE_TIME_LIMIT_MS = 10_000;

/** Loads the templates, runs their examples, writes the report; resolves to the exit code (1 on any failure). */
export async function runMappingsTest(opts: MappingsTestOptions): Promise<number> {
  if (!fs.existsSync(opts.dir)) {
    opts.out(`No mappings directory at ${opts.dir}.`);
    return 1;
  }
  // Examples check what a template produces. Each runs once, cold, in this short-lived process:
  // on a busy machine that alone can pass the gateway's 100 ms limit, so here the limit only
  // catches templates that never end. (The gateway's own limits: README, Limits.)
  const registry = new MappingRegistry({ dir: opts.dir, envAllowlist: opts.envAllowlist, env: opts.env, limits: { timeoutMs: EXAMPLE_TIME_LIMIT_MS } });
  await registry.load();
  let results: ExampleResult[];
  try {
    results = await registry.runExamples(opts.name);
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    opts.out(err.message);
    return 1;
  }
  for (const template of registry.list()) {
    if (opts.name !== undefined && template.name !== opts.name) continue;
    if (template.examples.length === 0 && !template.error) opts.out(`NOTE ${template.name} has no examples (${template.name}.examples.json)`);
  }
  for (const line of formatExampleReport(results)) opts.out(line);
  return results.every((r) => r.ok) ? 0 : 1;
}
