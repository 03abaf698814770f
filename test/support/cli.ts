import { spawn, type ChildProcess } from 'node:child_process';
import { REPO_ROOT } from './gateway.ts';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The caller's environment without SLUICE_* settings, plus `env`. */
function cliEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const coverage = process.env.SLUICE_CHILD_COVERAGE ? { NODE_V8_COVERAGE: process.env.SLUICE_CHILD_COVERAGE } : {};
  return { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SLUICE_'))), ...coverage, ...env };
}

/** `npx sluice ...args` as an operator runs it: a child process, its exit code and output. */
export function runSluice(args: string[], opts: { env?: Record<string, string>; input?: string | Buffer } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/sluice.js', ...args], { cwd: REPO_ROOT, env: cliEnv(opts.env ?? {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** A long-running `sluice` (e.g. `deliveries --follow`) whose output lines can be awaited. */
export function startSluice(args: string[], env: Record<string, string>): { child: ChildProcess; lines: string[]; waitForLine: (match: (line: string) => boolean, timeoutMs?: number) => Promise<string>; stop: () => Promise<number | null> } {
  const child = spawn(process.execPath, ['bin/sluice.js', ...args], { cwd: REPO_ROOT, env: cliEnv(env) });
  const lines: string[] = [];
  let partial = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (chunk) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters) w();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    lines,
    waitForLine: (match, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching line; got:\n${lines.join('\n')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    stop: () => {
      child.kill('SIGINT');
      return exited;
    },
  };
}
