/**
 * The mapping templates under `mappings/`: `<name>.jsonata` (nested folders give names
 * like `slack/alert`) with optional `<name>.examples.json` beside it. Loads and compiles
 * them, reloads them when files change, and resolves a subscription's `mapping` field to
 * a compiled template: a known name, or else an inline JSONata template.
 *
 * A template that fails to compile is never half-applied: the previous good version stays
 * in service and the error, with its line and column, shows in `list()` and the log.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { AppError, TemplateError, type ErrorDetail } from '../errors.ts';
import {
  compileFilter,
  compileOrderingKey,
  compileTemplate,
  evaluateFilter,
  evaluateTemplate,
  type CompiledFilter,
  type CompiledTemplate,
  type EvaluationLimits,
  type TemplateBindings,
} from '../core/mapping.ts';
import { pickTemplateEnv } from '../core/template-helpers.ts';

/** What the registry needs of a logger; a pino logger fits. */
export interface RegistryLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface MappingRegistryOptions {
  /** The mappings directory. */
  dir: string;
  logger?: RegistryLogger;
  /** Variables templates may read with `$env(name)` (config SLUICE_TEMPLATE_ENV). */
  envAllowlist?: readonly string[];
  /** Where allow-listed variables are read from, once, at construction; default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Evaluation limits for every template and filter; DEFAULT_EVALUATION_LIMITS fill the rest. */
  limits?: Partial<EvaluationLimits>;
  /** How many compiled inline templates (and, separately, filters) to keep; default 500. */
  inlineCacheSize?: number;
  /** Quiet time after a file change before reloading, in ms; default 50. */
  debounceMs?: number;
  /** Called after every load or reload that changed something. */
  onReload?: (event: ReloadEvent) => void;
  now?: () => Date;
}

export interface TemplateExample {
  /** Shown in test reports; defaults to the input's event name. */
  description?: string;
  input: unknown;
  expected: unknown;
  /** `$subscription` while running this example. */
  subscription?: Record<string, unknown>;
}

/** Why a template (or its examples file) is not in service as written on disk. */
export interface TemplateProblem {
  message: string;
  /** The file at fault, relative to the mappings directory. */
  file: string;
  code: string;
  line?: number;
  column?: number;
  token?: string;
  position?: number;
}

export interface MappingInfo {
  name: string;
  /** The source in service (the last version that compiled), else the file as it is. */
  source: string;
  examples: TemplateExample[];
  /** Set while the file on disk (or its examples) fails to load. */
  error?: TemplateProblem;
  /** Whether a compiled version is in service. */
  active: boolean;
  /** When the version in service was loaded (ISO 8601); null when none is. */
  loaded_at: string | null;
}

export interface ReloadEvent {
  /** Templates whose new version is now in service (or whose examples changed). */
  changed: string[];
  /** Templates whose files were deleted. */
  removed: string[];
  /** Templates whose new version failed to load (the previous one, if any, stays). */
  failed: string[];
}

export interface ExampleResult {
  name: string;
  /** 0-based index in the examples file; null for a template or examples file that failed to load. */
  index: number | null;
  description?: string;
  ok: boolean;
  expected?: unknown;
  actual?: unknown;
  error?: { code: string; message: string; line?: number; column?: number; token?: string };
}

interface TemplateEntry {
  name: string;
  file: string;
  compiled?: CompiledTemplate;
  /** The files' text when last read, to tell real changes from touched files. */
  fileText: string;
  examplesText: string | null;
  examples: TemplateExample[];
  /** Why the template file as written is not in service. */
  templateError?: TemplateProblem;
  /** Why the examples file as written is not in use. */
  examplesError?: TemplateProblem;
  loadedAt: Date | null;
}

const TEMPLATE_EXT = '.jsonata';
const EXAMPLES_EXT = '.examples.json';
const TEMPLATE_NAME = /^[a-z0-9][a-z0-9_\-/]*$/;

/**
 * Whether a subscription's `mapping` reads as a template name rather than inline JSONata.
 * A bare lowercase word (`data`, `event`) is a valid JSONata path too; it counts as a
 * name, so an inline template that is just a path must be written `$.data`.
 */
export function isTemplateName(mapping: string): boolean {
  return TEMPLATE_NAME.test(mapping);
}

