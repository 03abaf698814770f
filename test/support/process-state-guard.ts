// Loaded before every test file of the `shared` project (vitest.config.ts). Those files share a
// worker's process and modules (`isolate: false`), so process-wide state one file changes and
// does not restore reaches the files after it: an environment variable, a process listener, a
// stubbed global, fake timers, a spy left on a shared object. This guard fails the file that
// leaves such a change behind, naming what changed, and puts back what it can, instead of letting
// a later file fail (or, worse, pass) for a reason it cannot see.
import { afterAll, beforeAll, vi } from 'vitest';

/** `process` as a plain emitter: its typings accept signal names only in some overloads. */
const emitter: NodeJS.EventEmitter = process;

/** Process events whose listeners change how errors and signals are handled for everyone. */
const WATCHED_EVENTS = ['unhandledRejection', 'uncaughtException', 'warning', 'SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** Globals and methods a test may stub or spy on; compared by identity. */
function watchedFunctions(): Record<string, unknown> {
  return {
    fetch: globalThis.fetch,
    Date: globalThis.Date,
    'Date.now': Date.now,
    'Math.random': Math.random,
    'performance.now': performance.now,
    setTimeout: globalThis.setTimeout,
    setInterval: globalThis.setInterval,
    setImmediate: globalThis.setImmediate,
    queueMicrotask: globalThis.queueMicrotask,
    'console.log': console.log,
    'console.warn': console.warn,
    'console.error': console.error,
    'process.exit': process.exit,
    'process.emitWarning': process.emitWarning,
  };
}

interface ProcessState {
  env: Record<string, string | undefined>;
  listeners: Record<string, number>;
  listenerFunctions: Record<string, Function[]>;
  functions: Record<string, unknown>;
  cwd: string;
  exitCode: typeof process.exitCode;
}

function capture(): ProcessState {
  return {
    env: { ...process.env },
    listeners: Object.fromEntries(WATCHED_EVENTS.map((event) => [event, process.listenerCount(event)])),
    listenerFunctions: Object.fromEntries(WATCHED_EVENTS.map((event) => [event, emitter.listeners(event)])),
    functions: watchedFunctions(),
    cwd: process.cwd(),
    exitCode: process.exitCode,
  };
}

/** What differs between two captures, one readable line each. */
export function stateChanges(before: ProcessState, after: ProcessState): string[] {
  const changes: string[] = [];
  for (const name of new Set([...Object.keys(before.env), ...Object.keys(after.env)])) {
    // Names only: a leaked variable may hold a secret.
    if (before.env[name] !== after.env[name]) changes.push(`process.env.${name} ${after.env[name] === undefined ? 'removed' : before.env[name] === undefined ? 'added' : 'changed'}`);
  }
  for (const event of WATCHED_EVENTS) {
    if (before.listeners[event] !== after.listeners[event]) changes.push(`${after.listeners[event]! - before.listeners[event]!} '${event}' listener(s) added to process`);
  }
  for (const name of Object.keys(before.functions)) {
    if (before.functions[name] !== after.functions[name]) changes.push(`${name} replaced (a stub or spy not restored)`);
  }
  if (before.cwd !== after.cwd) changes.push(`working directory changed to ${after.cwd}`);
  if (before.exitCode !== after.exitCode) changes.push(`process.exitCode set to ${String(after.exitCode)}`);
  return changes;
}

/** Undoes what a leaking file left, so the files after it are not blamed for it too. */
function putBack(state: ProcessState): void {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
  for (const name of Object.keys(process.env)) if (!(name in state.env)) delete process.env[name];
  Object.assign(process.env, state.env);
  for (const event of WATCHED_EVENTS) {
    for (const listener of emitter.listeners(event)) if (!state.listenerFunctions[event]!.includes(listener)) emitter.off(event, listener as (...args: unknown[]) => void);
  }
  process.chdir(state.cwd);
  process.exitCode = state.exitCode;
}

let before: ProcessState;

beforeAll(() => {
  before = capture();
});

// Registered before the file's own hooks, so it runs after all of them (hooks run as a stack).
afterAll(() => {
  const changes = stateChanges(before, capture());
  if (vi.isFakeTimers()) changes.push('fake timers still installed (vi.useRealTimers() not called)');
  if (changes.length) {
    putBack(before);
    throw new Error(`this test file left process-wide state changed, which would reach the test files after it in the same worker (isolate: false): ${changes.join('; ')}`);
  }
});
