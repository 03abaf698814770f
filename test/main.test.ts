import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_KEY, REPO_ROOT, tempDir, waitFor } from './support/gateway.ts';
import { freePort, killGateways, spawnGateway, type GatewayProcess } from './support/gateway-process.ts';

/**
 * The process around the gateway (src/main.ts): a SIGTERM ends it within the grace period plus
 * the shutdown margin, whatever state its stdout is in and whatever blocks its exit.
 */

const GRACE_SECONDS = 1;
/** The deadline main.ts arms: the grace period plus its 5 s margin. */
const DEADLINE_MS = GRACE_SECONDS * 1000 + 5_000;
/** How long past the deadline the test waits before calling the process hung: a loaded machine. */
const SLACK_MS = 15_000;

const strays = new Set<number>();
afterEach(() => {
  killGateways();
  for (const pid of strays) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  strays.clear();
});

function exitWithin(exited: GatewayProcess['exited'], ms: number) {
  return Promise.race([exited, new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), ms))]);
}

/** Nobody reads the gateway's output any more: a log shipper restarting, a parent gone. */
function dropReaders(gw: GatewayProcess): void {
  gw.child.stdout!.destroy();
  gw.child.stderr!.destroy();
}

describe('shutdown of the gateway process', () => {
  it('ends within the deadline after SIGTERM when the readers of its stdout and stderr are gone', async () => {
    const dataDir = tempDir('sluice-term-pipes-');
    try {
      // info: it logs while shutting down, into the broken pipes.
      const gw = await spawnGateway(dataDir, { SLUICE_LOG_LEVEL: 'info', SLUICE_SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS) });
      dropReaders(gw);
      gw.child.kill('SIGTERM');
      expect(await exitWithin(gw.exited, DEADLINE_MS + SLACK_MS)).toEqual({ code: 0, signal: null });
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('is ended by the deadline when its exit blocks, even with the main thread stuck', async () => {
    const dataDir = tempDir('sluice-term-blocked-');
    try {
      const gw = await spawnGateway(dataDir, {
        SLUICE_SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
        NODE_OPTIONS: `--import ${JSON.stringify(path.join(REPO_ROOT, 'test/support/block-exit.mjs'))}`,
      });
      dropReaders(gw);
      gw.child.kill('SIGTERM');
      // Forced: killed, not a clean exit code.
      expect(await exitWithin(gw.exited, DEADLINE_MS + SLACK_MS)).toEqual({ code: null, signal: 'SIGKILL' });
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('under `npm start`, stops when a supervisor SIGTERMs npm and goes away', async () => {
    const dataDir = tempDir('sluice-term-npm-');
    const port = await freePort();
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SLUICE_') && !name.startsWith('npm_')));
    const npm = spawn('npm', ['start'], {
      cwd: REPO_ROOT,
      env: {
        ...inherited,
        SLUICE_PORT: String(port), SLUICE_HOST: '127.0.0.1', SLUICE_DATA_DIR: dataDir, SLUICE_ADMIN_KEY: ADMIN_KEY,
        SLUICE_LOG_LEVEL: 'info', SLUICE_WATCH_MAPPINGS: 'false', SLUICE_SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stdout!.on('data', (c) => (output += c));
    npm.stderr!.on('data', (c) => (output += c));
    try {
      await waitFor(() => output.includes('sluice listening'), 30_000, `the gateway under npm start to be ready:\n${output}`);
      const tree = descendants(npm);
      for (const pid of tree) strays.add(pid);
      expect(tree.length, output).toBeGreaterThan(0);
      // The supervisor forwards its SIGTERM to npm and exits: npm gets the signal, the pipes lose their reader.
      npm.kill('SIGTERM');
      npm.stdout!.destroy();
      npm.stderr!.destroy();
      const gone = await waitFor(() => tree.every((pid) => !alive(pid)), DEADLINE_MS + SLACK_MS, 'npm and the gateway to exit').catch(() => false);
      expect(gone, `still running: ${tree.filter(alive).join(', ')}`).toBe(true);
    } finally {
      if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});

/** Every process below `child` (npm's shell, node, tsx's esbuild), from `ps`. */
function descendants(child: ChildProcess): number[] {
  const rows = execFileSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' }).trim().split('\n').map((row) => row.trim().split(/\s+/).map(Number));
  const found: number[] = [];
  const visit = (parent: number) => {
    for (const [pid, ppid] of rows) {
      if (ppid !== parent) continue;
      found.push(pid);
      visit(pid);
    }
  };
  visit(child.pid!);
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by its parent) counts as gone.
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}
