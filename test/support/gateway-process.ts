import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { ADMIN_KEY, REPO_ROOT, waitFor } from './gateway.ts';

/** A gateway running as its own process, the way an operator (or an attacker) meets it. */
export interface GatewayProcess {
  child: ChildProcess;
  url: string;
  /** Everything it printed so far, stdout and stderr. */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Calls the API with a key (admin by default); returns status and parsed JSON (or text). */
  api(method: string, route: string, body?: unknown, key?: string | null): Promise<{ status: number; body: any }>;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const children = new Set<ChildProcess>();

/** Kills every gateway process still running (call from afterEach/afterAll). */
export function killGatewayProcesses(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `node --import tsx src/main.ts` on a fresh port; resolves once /readyz answers 200. */
export async function spawnGateway(dataDir: string, env: Record<string, string> = {}): Promise<GatewayProcess> {
  const port = await freePort();
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SLUICE_')));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
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
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout!.on('data', (c) => (output += c));
  child.stderr!.on('data', (c) => (output += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode} before it was ready:\n${output}`);
      try {
        return (await fetch(`${url}/readyz`)).status === 200;
      } catch {
        return false;
      }
    },
    20_000,
    'the gateway to be ready',
  );
  const api: GatewayProcess['api'] = async (method, route, body, key = ADMIN_KEY) => {
    const res = await fetch(url + route, {
      method,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed };
  };
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return { child, url, output: () => output, exited, api, stop };
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
