import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ADMIN_KEY, REPO_ROOT, waitFor } from './gateway.ts';
import { ROOMY_LIMITS } from './limits.ts';

/**
 * The real gateway as a child process (`node --import tsx src/main.ts`), the way an operator
 * runs it: for crash tests and for attacks against a running gateway.
 */
export interface GatewayProcess {
  child: ChildProcess;
  url: string;
  port: number;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();

/**
 * `npm run test:coverage` sets SLUICE_CHILD_COVERAGE: children then write their V8 coverage
 * there (NODE_V8_COVERAGE) when they exit, and it is merged into the report.
 */
export function childCoverage(): Record<string, string> {
  return process.env.SLUICE_CHILD_COVERAGE ? { NODE_V8_COVERAGE: process.env.SLUICE_CHILD_COVERAGE } : {};
}

/** Kills every gateway a test left running (call from afterEach/afterAll). */
export function killGateways(): void {
  // Under coverage a gateway is stopped with SIGTERM: a SIGKILLed process writes no coverage.
  const signal = process.env.SLUICE_CHILD_COVERAGE ? 'SIGTERM' : 'SIGKILL';
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  children.clear();
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * How tests start the gateway: the TypeScript through tsx, so coverage of child processes maps
 * to src/. `npmStartArgs()` is what `npm start` runs (the bundle of scripts/start.mjs).
 */
const TSX_ARGS = ['--import', 'tsx', 'src/main.ts'];

/** The node arguments of `npm start` (package.json's start script is `exec node <args>`). */
export function npmStartArgs(): string[] {
  const script = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const [command, ...args] = script.replace(/^exec\s+/, '').split(/\s+/);
  if (command !== 'node') throw new Error(`npm start is expected to run node, not: ${script}`);
  return args;
}

/** Starts the process without waiting: for starts that are expected to fail. */
export function launchGateway(dataDir: string, env: Record<string, string> = {}, port = 0, nodeArgs = TSX_ARGS): GatewayProcess {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SLUICE_')));
  const child = spawn(process.execPath, nodeArgs, {
    cwd: REPO_ROOT,
    env: {
      ...inherited,
      SLUICE_PORT: String(port),
      SLUICE_HOST: '127.0.0.1',
      SLUICE_DATA_DIR: dataDir,
      SLUICE_ADMIN_KEY: ADMIN_KEY,
      SLUICE_ALLOW_INSECURE_URLS: 'true',
      SLUICE_LOG_LEVEL: 'warn',
      SLUICE_WATCH_MAPPINGS: 'false',
      // As for in-process test gateways (see startGateway): tests of the time limit set their own.
      SLUICE_TEMPLATE_TIMEOUT_MS: String(ROOMY_LIMITS.timeoutMs),
      ...childCoverage(),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout!.on('data', (c) => (output += c));
  child.stderr!.on('data', (c) => (output += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, url: `http://127.0.0.1:${port}`, port, output: () => output, exited };
}

/** Starts the gateway on a fresh port; resolves once /readyz answers 200 (several starting at once on a busy machine take longer). */
export async function spawnGateway(dataDir: string, env: Record<string, string> = {}, readyTimeoutMs = 30_000, nodeArgs = TSX_ARGS): Promise<GatewayProcess> {
  const gw = launchGateway(dataDir, env, await freePort(), nodeArgs);
  await waitFor(
    async () => {
      if (gw.child.exitCode !== null) throw new Error(`gateway exited with ${gw.child.exitCode} before it was ready:\n${gw.output()}`);
      // A one-off connection, not one kept alive in fetch's pool: connection-cap tests count them.
      return new Promise<boolean>((resolve) => {
        http.get(`${gw.url}/readyz`, { agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        }).on('error', () => resolve(false));
      });
    },
    readyTimeoutMs,
    'the gateway to be ready',
  );
  return gw;
}

export { callApi } from './gateway.ts';

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`. */
export async function stopGateway(gw: GatewayProcess, graceMs = 10_000): Promise<void> {
  if (gw.child.exitCode !== null || gw.child.signalCode !== null) return;
  gw.child.kill('SIGTERM');
  const timer = setTimeout(() => gw.child.kill('SIGKILL'), graceMs);
  await gw.exited;
  clearTimeout(timer);
}

/**
 * Polls /healthz every few milliseconds until stopped; the slowest answer tells whether anything
 * held the gateway's event loop meanwhile.
 */
export function watchHealth(url: string): { stop(): Promise<{ max: number; count: number; failures: number }> } {
  let running = true;
  let max = 0;
  let count = 0;
  let failures = 0;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      try {
        const res = await fetch(`${url}/healthz`);
        await res.arrayBuffer();
        if (res.status !== 200) failures++;
      } catch {
        failures++;
      }
      max = Math.max(max, performance.now() - started);
      count++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { max, count, failures };
    },
  };
}

/** The master key every instance of a shared database is started with (they must share one). */
export const SHARED_MASTER_KEY = '5a'.repeat(32);

/**
 * Environment for an instance on a shared PostgreSQL database (pass it to spawnGateway or
 * launchGateway): the database URL and the shared master key, plus any overrides.
 */
export function sharedDatabaseEnv(databaseUrl: string, env: Record<string, string> = {}): Record<string, string> {
  return { SLUICE_DATABASE_URL: databaseUrl, SLUICE_MASTER_KEY: SHARED_MASTER_KEY, ...env };
}

/** A counter from a gateway's /metrics (summed over its labels that match `labels`). */
export async function metricValue(gw: { url: string }, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (labels && !line.includes(labels))) continue;
    const [series, value] = line.split(' ');
    if (series === name || series.startsWith(`${name}{`)) total += Number(value);
  }
  return total;
}
