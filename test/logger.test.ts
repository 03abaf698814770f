import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/gateway.ts';
import { MAX_PENDING_LOG_BYTES } from '../src/logger.ts';

/**
 * The gateway's log output when nobody reads it: a log shipper restarting, a parent process
 * gone. Logging must neither block the process nor hold its exit.
 */

const children = new Set<ReturnType<typeof spawn>>();
afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
});

function startLoggingChild(count: number, bytes: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/logging-child.ts', String(count), String(bytes)], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let report = '';
  child.stderr!.on('data', (c) => (report += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  /** The exit, or 'still running' after a bound far above what the exit needs. */
  const exitWithin = (ms: number) => Promise.race([exited, new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), ms))]);
  return { child, exitWithin, report: () => report };
}

describe('logging to stdout', () => {
  it('stops at a broken pipe and lets the process exit', async () => {
    const { child, exitWithin, report } = startLoggingChild(3, 10);
    child.stdout!.destroy(); // the reader goes away: every write gets EPIPE
    child.stdin!.end('go\n');
    expect(await exitWithin(20_000), report()).toEqual({ code: 0, signal: null });
  }, 30_000);

  it('never blocks while nobody reads, keeps at most a bounded backlog, and does not hold the exit', async () => {
    const { child, exitWithin, report } = startLoggingChild(20_000, 1_000);
    child.stdout!.pause(); // the reader is there but stuck: the pipe fills up
    child.stdin!.end('go\n');
    expect(await exitWithin(20_000), report()).toEqual({ code: 0, signal: null });
    const { maxPending, eventLoopTurns } = JSON.parse(report());
    // 20 MB were logged; the pipe holds far less, so most of it had to wait or be dropped.
    expect(maxPending).toBeGreaterThan(0);
    expect(maxPending).toBeLessThan(MAX_PENDING_LOG_BYTES + 2_000);
    expect(eventLoopTurns).toBeGreaterThan(0);
  }, 30_000);
});
