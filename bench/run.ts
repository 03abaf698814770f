/**
 * `npm run bench`: measures the whole pipeline on this machine and prints a table plus one
 * final JSON line. The gateway runs as a real child process on a fresh data dir; a loopback
 * receiver runs in this process; the load comes from a generator process of its own (wrk when
 * installed, else autocannon: see load-generator.ts and wrk.ts), the same for every row of a run.
 * A bare forwarder (parse, HMAC, undici forward, no storage) takes the same load in the same run,
 * so Sluice is also reported as a ratio of it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadJob, LoadResult } from './load-generator.ts';
import { wrkAvailable, wrkLoad } from './wrk.ts';
import pg from 'pg';
import { SqliteStorage } from '../src/storage/sqlite/sqlite-storage.ts';
import { PostgresStorage } from '../src/storage/postgres/postgres-storage.ts';
import { newId } from '../src/core/ids.ts';
import type { DeliveryRecord, IngestItem } from '../src/storage/types.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ADMIN = 'sk_admin_bench_0123456789abcdef';
const MASTER_KEY = 'a'.repeat(64);
const SIMPLE_MAPPING = '{"id": id, "event": event, "call_id": data.call.id, "status": data.call.status, "duration": data.call.duration}';
const quick = process.argv.includes('--quick');
const scale = quick ? 0.2 : 1;
const onlyArg = process.argv.find((a) => a.startsWith('--only='));
const only = onlyArg ? new Set(onlyArg.slice(7).split(',')) : null;
const want = (scenario: string) => !only || only.has(scenario);
const generatorArg = process.argv.find((a) => a.startsWith('--generator='))?.slice(12);
/**
 * `--baseline=<checkout>`: another checkout of Sluice (an earlier commit, with its own
 * node_modules) whose gateway runs row (a) too, alternated with this one's in the same run, so a
 * change is judged against a baseline taken under the same machine load.
 */
const baselineRoot = process.argv.find((a) => a.startsWith('--baseline='))?.slice(11);
const baselinePairs = Number(process.argv.find((a) => a.startsWith('--pairs='))?.slice(8) ?? 3);
/** Closed-loop rows: wrk when installed (or asked for), else autocannon; always in a process of its own. */
const generator: 'wrk' | 'autocannon' = generatorArg === 'autocannon' ? 'autocannon' : generatorArg === 'wrk' || wrkAvailable() ? 'wrk' : 'autocannon';

// --- helpers ------------------------------------------------------------------------------
async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Loopback receiver: counts deliveries and, for ids carrying a send time, their latency. */
class Receiver {
  count = 0;
  latencies: number[] = [];
  server!: http.Server;
  url = '';
  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.count++;
        const body = Buffer.concat(chunks).toString('utf8');
        const sent = /"id":"evt_b_[\d_]*_(\d+)"/.exec(body);
        if (sent) this.latencies.push(Date.now() - Number(sent[1]));
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
      });
    });
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }
  reset(): void {
    this.count = 0;
    this.latencies = [];
  }
  async waitFor(n: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.count < n && Date.now() < deadline) await sleep(5);
    return Date.now();
  }
}

interface Gateway {
  proc: ChildProcess;
  url: string;
  dataDir: string;
  peakRssMb(): number;
  /** Peak of the evaluator processes' RSS, summed (they are the gateway's children). */
  peakEvaluatorsMb(): number;
  stop(): Promise<void>;
}

/** The gateway runs exactly as `npm start` runs it (same Node flags). */
function startArgs(root = ROOT): string[] {
  const script: string = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).scripts.start;
  // `exec` (the shell npm runs scripts in hands over to node, so signals reach the gateway).
  const [command, ...args] = script.replace(/^exec\s+/, '').split(/\s+/);
  if (command !== 'node') throw new Error(`bench expects "npm start" to run node, not: ${script}`);
  return [...(process.env.GATEWAY_NODE_FLAGS ? process.env.GATEWAY_NODE_FLAGS.split(/\s+/) : []), ...args];
}