export class MappingRegistry extends EventEmitter {
  readonly dir: string;
  readonly #logger?: RegistryLogger;
  readonly #env: Readonly<Record<string, string>>;
  readonly #limits: Partial<EvaluationLimits>;
  readonly #debounceMs: number;
  readonly #now: () => Date;
  readonly #entries = new Map<string, TemplateEntry>();
  readonly #inlineTemplates: LruCache<CompiledTemplate>;
  readonly #filters: LruCache<CompiledFilter>;
  /** One watcher per directory (relative path, '' for the root) while watching. */
  readonly #watchers = new Map<string, fs.FSWatcher>();
  #watching = false;
  /** Directories found by the last scan, relative, '' for the root. */
  #dirs: string[] = [];
  #debounceTimer?: NodeJS.Timeout;
  #scanning?: Promise<void>;
  #scanAgain = false;

  constructor(opts: MappingRegistryOptions) {
    super();
    this.dir = path.resolve(opts.dir);
    this.#logger = opts.logger;
    this.#env = pickTemplateEnv(opts.envAllowlist ?? [], opts.env ?? process.env);
    this.#limits = opts.limits ?? {};
    this.#debounceMs = opts.debounceMs ?? 50;
    this.#now = opts.now ?? (() => new Date());
    this.#inlineTemplates = new LruCache(opts.inlineCacheSize ?? 500);
    this.#filters = new LruCache(opts.inlineCacheSize ?? 500);
    if (opts.onReload) this.on('reload', opts.onReload);
  }

  /** Reads and compiles every template; failures are recorded per template, never thrown. */
  async load(): Promise<ReloadEvent> {
    await this.#scanning;
    return this.#scan();
  }

