/**
 * The benchmark's load generator, run as its own process so that it never shares an event loop
 * with the gateway, the forwarder or the benchmark's receiver. One JSON job on argv[2], one JSON
 * result line on stdout:
 *   closed: autocannon, `connections` connections each sending its next request when the last
 *           one was answered (saturation), for `amount` requests or `duration` seconds;
 *   steady: open loop at a fixed `rate` for `seconds`, each request stamped when it is actually
 *           sent (autocannon may build a request well before its rate limiter lets it go).
 * Every request carries a unique event id that ends with its send time, for the receiver's
 * accepted -> delivered latency.
 */
import autocannon from 'autocannon';
import { Pool } from 'undici';

export interface LoadJob {
  mode: 'closed' | 'steady';
  url: string;
  headers: Record<string, string>;
  template: { event: string; data: unknown };
  connections: number;
  amount?: number;
  duration?: number;
  rate?: number;
  seconds?: number;
  /** Prefix of the event ids, unique per run (the gateway refuses a repeated id with new content). */
  idPrefix: string;
  /** When set, request n is about call `call_<n mod callKeys>` (data.call.id): events spread over that many keys. */
  callKeys?: number;
}

/** The event data of request `n` (see LoadJob.callKeys). */
export function dataFor(job: LoadJob, n: number, callId?: string): unknown {
  if (!job.callKeys) return job.template.data;
  const data = job.template.data as { call?: Record<string, unknown> };
  return { ...data, call: { ...data.call, id: callId ?? `call_${n % job.callKeys}` } };
}

export interface LoadResult {
  generator: string;
  accepted: number;
  non2xx: number;
  seconds: number;
  ackP50: number;
  ackP99: number;
  ackMax: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

let seq = 0;
const eventBody = (job: LoadJob) => {
  const n = seq++;
  return JSON.stringify({ event: job.template.event, id: `${job.idPrefix}_${n}_${Date.now()}`, data: dataFor(job, n) });
};

async function closed(job: LoadJob): Promise<LoadResult> {
  const started = Date.now();
  let lastResponse = started;
  // autocannon reports on its 1-second tick; time the run by its last response instead.
  const result: any = await new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: job.url,
        connections: job.connections,
        ...(job.amount !== undefined ? { amount: job.amount } : {}),
        ...(job.duration !== undefined ? { duration: job.duration } : {}),
        requests: [{ method: 'POST', headers: job.headers, setupRequest: (req: any) => ({ ...req, body: eventBody(job) }) }],
      },
      (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', () => {
      lastResponse = Date.now();
    });
  });
  return {
    generator: 'autocannon (child process)',
    accepted: result['2xx'],
    non2xx: result.non2xx + result.errors + result.timeouts,
    seconds: (lastResponse - started) / 1000,
    ackP50: result.latency.p50,
    ackP99: result.latency.p99,
    ackMax: result.latency.max,
  };
}

async function steady(job: LoadJob): Promise<LoadResult> {
  const target = new URL(job.url);
  const pool = new Pool(target.origin, { connections: job.connections, pipelining: 1 });
  const rate = job.rate!;
  const acks: number[] = [];
  let accepted = 0;
  let failed = 0;
  const inflight: Promise<void>[] = [];
  const total = Math.round(rate * job.seconds!);
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait >= 1) await sleep(wait);
    const t = performance.now();
    inflight.push(
      pool.request({ path: target.pathname, method: 'POST', headers: job.headers, body: eventBody(job) }).then(
        async (res) => {
          await res.body.dump();
          acks.push(performance.now() - t);
          if (res.statusCode < 300) accepted++;
          else failed++;
        },
        () => {
          failed++;
        },
      ),
    );
  }
  await Promise.all(inflight);
  const seconds = (performance.now() - start) / 1000;
  await pool.close();
  acks.sort((a, b) => a - b);
  return { generator: 'open loop, undici (child process)', accepted, non2xx: failed, seconds, ackP50: percentile(acks, 50), ackP99: percentile(acks, 99), ackMax: acks.at(-1) ?? NaN };
}

// Run as a program (the bench spawns it with the job as its argument); imported, it only lends dataFor.
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/bench\//, '/bench/'))) {
  const job = JSON.parse(process.argv[2]) as LoadJob;
  const result = await (job.mode === 'closed' ? closed(job) : steady(job));
  process.stdout.write(JSON.stringify(result) + '\n');
}