/** Children to kill if the benchmark dies half-way. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** `cpus`: the cores the gateway (all its threads and evaluators) may run on, through taskset. */
async function startGateway(dataDir: string, env: Record<string, string> = {}, cpus?: string, root = ROOT): Promise<Gateway> {
  const port = await freePort();
  // taskset execs node: the pid is the gateway's own (its RSS is sampled through it).
  const [command, args] = cpus ? ['taskset', ['-c', cpus, process.execPath, ...startArgs(root)]] : [process.execPath, startArgs(root)];
  const proc = spawn(command, args, {
    cwd: root,
    env: {
      ...process.env,
      SLUICE_PORT: String(port),
      SLUICE_DATA_DIR: dataDir,
      SLUICE_ADMIN_KEY: ADMIN,
      SLUICE_MASTER_KEY: MASTER_KEY,
      SLUICE_ALLOW_INSECURE_URLS: 'true',
      SLUICE_LOG_LEVEL: 'warn',
      SLUICE_WATCH_MAPPINGS: 'false',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  let peak = 0;
  let evaluatorsPeak = 0;
  const rssOf = (pid: string | number, field = 'VmRSS') => {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  };
  const sample = () => {
    try {
      peak = Math.max(peak, rssOf(proc.pid!, 'VmHWM'));
      let evaluators = 0;
      // Children of any of its threads: the delivery thread starts the evaluators that run templates.
      const children = fs.readdirSync(`/proc/${proc.pid}/task`).flatMap((task) => {
        try {
          return fs.readFileSync(`/proc/${proc.pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
        } catch {
          return [];
        }
      });
      for (const child of children) {
        try {
          if (fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').includes('sluice-evaluator')) evaluators += rssOf(child);
        } catch {
          // that child ended
        }
      }
      evaluatorsPeak = Math.max(evaluatorsPeak, evaluators);
    } catch {
      // process gone
    }
  };
  const sampler = setInterval(sample, 250);
  return {
    proc,
    url,
    dataDir,
    peakRssMb: () => (sample(), peak),
    peakEvaluatorsMb: () => (sample(), evaluatorsPeak),
    stop: async () => {
      clearInterval(sampler);
      sample();
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}

async function api(gw: Gateway, method: string, route: string, body?: unknown): Promise<any> {
  const res = await fetch(gw.url + route, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
  const json = await res.json();
  if (res.status >= 300) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const fixture = (name: string) => JSON.parse(fs.readFileSync(path.join(ROOT, '../shared/fixtures/events', `${name}.json`), 'utf8'));
const callEnded = fixture('call.ended');
const frustration = fixture('signal.frustration_spike');

let seq = 0;

/** Runs one load job in a generator child process (bench/load-generator.ts, or wrk) and returns its result. */
async function runGenerator(job: LoadJob): Promise<LoadResult> {
  if (job.mode === 'closed' && generator === 'wrk') return wrkLoad(job);
  const proc = spawn(process.execPath, ['--import', 'tsx', 'bench/load-generator.ts', JSON.stringify(job)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(proc);
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const code = await new Promise<number | null>((r) => proc.once('exit', r));
  children.delete(proc);
  if (code !== 0) throw new Error(`load generator exited with ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as LoadResult;
}

let runs = 0;
/** Closed-loop load (saturation with `connections`), from the run's generator in its own process. */
async function load(url: string, template: { event: string; data: unknown }, opts: { amount?: number; duration?: number; connections: number; headers?: Record<string, string>; callKeys?: number }): Promise<LoadResult> {
  return runGenerator({
    mode: 'closed', url, template, connections: opts.connections, amount: opts.amount, duration: opts.duration, callKeys: opts.callKeys,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}`, ...opts.headers }, idPrefix: `evt_b_${process.pid}${runs++}`,
  });
}

/** Fixed-rate open-loop load for latency, from a generator process (see bench/load-generator.ts). */
async function steadyLoad(url: string, template: { event: string; data: unknown }, rate: number, seconds: number): Promise<LoadResult> {
  return runGenerator({
    mode: 'steady', url, template, connections: 64, rate, seconds,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` }, idPrefix: `evt_b_${process.pid}${runs++}`,
  });
}

// --- scenarios ----------------------------------------------------------------------------
const rows: { scenario: string; figure: string; target: string; met: boolean | null }[] = [];
const figures: Record<string, number> = {};
function record(key: string, scenario: string, value: number, unit: string, target?: { op: '>=' | '<='; value: number }) {
  figures[key] = Math.round(value * 100) / 100;
  const met = target ? (target.op === '>=' ? value >= target.value : value <= target.value) : null;
  rows.push({ scenario, figure: `${figures[key]} ${unit}`, target: target ? `${target.op} ${target.value}` : '', met });
}

/**
 * Each gateway thread's CPU time per event, and what that sets as a ceiling: with a core for each
 * thread (and for the generator and receiver), no thread can serve more events per second than a
 * second divided by its CPU time per event. CPU time, not wall time: the machine's other load
 * does not count (the time a thread waits for a core is not in it), though a busy machine's
 * colder caches make each event cost a little more.
 */
function recordThreadCpu(key: string, label: string, cpu: Record<string, number>) {
  for (const thread of ['http', 'delivery', 'storage']) {
    if (cpu[thread] !== undefined) record(`${key}_cpu_${thread}_us`, `${label}: ${thread} thread CPU per event`, cpu[thread], 'µs');
  }
  const busiest = Math.max(cpu.http ?? 0, cpu.delivery ?? 0);
  if (busiest > 0) record(`${key}_thread_ceiling_per_s`, `${label}: ceiling with a core per thread (1 s / the busiest thread's CPU per event)`, 1e6 / busiest, 'events/s');
}

/** PostgreSQL for the (p) rows: a fresh database per scenario on this server, dropped after. */
const POSTGRES_ADMIN_URL = process.env.SLUICE_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function freshDatabase(label: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `sluice_bench_${label}_${process.pid}_${Date.now().toString(36)}`;
  await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined) };
}

/** Like throughputScenario, on PostgreSQL with `instances` gateways sharing the database; the load is split evenly. */
async function postgresThroughputScenario(rx: Receiver, instances: number, amount: number) {
  const db = await freshDatabase(`p${instances}`);
  const gateways: Gateway[] = [];
  for (let i = 0; i < instances; i++) gateways.push(await startGateway(fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-pg-')), { SLUICE_DATABASE_URL: db.url }));
  await api(gateways[0], 'POST', '/api/v1/webhooks', { url: `${rx.url}/p`, events: ['call.ended'], mapping: SIMPLE_MAPPING });
  await sleep(200); // the other instances hear of the subscription (NOTIFY)
  await Promise.all(gateways.map((gw) => load(`${gw.url}/api/v1/events`, callEnded, { amount: 500, connections: 16 })));
  await rx.waitFor(500 * instances, 30_000);
  rx.reset();
  const t0 = Date.now();
  const results = await Promise.all(gateways.map((gw) => load(`${gw.url}/api/v1/events`, callEnded, { amount: Math.round(amount / instances), connections: Math.round(64 / instances) })));
  const accepted = results.reduce((n, r) => n + r.accepted, 0);
  const t2 = await rx.waitFor(accepted, 120_000);
  const peak = Math.max(...gateways.map((gw) => gw.peakRssMb()));
  for (const gw of gateways) {
    await gw.stop();
    fs.rmSync(gw.dataDir, { recursive: true, force: true });
  }
  await db.drop();
  return { e2eEvents: accepted / ((t2 - t0) / 1000), ingestRate: accepted / Math.max(...results.map((r) => r.seconds)), peak };
}

/** A PostgreSQL backlog drained by one instance, then by two: the rate over each window. */
async function postgresDrainScenario(rx: Receiver, backlog: number, windowMs: number) {
  const db = await freshDatabase('drain');
  const dirs = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-pg-drain-')));
  let gw = await startGateway(dirs[0], { SLUICE_DATABASE_URL: db.url });
  const sub = await api(gw, 'POST', '/api/v1/webhooks', { url: `${rx.url}/pdrain`, events: ['call.ended'], mapping: SIMPLE_MAPPING });
  await gw.stop();
  const storage = new PostgresStorage({ url: db.url, poolSize: 2, instanceId: 'bench-seed' });
  const seedStart = Date.now();
  const now = Date.now();
  for (let done = 0; done < backlog; ) {
    const items: IngestItem[] = [];
    for (let i = 0; i < 10_000 && done < backlog; i++, done++) {
      const id = `evt_b_${seq++}_0`;
      items.push({
        event: { id, event: 'call.ended', timestamp: callEnded.timestamp, data: callEnded.data, received_at: now, idempotency_key: null, test: false },
        deliveries: [{ id: newId('dlv', now), event_id: id, subscription_id: sub.id, event: 'call.ended', msg_id: newId('msg', now), status: 'pending', attempts: 0, chain: 1, next_attempt_at: now, lease_until: null, created_at: now, updated_at: now, last_attempt_at: null, last_status_code: null, last_error: null }],
      });
    }
    await storage.ingest(items);
  }
  await storage.close();
  const seedSeconds = (Date.now() - seedStart) / 1000;
  rx.reset();
  const window = async () => {
    const t0 = Date.now();
    const first = rx.count;
    while (rx.count < backlog && Date.now() < t0 + windowMs) await sleep(20);
    return (rx.count - first) / ((Date.now() - t0) / 1000);
  };
  gw = await startGateway(dirs[0], { SLUICE_DATABASE_URL: db.url });
  while (rx.count === 0) await sleep(2);
  const one = await window();
  const second = await startGateway(dirs[1], { SLUICE_DATABASE_URL: db.url });
  const two = await window();
  const left = backlog - rx.count;
  await gw.stop();
  await second.stop();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  await db.drop();
  return { one, two, seedSeconds, left };
}

async function throughputScenario(rx: Receiver, name: string, subscriptions: Record<string, unknown>[], template: { event: string; data: unknown }, amount: number, env: Record<string, string> = {}, cpus?: string, callKeys?: number, root = ROOT) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `sluice-bench-${name}-`));
  const gw = await startGateway(dataDir, env, cpus, root);
  for (const sub of subscriptions) await api(gw, 'POST', '/api/v1/webhooks', sub);
  // Warm up JIT, pools and caches, then measure.
  await load(`${gw.url}/api/v1/events`, template, { amount: 500, connections: 16, callKeys });
  await rx.waitFor(500 * subscriptions.length, 30_000);
  rx.reset();
  await eventLoopDelay(gw); // starts the window
  const sqliteBefore = await histograms(gw, STORAGE_SERIES);
  const cpuBefore = await threadCpu(gw);
  const canary = startCanary();
  const t0 = Date.now();
  const res = await load(`${gw.url}/api/v1/events`, template, { amount, connections: 64, callKeys });
  const eld = await eventLoopDelay(gw);
  const idle = await canary.stop();
  const sqliteAfter = await histograms(gw, STORAGE_SERIES);
  const sqlite = {
    commitP99: bucketQuantile(sqliteBefore.ingest, sqliteAfter.ingest, 0.99),
    checkpointP99: bucketQuantile(sqliteBefore.checkpoint, sqliteAfter.checkpoint, 0.99),
    finishP99: bucketQuantile(sqliteBefore.finish, sqliteAfter.finish, 0.99),
  };
  const expected = res.accepted * subscriptions.length;
  const t2 = await rx.waitFor(expected, 120_000);
  const seconds = (t2 - t0) / 1000;
  const cpuAfter = await threadCpu(gw);
  // Microseconds of each thread's CPU time per accepted event, from the load's start until the last delivery.
  const cpuPerEvent = Object.fromEntries(Object.entries(cpuAfter).map(([thread, s]) => [thread, ((s - (cpuBefore[thread] ?? 0)) * 1e6) / res.accepted]));
  const peak = gw.peakRssMb();
  const evaluatorsPeak = gw.peakEvaluatorsMb();
  await gw.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return { ingestRate: res.accepted / res.seconds, e2eEvents: res.accepted / seconds, deliveries: rx.count / seconds, delivered: rx.count, expected, peak, evaluatorsPeak, failed: res.non2xx, load: res, eld, idle, sqlite, cpuPerEvent };
}

async function forwarderScenario(rx: Receiver, amount: number, stack: 'express' | 'raw') {
  const port = await freePort();
  const proc = spawn(process.execPath, ['--import', 'tsx', 'bench/forwarder.ts'], { cwd: ROOT, env: { ...process.env, PORT: String(port), FORWARD_TO: `${rx.url}/forward`, FORWARDER_STACK: stack }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(proc);
  await new Promise<void>((resolve) => proc.stdout!.once('data', () => resolve()));
  const url = `http://127.0.0.1:${port}/`;
  await load(url, callEnded, { amount: 500, connections: 16 });
  rx.reset();
  const res = await load(url, callEnded, { amount, connections: 64 });
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  return res.accepted / res.seconds;
}

async function steadyScenario(rx: Receiver) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-steady-'));
  const gw = await startGateway(dataDir);
  await api(gw, 'POST', '/api/v1/webhooks', { url: `${rx.url}/steady`, events: ['call.ended'], mapping: SIMPLE_MAPPING });
  await load(`${gw.url}/api/v1/events`, callEnded, { amount: 500, connections: 16 });
  await rx.waitFor(500, 30_000);
  rx.reset();
  await eventLoopDelay(gw);
  const canary = startCanary();
  const res = await steadyLoad(`${gw.url}/api/v1/events`, callEnded, 1000, Math.max(3, 10 * scale));
  const eld = await eventLoopDelay(gw);
  const idle = await canary.stop();
  await rx.waitFor(res.accepted, 60_000);
  const lat = [...rx.latencies].sort((a, b) => a - b);
  const peak = gw.peakRssMb();
  await gw.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return { ackP50: Math.round(res.ackP50 * 10) / 10, ackP99: Math.round(res.ackP99 * 10) / 10, deliveredP50: percentile(lat, 50), deliveredP99: percentile(lat, 99), rate: res.accepted / res.seconds, peak, eld, idle };
}

/** Writes `count` pending deliveries straight into a stopped gateway's database. */
async function seedBacklog(dataDir: string, subscriptionId: string, count: number): Promise<void> {
  const storage = new SqliteStorage(path.join(dataDir, 'sluice.db'));
  await storage.migrate();
  storage.db.pragma('synchronous = OFF');
  const now = Date.now();
  const perEvent = 1;
  for (let done = 0; done < count; ) {
    const items: IngestItem[] = [];
    for (let i = 0; i < 20_000 && done < count; i++, done += perEvent) {
      const id = `evt_b_${seq++}_0`;
      const delivery: DeliveryRecord = {
        id: newId('dlv', now),
        event_id: id,
        subscription_id: subscriptionId,
        event: 'call.ended',
        msg_id: newId('msg', now),
        status: 'pending',
        attempts: 0,
        chain: 1,
        next_attempt_at: now,
        lease_until: null,
        created_at: now,
        updated_at: now,
        last_attempt_at: null,
        last_status_code: null,
        last_error: null,
      };
      items.push({ event: { id, event: 'call.ended', timestamp: callEnded.timestamp, data: callEnded.data, received_at: now, idempotency_key: null, test: false }, deliveries: [delivery] });
    }
    await storage.ingest(items);
  }
  await storage.close();
}

async function drainScenario(rx: Receiver, backlog: number, windowMs: number) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-drain-'));
  let gw = await startGateway(dataDir);
  const sub = await api(gw, 'POST', '/api/v1/webhooks', { url: `${rx.url}/drain`, events: ['call.ended'], mapping: SIMPLE_MAPPING });
  await gw.stop();
  const seedStart = Date.now();
  await seedBacklog(dataDir, sub.id, backlog);
  const seedSeconds = (Date.now() - seedStart) / 1000;
  rx.reset();
  gw = await startGateway(dataDir);
  // The rate is timed from the first delivery, so start-up time does not favour either size.
  while (rx.count === 0) await sleep(2);
  const t0 = Date.now();
  const first = rx.count;
  const deadline = t0 + windowMs;
  while (rx.count < backlog && Date.now() < deadline) await sleep(20);
  const seconds = (Date.now() - t0) / 1000;
  const delivered = rx.count - first;
  const peak = gw.peakRssMb();
  await gw.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return { rate: delivered / seconds, delivered, seconds, seedSeconds, peak };
}

/** Writes `count` delivered deliveries (one attempt each, with bodies) that finished `ageMs` ago. */
async function seedFinished(dataDir: string, subscriptionId: string, count: number, ageMs: number): Promise<void> {
  const storage = new SqliteStorage(path.join(dataDir, 'sluice.db'));
  await storage.migrate();
  storage.db.pragma('synchronous = OFF');
  const at = Date.now() - ageMs;
  const body = JSON.stringify(callEnded.data);
  const attempt = storage.db.prepare(`INSERT INTO attempts (id, delivery_id, chain, number, started_at, outcome, method, url, request_headers, request_body, response_status, response_headers, response_body, latency_ms, error, steps)
    VALUES (?, ?, 1, 1, ?, 'success', 'POST', 'http://127.0.0.1/x', '{}', ?, 200, '{}', 'ok', 1, NULL, NULL)`);
  for (let done = 0; done < count; ) {
    const items: IngestItem[] = [];
    for (let i = 0; i < 20_000 && done < count; i++, done++) {
      const id = `evt_old_${seq++}`;
      const delivery: DeliveryRecord = {
        id: newId('dlv', at), event_id: id, subscription_id: subscriptionId, event: 'call.ended', msg_id: newId('msg', at), status: 'delivered',
        attempts: 1, chain: 1, next_attempt_at: at, lease_until: null, created_at: at, updated_at: at, last_attempt_at: at, last_status_code: 200, last_error: null,
      };
      items.push({ event: { id, event: 'call.ended', timestamp: callEnded.timestamp, data: callEnded.data, received_at: at, idempotency_key: null, test: false }, deliveries: [delivery] });
    }
    await storage.ingest(items);
    storage.db.transaction(() => {
      for (const item of items) attempt.run(newId('att', at), item.deliveries[0].id, at, body);
    })();
  }
  await storage.close();
}

async function metric(gw: Gateway, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const m = pattern.exec(text);
  return m ? Number(m[1]) : 0;
}
/**
 * perf_hooks.monitorEventLoopDelay's sampling interval, in the gateway (prom-client's default)
 * and in the canary. The histogram records the time between two of its timer's turns, interval
 * included: an idle process reads about 10.1 ms at a 10 ms resolution and 1.1 ms at 1 ms. The
 * delay, how late a timer due then ran, is the reading less the interval.
 */
const ELD_SAMPLING_MS = 10;
const lateness = (readingMs: number) => Math.max(0, readingMs - ELD_SAMPLING_MS);

/**
 * The gateway's event-loop delay (prom-client's default metrics, sampled every 10 ms) since the
 * previous scrape, as lateness beyond the sampling interval: each scrape resets the histogram,
 * so one before a load and one after give the figures of that load alone.
 */
async function eventLoopDelay(gw: Gateway): Promise<{ p99: number; max: number }> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const read = (name: string) => lateness(Number(new RegExp(`^sluice_nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000);
  return { p99: read('p99'), max: read('max') };
}
/** CPU seconds each gateway thread has used (sluice_thread_cpu_seconds), by thread. */
async function threadCpu(gw: Gateway): Promise<Record<string, number>> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  return Object.fromEntries([...text.matchAll(/^sluice_thread_cpu_seconds\{thread="([^"]+)"\} (\S+)$/gm)].map((m) => [m[1], Number(m[2])]));
}

/** Cumulative bucket counts of one Prometheus histogram series (`le` -> count). */
type Buckets = Map<number, number>;
async function histograms(gw: Gateway, series: Record<string, [string, string]>): Promise<Record<string, Buckets>> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const out: Record<string, Buckets> = {};
  for (const [key, [prefix, label]] of Object.entries(series)) {
    const buckets: Buckets = new Map();
    for (const line of text.split('\n')) {
      if (!line.startsWith(prefix) || !line.includes(label)) continue;
      const m = /le="([^"]+)"[^}]*\} (\S+)$/.exec(line);
      if (m && m[1] !== '+Inf') buckets.set(Number(m[1]), Number(m[2]));
      else if (m) buckets.set(Infinity, Number(m[2]));
    }
    out[key] = buckets;
  }
  return out;
}

/** The upper bound of the bucket holding quantile `q` of what was observed between two scrapes. */
function bucketQuantile(before: Buckets, after: Buckets, q: number): { bound: number; count: number } {
  const les = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  for (const le of les) if ((after.get(le) ?? 0) - (before.get(le) ?? 0) >= q * total) return { bound: le, count: total };
  return { bound: NaN, count: total };
}

/** SQLite work the gateway reports: ingest commits (in its storage thread) and checkpoints. */
const STORAGE_SERIES = {
  ingest: ['sluice_storage_call_seconds_bucket{', 'method="ingest"'],
  checkpoint: ['sluice_sqlite_checkpoint_seconds_bucket{', 'by="checkpointer"'],
  finish: ['sluice_sqlite_checkpoint_seconds_bucket{', 'by="storage"'],
} satisfies Record<string, [string, string]>;

/**
 * An idle Node process measuring its own event-loop delay the same way during a load: what the
 * machine's scheduling alone adds (a shared or busy machine delays every process), so the
 * gateway's figure can be read against it.
 */
const CANARY = `const h = require('node:perf_hooks').monitorEventLoopDelay({ resolution: ${ELD_SAMPLING_MS} }); h.enable();
process.stdin.on('data', () => { process.stdout.write(JSON.stringify({ p99: h.percentile(99) / 1e6, max: h.max / 1e6 }) + '\\n'); process.exit(0); });`;
function startCanary(): { stop(): Promise<{ p99: number; max: number }> } {
  const proc = spawn(process.execPath, ['-e', CANARY], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(proc);
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  return {
    async stop() {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.stdin!.write('report\n');
      await exited;
      children.delete(proc);
      const reading = JSON.parse(out) as { p99: number; max: number };
      return { p99: lateness(reading.p99), max: lateness(reading.max) };
    },
  };
}
const PRUNED_DELIVERIES = /sluice_pruned_rows_total\{table="deliveries"\} (\d+)/;

/**
 * (g) Ingest p99 at a steady rate, on the same database holding a large prunable backlog: once with
 * a retention that keeps it all, once while the pruner deletes it (it must still be pruning when
 * the window ends, else the comparison is void).
 */
async function pruneLatencyScenario(rx: Receiver, backlog: number, rate: number, seconds: number) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-prune-'));
  let gw = await startGateway(dataDir);
  const sub = await api(gw, 'POST', '/api/v1/webhooks', { url: `${rx.url}/prune`, events: ['call.ended'], mapping: SIMPLE_MAPPING });
  await gw.stop();
  await seedFinished(dataDir, sub.id, backlog, 2 * 86_400_000);
  gw = await startGateway(dataDir, { SLUICE_RETENTION: '30d', SLUICE_PRUNE_INTERVAL: '1s' });
  await load(`${gw.url}/api/v1/events`, callEnded, { amount: 500, connections: 16 });
  // SQLite time of ingest commits (fsync included) and prune batches, in the storage thread.
  const series = { ingest: STORAGE_SERIES.ingest, prune: ['sluice_storage_call_seconds_bucket{', 'method="pruneDeliveries"'] } satisfies Record<string, [string, string]>;
  let before = await histograms(gw, series);
  const without = await steadyLoad(`${gw.url}/api/v1/events`, callEnded, rate, seconds);
  let after = await histograms(gw, series);
  const commitWithout = bucketQuantile(before.ingest, after.ingest, 0.99);
  await gw.stop();
  gw = await startGateway(dataDir, { SLUICE_RETENTION: '1d', SLUICE_PRUNE_INTERVAL: '1s' });
  await load(`${gw.url}/api/v1/events`, callEnded, { amount: 500, connections: 16 });
  while ((await metric(gw, PRUNED_DELIVERIES)) === 0) await sleep(20);
  const prunedBefore = await metric(gw, PRUNED_DELIVERIES);
  before = await histograms(gw, series);
  const during = await steadyLoad(`${gw.url}/api/v1/events`, callEnded, rate, seconds);
  after = await histograms(gw, series);
  const commitDuring = bucketQuantile(before.ingest, after.ingest, 0.99);
  const pruneBatch = bucketQuantile(before.prune, after.prune, 0.99);
  const prunedAfter = await metric(gw, PRUNED_DELIVERIES);
  await gw.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return { without: without.ackP99, during: during.ackP99, commitWithout, commitDuring, pruneBatch, prunedDuring: prunedAfter - prunedBefore, stillPruning: prunedAfter < backlog, failed: without.non2xx + during.non2xx };
}

/** (h) A steady load with a 5-second retention: database size after N seconds and after 2N. */
async function levellingScenario(rx: Receiver, rate: number, seconds: number) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-level-'));
  const gw = await startGateway(dataDir, { SLUICE_RETENTION: '5s', SLUICE_DEAD_LETTER_RETENTION: '5s', SLUICE_PRUNE_INTERVAL: '1s' });
  await api(gw, 'POST', '/api/v1/webhooks', { url: `${rx.url}/level`, events: ['call.ended'], mapping: SIMPLE_MAPPING });
  const size = async () => {
    const files = ['sluice.db', 'sluice.db-wal'].map((f) => path.join(dataDir, f)).filter((f) => fs.existsSync(f));
    return { pages: await metric(gw, /sluice_database_bytes (\d+)/), files: files.reduce((n, f) => n + fs.statSync(f).size, 0) };
  };
  await steadyLoad(`${gw.url}/api/v1/events`, callEnded, rate, seconds);
  const atN = await size();
  await steadyLoad(`${gw.url}/api/v1/events`, callEnded, rate, seconds);
  const at2N = await size();
  await gw.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return { atN, at2N };
}

async function main(): Promise<void> {
  const rx = new Receiver();
  await rx.start();
  const log = (line: string) => process.stderr.write(line + '\n');
  log(`Sluice benchmark on ${os.cpus().length} CPU(s), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}${quick ? ' (quick)' : ''}; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  log(`load generator: ${generator === 'wrk' ? 'wrk' : 'autocannon'} in a child process for closed-loop rows, an open-loop undici child process for fixed-rate rows`);

  const peaks: number[] = [];
  let seedNote = '';
  if (want('a')) {
    log('(a) ingest -> delivered, simple mapping, 1 subscription');
    const amount = Math.round(30_000 * scale);
    const a = await throughputScenario(rx, 'a', [{ url: `${rx.url}/a`, events: ['call.ended'], mapping: SIMPLE_MAPPING }], callEnded, amount);
    log('    bare forwarder baselines, same load');
    const forwarder = await forwarderScenario(rx, amount, 'express');
    const rawForwarder = await forwarderScenario(rx, amount, 'raw');
    peaks.push(a.peak);
    record('a_events_per_s', '(a) end to end, simple mapping', a.e2eEvents, 'events/s', { op: '>=', value: 3000 });
    record('a_ingest_per_s', '(a) ingest (202) rate', a.ingestRate, 'events/s');
    record('a_ack_p50_ms', '(a) ingest ack p50, 64 connections', a.load.ackP50, 'ms');
    record('a_ack_p99_ms', '(a) ingest ack p99, 64 connections', a.load.ackP99, 'ms', { op: '<=', value: 50 });
    record('a_ack_max_ms', '(a) ingest ack max, 64 connections', a.load.ackMax, 'ms');
    record('a_eld_p99_ms', '(a) gateway event-loop delay p99 under saturation (beyond its 10 ms sampling)', a.eld.p99, 'ms', { op: '<=', value: 10 });
    record('a_eld_max_ms', '(a) gateway event-loop delay max under saturation', a.eld.max, 'ms');
    record('a_idle_eld_p99_ms', '(a) same, an idle process beside it (machine noise)', a.idle.p99, 'ms');
    // These ran on the HTTP event loop before the storage thread; now they cannot delay it.
    record('a_commit_p99_ms', `(a) ingest commit p99, storage thread (≤ bucket; ${a.sqlite.commitP99.count} commits)`, a.sqlite.commitP99.bound * 1000, 'ms');
    record('a_checkpoint_p99_ms', `(a) checkpoint p99, checkpointer thread (≤ bucket; ${a.sqlite.checkpointP99.count})`, a.sqlite.checkpointP99.bound * 1000, 'ms');
    record('a_finish_p99_ms', `(a) checkpoint finished by the writer, p99 (≤ bucket; ${a.sqlite.finishP99.count})`, a.sqlite.finishP99.bound * 1000, 'ms');
    recordThreadCpu('a', '(a)', a.cpuPerEvent);
    record('forwarder_per_s', 'bare forwarder, express.json (same run)', forwarder, 'events/s');
    record('raw_forwarder_per_s', 'bare forwarder, node:http (reference)', rawForwarder, 'events/s');
    record('a_ratio_to_forwarder', '(a) as a share of the forwarder', a.e2eEvents / forwarder, '×', { op: '>=', value: 0.55 });
  }
  if (baselineRoot) {
    const commitOf = (dir: string) => {
      try {
        const head = fs.readFileSync(path.join(dir, '.git'), 'utf8').trim();
        return head.startsWith('gitdir:') ? fs.readFileSync(path.resolve(dir, head.slice(7).trim(), 'HEAD'), 'utf8').trim().slice(0, 7) : head.slice(0, 7);
      } catch {
        return path.basename(dir);
      }
    };
    const label = commitOf(path.resolve(baselineRoot));
    log(`(a/base) (a) alternated with the gateway of ${baselineRoot} (${label}), ${baselinePairs} pairs`);
    const amount = Math.round(30_000 * scale);
    const sub = [{ url: `${rx.url}/ab`, events: ['call.ended'], mapping: SIMPLE_MAPPING }];
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let i = 0; i < baselinePairs; i++) {
      // Alternate which goes first, so a drift in machine load does not favour one side.
      const order = i % 2 ? ['ours', 'theirs'] : ['theirs', 'ours'];
      for (const side of order) {
        const r = await throughputScenario(rx, `ab-${side}`, sub, callEnded, amount, {}, undefined, undefined, side === 'ours' ? ROOT : path.resolve(baselineRoot));
        (side === 'ours' ? ours : theirs).push(r.e2eEvents);
        log(`    ${side === 'ours' ? 'this checkout' : label}: ${Math.round(r.e2eEvents)} events/s, peak RSS ${Math.round(r.peak)} MB, CPU per event ${Object.entries(r.cpuPerEvent).map(([t, us]) => `${t} ${Math.round(us)} µs`).join(', ')} (load ${os.loadavg()[0].toFixed(2)})`);
      }
    }
    const median = (xs: number[]) => {
      const sorted = [...xs].sort((x, y) => x - y);
      const mid = Math.floor(sorted.length / 2);
      return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    };
    record('base_events_per_s', `(a/base) end to end, ${label}, median of ${baselinePairs}`, median(theirs), 'events/s');
    record('base_ours_events_per_s', `(a/base) end to end, this checkout, median of ${baselinePairs}`, median(ours), 'events/s');
    record('base_ratio', `(a/base) this checkout / ${label}`, median(ours) / median(theirs), '×', { op: '>=', value: 0.9 });
  }
  if (want('o')) {
    log('(o) ingest -> delivered, simple mapping, 1 subscription ordered by data.call.id over 100 calls');
    // Event n is about call n mod 100: consecutive events spread over 100 keys.
    const ordering = { key: 'data.call.id' };
    const o = await throughputScenario(rx, 'o', [{ url: `${rx.url}/o`, events: ['call.ended'], mapping: SIMPLE_MAPPING, ordering }], callEnded, Math.round(30_000 * scale), {}, undefined, 100);
    peaks.push(o.peak);
    record('o_events_per_s', '(o) end to end, ordered by 100 keys', o.e2eEvents, 'events/s');
    record('o_ingest_per_s', '(o) ingest (202) rate', o.ingestRate, 'events/s');
    if (figures.a_events_per_s) record('o_ratio_to_a', '(o) ordered / unordered (a)', o.e2eEvents / figures.a_events_per_s, '×');
  }
  if (want('k')) {
    log('(k) core split: (a) with the gateway on 1 core, then on 2 (taskset; generator and receiver unpinned), with delivery on its own thread (the default) and on the HTTP thread');
    const amount = Math.round(20_000 * scale);
    const sub = [{ url: `${rx.url}/k`, events: ['call.ended'], mapping: SIMPLE_MAPPING }];
    const inline = { SLUICE_DELIVERY_THREAD: 'false' };
    // Interleaved, so a drift in machine load does not favour one layout.
    const one = await throughputScenario(rx, 'k1', sub, callEnded, amount, {}, '0');
    const oneInline = await throughputScenario(rx, 'k1-inline', sub, callEnded, amount, inline, '0');
    const twoInline = await throughputScenario(rx, 'k2-inline', sub, callEnded, amount, inline, '0,1');
    const two = await throughputScenario(rx, 'k2', sub, callEnded, amount, {}, '0,1');
    record('k1_events_per_s', '(k) end to end, gateway on 1 core', one.e2eEvents, 'events/s');
    record('k1_ack_p99_ms', '(k) ingest ack p99, gateway on 1 core', one.load.ackP99, 'ms');
    record('k2_events_per_s', '(k) end to end, gateway on 2 cores', two.e2eEvents, 'events/s');
    record('k2_ack_p99_ms', '(k) ingest ack p99, gateway on 2 cores', two.load.ackP99, 'ms');
    record('k2_eld_p99_ms', '(k) HTTP thread event-loop delay p99, gateway on 2 cores', two.eld.p99, 'ms');
    record('k_ratio', '(k) 2 cores / 1 core', two.e2eEvents / one.e2eEvents, '×');
    record('k1_inline_events_per_s', '(k) same on 1 core, delivery on the HTTP thread', oneInline.e2eEvents, 'events/s');
    record('k2_inline_events_per_s', '(k) same on 2 cores, delivery on the HTTP thread', twoInline.e2eEvents, 'events/s');
    record('k2_inline_ack_p99_ms', '(k) ingest ack p99 on 2 cores, delivery on the HTTP thread', twoInline.load.ackP99, 'ms');
    record('k2_inline_eld_p99_ms', '(k) HTTP thread event-loop delay p99 on 2 cores, delivery on it', twoInline.eld.p99, 'ms');
    record('k_inline_ratio', '(k) 2 cores / 1 core, delivery on the HTTP thread', twoInline.e2eEvents / oneInline.e2eEvents, '×');
    record('k_thread_gain', '(k) on 2 cores: delivery thread / delivery on the HTTP thread', two.e2eEvents / twoInline.e2eEvents, '×');
    record('k2_peak_rss_mb', '(k) gateway peak RSS on 2 cores, delivery thread', two.peak, 'MB');
    record('k2_inline_peak_rss_mb', '(k) gateway peak RSS on 2 cores, delivery on the HTTP thread', twoInline.peak, 'MB');
    recordThreadCpu('k2', '(k) 2 cores', two.cpuPerEvent);
    recordThreadCpu('k2_inline', '(k) 2 cores, delivery on the HTTP thread', twoInline.cpuPerEvent);
  }
  if (want('p')) {
    const reachable = await withAdmin(async () => true).catch((err: Error) => {
      log(`(p) PostgreSQL rows skipped: ${POSTGRES_ADMIN_URL} is not reachable (${err.message}); set SLUICE_BENCH_POSTGRES_URL`);
      return false;
    });
    if (reachable) {
      log('(p) PostgreSQL: end to end with one and two instances, simple mapping, 1 subscription');
      const amount = Math.round(30_000 * scale);
      const one = await postgresThroughputScenario(rx, 1, amount);
      const two = await postgresThroughputScenario(rx, 2, amount);
      record('p1_events_per_s', '(p) PostgreSQL end to end, 1 instance', one.e2eEvents, 'events/s');
      if (figures.a_events_per_s) record('p1_ratio_to_sqlite', '(p) 1 instance / SQLite (a)', one.e2eEvents / figures.a_events_per_s, '×', { op: '>=', value: 0.6 });
      record('p2_events_per_s', '(p) PostgreSQL end to end, 2 instances', two.e2eEvents, 'events/s');
      record('p2_ratio_to_p1', '(p) 2 instances / 1 instance', two.e2eEvents / one.e2eEvents, '×');
      record('p_peak_rss_mb', '(p) peak RSS of a PostgreSQL instance', Math.max(one.peak, two.peak), 'MB');
      log('(p) PostgreSQL backlog drain: one instance, then two');
      const drain = await postgresDrainScenario(rx, Math.round(200_000 * scale), Math.max(4_000, 15_000 * scale));
      record('p_drain_1_per_s', '(p) PostgreSQL drain rate, 1 instance', drain.one, 'deliveries/s');
      record('p_drain_2_per_s', '(p) PostgreSQL drain rate, 2 instances', drain.two, 'deliveries/s');
      seedNote += `${seedNote ? '\n' : ''}PostgreSQL backlog seeding: ${Math.round(drain.seedSeconds)} s for ${Math.round(200_000 * scale)} deliveries (not part of the drain rate)`;
    }
  }
  if (want('b')) {
    log('(b) ingest -> delivered, Slack connector default template');
    const slackSub = [{ events: ['signal.frustration_spike'], connector: 'slack', connector_options: { webhook_url: `${rx.url}/slack` }, rate_limit: null }];
    const b = await throughputScenario(rx, 'b', slackSub, frustration, Math.round(15_000 * scale));
    peaks.push(b.peak);
    record('b_events_per_s', '(b) end to end, Slack template', b.e2eEvents, 'events/s', { op: '>=', value: 1500 });
    record('b_evaluators_peak_rss_mb', '(b) evaluator processes peak RSS (summed)', b.evaluatorsPeak, 'MB');
    log('    again with SLUICE_TEMPLATE_THREADS=1');
    const bt = await throughputScenario(rx, 'b-threads', slackSub, frustration, Math.round(15_000 * scale), { SLUICE_TEMPLATE_THREADS: '1' });
    record('b_threads_events_per_s', '(b) same, 1 evaluator process', bt.e2eEvents, 'events/s', { op: '>=', value: 1500 });
  }
  if (want('c')) {
    log('(c) fan-out: 1 event -> 10 subscriptions');
    const subs = Array.from({ length: 10 }, (_, i) => ({ url: `${rx.url}/c${i}`, events: ['call.ended'], mapping: SIMPLE_MAPPING }));
    const c = await throughputScenario(rx, 'c', subs, callEnded, Math.round(10_000 * scale));
    peaks.push(c.peak);
    record('c_deliveries_per_s', '(c) fan-out deliveries', c.deliveries, 'deliveries/s', { op: '>=', value: 10_000 });
  }
  if (want('d')) {
    log('(d) steady 1,000 events/s');
    const d = await steadyScenario(rx);
    peaks.push(d.peak);
    record('d_ack_p50_ms', '(d) ingest ack p50', d.ackP50, 'ms');
    record('d_eld_p99_ms', '(d) gateway event-loop delay p99 at 1,000/s', d.eld.p99, 'ms');
    record('d_idle_eld_p99_ms', '(d) same, an idle process beside it (machine noise)', d.idle.p99, 'ms');
    record('d_ack_p99_ms', '(d) ingest ack p99', d.ackP99, 'ms', { op: '<=', value: 20 });
    record('d_delivered_p50_ms', '(d) accepted -> delivered p50', d.deliveredP50, 'ms');
    record('d_delivered_p99_ms', '(d) accepted -> delivered p99', d.deliveredP99, 'ms', { op: '<=', value: 100 });
  }
  if (want('e')) {
    log('(e) backlog drain: 1,000,000 vs 10,000 pending deliveries');
    const small = await drainScenario(rx, Math.round(10_000 * scale), 60_000);
    const big = await drainScenario(rx, Math.round(1_000_000 * scale), Math.max(5_000, 20_000 * scale));
    peaks.push(small.peak, big.peak);
    seedNote += `${seedNote ? '\n' : ''}backlog seeding: ${Math.round(big.seedSeconds)} s for ${Math.round(1_000_000 * scale)} deliveries (not part of the drain rate)`;
    record('e_small_per_s', '(e) drain rate, 10k backlog', small.rate, 'deliveries/s');
    record('e_big_per_s', '(e) drain rate, 1M backlog (first 20 s)', big.rate, 'deliveries/s');
    record('e_ratio', '(e) 1M-backlog rate / 10k-backlog rate', big.rate / small.rate, '×', { op: '>=', value: 0.8 });
  }
  if (want('g')) {
    log('(g) ingest p99 at 500 events/s, with and without a large prune running');
    const g = await pruneLatencyScenario(rx, Math.round(400_000 * scale), 500, Math.max(4, 10 * scale));
    record('g_ack_p99_without_ms', '(g) ingest ack p99, nothing to prune', g.without, 'ms');
    record('g_ack_p99_pruning_ms', '(g) ingest ack p99, while pruning', g.during, 'ms');
    record('g_p99_ratio', '(g) p99 while pruning / without', g.during / g.without, '×', { op: '<=', value: 1.2 });
    record('g_commit_p99_without_ms', `(g) ingest commit p99 in the storage thread, nothing to prune (≤ bucket; ${g.commitWithout.count})`, g.commitWithout.bound * 1000, 'ms');
    record('g_commit_p99_pruning_ms', `(g) ingest commit p99 in the storage thread, while pruning (≤ bucket; ${g.commitDuring.count})`, g.commitDuring.bound * 1000, 'ms');
    record('g_prune_batch_p99_ms', `(g) prune batch p99 in the storage thread (≤ bucket; ${g.pruneBatch.count} batches)`, g.pruneBatch.bound * 1000, 'ms');
    record('g_pruned_during', '(g) deliveries pruned in the window', g.prunedDuring, g.stillPruning ? 'rows (still pruning at the end)' : 'rows (prune ENDED inside the window)');
  }
  if (want('h')) {
    const seconds = Math.max(10, 30 * scale);
    log(`(h) database size under 300 events/s with a 5 s retention: after ${seconds} s and ${2 * seconds} s`);
    const h = await levellingScenario(rx, 300, seconds);
    record('h_db_mb_n', `(h) database after ${seconds} s`, h.atN.pages / 1e6, 'MB');
    record('h_db_mb_2n', `(h) database after ${2 * seconds} s`, h.at2N.pages / 1e6, 'MB');
    record('h_db_ratio', '(h) size at 2N / size at N', h.at2N.pages / h.atN.pages, '×', { op: '<=', value: 1.1 });
    record('h_files_mb_2n', `(h) .db + -wal files after ${2 * seconds} s`, h.at2N.files / 1e6, 'MB');
  }
  if (peaks.length) record('f_peak_rss_mb', '(f) gateway peak RSS', Math.max(...peaks), 'MB', { op: '<=', value: 200 });

  const width = Math.max(...rows.map((r) => r.scenario.length));
  process.stdout.write(`\ngenerator: ${generator}; load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  process.stdout.write(`\n${'scenario'.padEnd(width)}  ${'figure'.padStart(22)}  ${'target'.padEnd(9)}  met\n`);
  for (const r of rows) process.stdout.write(`${r.scenario.padEnd(width)}  ${r.figure.padStart(22)}  ${r.target.padEnd(9)}  ${r.met === null ? '' : r.met ? 'yes' : 'NO'}\n`);
  if (seedNote) process.stdout.write(`\n${seedNote}\n`);
  process.stdout.write(JSON.stringify({ bench: 'sluice', quick, cpus: os.cpus().length, node: process.version, generator, loadavg_end: os.loadavg()[0], ...figures }) + '\n');
  rx.server.close();
  rx.server.closeAllConnections();
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