  /**
   * Reloads on file changes until close(). Each directory gets its own watcher: Node 20's
   * `recursive` mode on Linux watches each file's inode, so it goes deaf to a file that an
   * editor saves by writing a copy and renaming it over the original.
   */
  watch(): void {
    if (this.#watching) return;
    this.#watching = true;
    this.#syncWatchers();
    // Catches changes made between load() and now.
    this.#scheduleRescan();
  }

  /** Stops watching; waits for a reload under way. */
  async close(): Promise<void> {
    this.#watching = false;
    clearTimeout(this.#debounceTimer);
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
    await this.#scanning;
  }

  /** Watches every directory the last scan found, and stops watching those that are gone. */
  #syncWatchers(): void {
    if (!this.#watching) return;
    const wanted = new Set(['', ...this.#dirs]);
    for (const [relative, watcher] of this.#watchers) {
      if (wanted.has(relative)) continue;
      watcher.close();
      this.#watchers.delete(relative);
    }
    let added = false;
    for (const relative of wanted) {
      if (this.#watchers.has(relative)) continue;
      const absolute = path.join(this.dir, relative);
      let watcher: fs.FSWatcher;
      try {
        watcher = fs.watch(absolute, () => this.#scheduleRescan());
      } catch (err) {
        this.#logger?.warn({ dir: absolute, err: (err as Error).message }, 'cannot watch a mappings directory; its templates will not reload');
        continue;
      }
      watcher.on('error', (err) => {
        // Typically the directory was removed; the rescan drops its templates.
        watcher.close();
        this.#watchers.delete(relative);
        this.#logger?.warn({ dir: absolute, err: err.message }, 'stopped watching a mappings directory');
        this.#scheduleRescan();
      });
      this.#watchers.set(relative, watcher);
      added = relative !== '' || added;
    }
    // Files written into a new directory before its watcher existed are picked up by one more scan.
    if (added && this.#scanning) this.#scanAgain = true;
  }

  /** The compiled template in service under this name. */
  get(name: string): CompiledTemplate | undefined {
    return this.#entries.get(name)?.compiled;
  }

  list(): MappingInfo[] {
    return [...this.#entries.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((entry) => ({
        name: entry.name,
        source: entry.compiled?.source ?? entry.fileText,
        examples: entry.examples,
        ...(errorOf(entry) ? { error: errorOf(entry) } : {}),
        active: entry.compiled !== undefined,
        loaded_at: entry.loadedAt?.toISOString() ?? null,
      }));
  }

  /**
   * A subscription's `mapping`: the template of that name, else inline JSONata. Throws
   * TemplateError: `mapping_not_found` for a name with no template, `template_unavailable`
   * for a template that never loaded, `template_syntax_error` for bad inline JSONata.
   */
  resolve(mapping: string): CompiledTemplate {
    const entry = this.#entries.get(mapping);
    if (entry) {
      if (entry.compiled) return entry.compiled;
      throw new TemplateError(
        `Mapping template "${mapping}" is not in service: ${entry.templateError?.message ?? 'it failed to load'}`,
        [problemDetail(entry.templateError, `template ${mapping} failed to load`)],
        'template_unavailable',
      );
    }
    if (isTemplateName(mapping)) {
      throw new TemplateError(
        `No mapping template named "${mapping}" in the mappings directory. Use a template name from GET /api/v1/mappings, or write inline JSONata (a bare path like "data" must be written "$.data").`,
        [{ message: `no template named "${mapping}"` }],
        'mapping_not_found',
      );
    }
    let compiled = this.#inlineTemplates.get(mapping);
    if (!compiled) {
      compiled = compileTemplate(mapping, { limits: this.#limits });
      this.#inlineTemplates.set(mapping, compiled);
    }
    return compiled;
  }

  /** A filter predicate, compiled once and cached; throws TemplateError `filter_syntax_error`. */
  filter(source: string): CompiledFilter {
    let compiled = this.#filters.get(source);
    if (!compiled) {
      compiled = compileFilter(source, { limits: this.#limits });
      this.#filters.set(source, compiled);
    }
    return compiled;
  }

  /** What every template and filter sees besides the event. */
  bindings(subscription?: Record<string, unknown>): TemplateBindings {
    return { subscription, env: this.#env };
  }

  /** The mapped body for one event; throws TemplateError (see resolve and evaluateTemplate). */
  async render(mapping: string, event: unknown, subscription?: Record<string, unknown>): Promise<unknown> {
    return evaluateTemplate(this.resolve(mapping), event, this.bindings(subscription), this.#limits);
  }

  /** Whether the event passes the filter; throws TemplateError `filter_*` when it fails. */
  async filterMatches(filter: string, event: unknown, subscription?: Record<string, unknown>): Promise<boolean> {
    return evaluateFilter(this.filter(filter), event, this.bindings(subscription), this.#limits);
  }

  /** Problems with a subscription's `mapping`, each with `path`; empty when it resolves. */
  checkMapping(mapping: string, at: string): ErrorDetail[] {
    return problemsAt(at, () => this.resolve(mapping));
  }

  /** Problems with a subscription's `filter`, each with `path`; empty when it compiles. */
  checkFilter(filter: string, at: string): ErrorDetail[] {
    return problemsAt(at, () => this.filter(filter));
  }

  /** Problems with a subscription's ordering key expression, each with `path`; empty when it compiles. */
  checkOrderingKey(key: string, at: string): ErrorDetail[] {
    return problemsAt(at, () => compileOrderingKey(key, { limits: this.#limits }));
  }

  /** Runs the examples of every template (or of one) and compares outputs with the expected ones. */
  async runExamples(name?: string): Promise<ExampleResult[]> {
    let entries = [...this.#entries.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (name !== undefined) {
      entries = entries.filter((entry) => entry.name === name);
      if (entries.length === 0) {
        throw new TemplateError(`No mapping template named "${name}" in ${this.dir}.`, [{ message: `no template named "${name}"` }], 'mapping_not_found');
      }
    }
    const results: ExampleResult[] = [];
    for (const entry of entries) {
      for (const problem of [entry.templateError, entry.examplesError]) {
        if (problem) results.push({ name: entry.name, index: null, ok: false, error: problemSummary(problem) });
      }
      if (!entry.compiled) continue;
      for (const [index, example] of entry.examples.entries()) {
        results.push(await this.#runExample(entry.name, entry.compiled, index, example));
      }
    }
    return results;
  }

  async #runExample(name: string, compiled: CompiledTemplate, index: number, example: TemplateExample): Promise<ExampleResult> {
    const description = example.description ?? eventName(example.input);
    const base = { name, index, ...(description ? { description } : {}), expected: example.expected };
    try {
      const actual = await evaluateTemplate(compiled, example.input, this.bindings(example.subscription), this.#limits);
      return { ...base, ok: jsonEqual(actual, example.expected), actual };
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      const detail = err.details[0];
      return {
        ...base,
        ok: false,
        error: {
          code: err.code,
          message: err.message,
          ...(detail?.line !== undefined ? { line: detail.line, column: detail.column, token: detail.token } : {}),
        },
      };
    }
  }

  #scheduleRescan(): void {
    clearTimeout(this.#debounceTimer);
    this.#debounceTimer = setTimeout(() => this.#rescanInBackground(), this.#debounceMs);
  }

  /** One rescan at a time; changes that arrive during one trigger another right after. */
  #rescanInBackground(): void {
    if (this.#scanning) {
      this.#scanAgain = true;
      return;
    }
    this.#scanning = (async () => {
      do {
        this.#scanAgain = false;
        try {
          await this.#scan();
        } catch (err) {
          this.#logger?.error({ dir: this.dir, err: (err as Error).message }, 'reloading mapping templates failed');
        }
      } while (this.#scanAgain && this.#watching);
    })().finally(() => {
      this.#scanning = undefined;
    });
  }

  /**
   * Compares every file with what is loaded and applies the differences. A full rescan,
   * rather than following individual fs events, copes with editors that save by renaming
   * and with events that name no file.
   */
  async #scan(): Promise<ReloadEvent> {
    const event: ReloadEvent = { changed: [], removed: [], failed: [] };
    const { files, dirs } = await listMappingsTree(this.dir, this.#logger);
    this.#dirs = dirs;
    const seen = new Set<string>();
    for (const file of files) {
      const name = file.slice(0, -TEMPLATE_EXT.length);
      const fileText = await readIfExists(path.join(this.dir, file));
      if (fileText === null) continue; // deleted since the listing
      seen.add(name);
      const examplesFile = name + EXAMPLES_EXT;
      const examplesText = await readIfExists(path.join(this.dir, examplesFile));
      const previous = this.#entries.get(name);
      if (previous && previous.fileText === fileText && previous.examplesText === examplesText) continue;

      const next = this.#loadEntry(name, file, fileText, examplesFile, examplesText, previous);
      this.#entries.set(name, next);
      const problem = errorOf(next);
      if (problem) {
        event.failed.push(name);
        this.#logger?.error(
          // `near`, not `token`: the logger redacts any field named token (secrets), and this one is template text.
          { template: name, file: problem.file, line: problem.line, column: problem.column, near: problem.token, err: problem.message },
          !next.templateError
            ? 'mapping examples file failed to load; the template itself is in service'
            : next.compiled
              ? 'mapping template failed to load; the previous version stays in service'
              : 'mapping template failed to load',
        );
      } else {
        event.changed.push(name);
        this.#logger?.info({ template: name }, previous ? 'mapping template reloaded' : 'mapping template loaded');
      }
    }
    for (const name of [...this.#entries.keys()]) {
      if (seen.has(name)) continue;
      this.#entries.delete(name);
      event.removed.push(name);
      this.#logger?.info({ template: name }, 'mapping template removed');
    }
    this.#syncWatchers();
    if (event.changed.length || event.removed.length || event.failed.length) this.emit('reload', event);
    return event;
  }

  #loadEntry(
    name: string,
    file: string,
    fileText: string,
    examplesFile: string,
    examplesText: string | null,
    previous: TemplateEntry | undefined,
  ): TemplateEntry {
    let compiled: CompiledTemplate | undefined;
    let templateProblem: TemplateProblem | undefined;
    if (previous?.fileText === fileText) {
      // Only the examples changed: the template's state stays as it was.
      compiled = previous.templateError ? undefined : previous.compiled;
      templateProblem = previous.templateError;
    } else {
      try {
        compiled = compileTemplate(fileText, { limits: this.#limits });
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        templateProblem = toProblem(err, file);
      }
    }

    let examples: TemplateExample[] | undefined;
    let examplesProblem: TemplateProblem | undefined;
    try {
      examples = examplesText === null ? [] : parseExamples(examplesText);
    } catch (err) {
      examplesProblem = { message: `${examplesFile}: ${(err as Error).message}`, file: examplesFile, code: 'examples_invalid' };
    }

    const inService = compiled ?? previous?.compiled;
    return {
      name,
      file,
      compiled: inService,
      fileText,
      examplesText,
      examples: examples ?? previous?.examples ?? [],
      templateError: templateProblem,
      examplesError: examplesProblem,
      loadedAt: compiled && compiled !== previous?.compiled ? this.#now() : (previous?.loadedAt ?? null),
    };
  }
}

/** The problem `list()` shows: the template's own first, then its examples'. */
function errorOf(entry: TemplateEntry): TemplateProblem | undefined {
  return entry.templateError ?? entry.examplesError;
}

/**
 * Every `*.jsonata` under dir and every folder, relative, with `/` separators. Hidden
 * entries (`.git`, editor temp files) are skipped. A missing dir is an empty tree.
 */
async function listMappingsTree(dir: string, logger?: RegistryLogger): Promise<{ files: string[]; dirs: string[] }> {
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    let entries: fs.Dirent[];
    try {
      entries = await fsp.readdir(path.join(dir, relative), { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        if (relative === '') logger?.warn({ dir }, 'the mappings directory does not exist; no templates loaded');
        return;
      }
      throw err;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const child = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        dirs.push(child);
        await walk(child);
      } else if (entry.name.endsWith(TEMPLATE_EXT) && (entry.isFile() || entry.isSymbolicLink())) {
        files.push(child);
      }
    }
  };
  await walk('');
  return { files: files.sort(), dirs: dirs.sort() };
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') return null;
    throw err;
  }
}

function parseExamples(text: string): TemplateExample[] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed)) throw new Error('expected a JSON array of {"input": <event>, "expected": <output>}');
  return parsed.map((item, index) => {
    if (!item || typeof item !== 'object' || Array.isArray(item)) throw new Error(`example ${index + 1} is not an object`);
    for (const key of ['input', 'expected']) {
      if (!(key in item)) throw new Error(`example ${index + 1} has no "${key}"`);
    }
    const { description, subscription } = item as TemplateExample;
    if (description !== undefined && typeof description !== 'string') throw new Error(`example ${index + 1}: "description" must be a string`);
    if (subscription !== undefined && (typeof subscription !== 'object' || subscription === null || Array.isArray(subscription))) {
      throw new Error(`example ${index + 1}: "subscription" must be an object`);
    }
    return item as TemplateExample;
  });
}

function toProblem(err: AppError, file: string): TemplateProblem {
  const detail = err.details[0] ?? { message: err.message };
  return {
    message: err.message,
    file,
    code: err.code,
    ...(detail.line !== undefined ? { line: detail.line, column: detail.column } : {}),
    ...(detail.token !== undefined ? { token: detail.token } : {}),
    ...(typeof detail.position === 'number' ? { position: detail.position } : {}),
  };
}

function problemSummary(problem: TemplateProblem): NonNullable<ExampleResult['error']> {
  const { code, message, line, column, token } = problem;
  return { code, message, ...(line !== undefined ? { line, column, token } : {}) };
}

function problemDetail(problem: TemplateProblem | undefined, fallback: string): ErrorDetail {
  if (!problem) return { message: fallback };
  const { message, line, column, token, file } = problem;
  return { message, file, ...(line !== undefined ? { line, column, token } : {}) };
}

function problemsAt(at: string, check: () => unknown): ErrorDetail[] {
  try {
    check();
    return [];
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    return err.details.length
      ? err.details.map((detail) => ({ ...detail, path: at, message: err.message }))
      : [{ path: at, message: err.message }];
  }
}

function eventName(input: unknown): string | undefined {
  const name = (input as { event?: unknown } | null)?.event;
  return typeof name === 'string' ? name : undefined;
}

/** Equality of JSON values: key order does not matter, array order does. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((item, i) => jsonEqual(item, other[i]));
  }
  const aKeys = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const bKeys = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return aKeys.length === bKeys.length
    && aKeys.every((k) => Object.hasOwn(b, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** A Map that forgets its least recently used entry beyond `capacity`. */
class LruCache<V> {
  readonly #map = new Map<string, V>();
  constructor(readonly capacity: number) {}

  get(key: string): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.capacity) this.#map.delete(this.#map.keys().next().value as string);
  }
}
