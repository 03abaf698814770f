import { spawn } from 'node:child_process';

/**
 * The watchdog process: SIGKILLs the gateway (argv[1]) after argv[2] ms, unless the gateway is
 * gone first (its end of our stdin closes: EOF). It ignores the signals a terminal or supervisor
 * sends to the whole process group, so a second Ctrl-C does not take the deadline away.
 */
const WATCHDOG_SOURCE = `
const [pid, ms] = process.argv.slice(1).map(Number);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => {});
process.stdin.on('end', () => process.exit(0)).on('error', () => process.exit(0)).resume();
setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch {} process.exit(0); }, ms);
`;

/**
 * Ends this process with SIGKILL `ms` from now if it has not exited by then: a shutdown must
 * end whatever blocks it. Two guards, both armed before the shutdown begins:
 * - a timer here, for a stop that never finishes while the event loop still runs;
 * - a small watchdog process, for when this process's main thread is itself stuck (inside
 *   process.exit, an exit handler, a thread join), where no timer of ours can fire.
 * `onExpired` runs just before the in-process kill (a last log line).
 */
export function armExitDeadline(ms: number, onExpired: () => void = () => undefined): void {
  setTimeout(() => {
    onExpired();
    process.kill(process.pid, 'SIGKILL');
  }, ms).unref();
  try {
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // nothing preloaded into the watchdog, nothing to slow its start
    const watchdog = spawn(process.execPath, ['-e', WATCHDOG_SOURCE, String(process.pid), String(ms)], {
      stdio: ['pipe', 'ignore', 'ignore'],
      env,
    });
    watchdog.on('error', () => undefined); // no watchdog (spawn failed): the timer above still guards
    watchdog.stdin?.on('error', () => undefined);
    // Neither the watchdog nor its pipe keeps this process alive.
    watchdog.unref();
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  } catch {
    // spawn can throw synchronously (EAGAIN, ENOMEM): the timer above still guards.
  }
}
