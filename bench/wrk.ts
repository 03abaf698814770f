/**
 * wrk (the Debian package) as the benchmark's closed-loop generator when it is installed: a C
 * program on its own process, lighter than autocannon, so more of the machine is left to what is
 * measured. A Lua script gives every request a unique event id and stops after `amount` requests;
 * each thread says when it stopped (wrk sleeps its whole -d otherwise, until SIGINT); its done() hook prints one JSON line with the counts and the latency percentiles.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dataFor, type LoadJob, type LoadResult } from './load-generator.ts';

const THREADS = 2;

export function wrkAvailable(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // wrk --version exits 1 after printing its version; only a missing binary is ENOENT.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** A Lua long string that cannot be closed early by the text it holds. */
const luaString = (text: string) => `[==[${text}]==]`;

function script(job: LoadJob, perThread: number | null): string {
  // With callKeys, the body is cut where the call id goes and the Lua side puts call_<n mod keys> there.
  const MARK = '\u0001CALL\u0001';
  const [before, after = ''] = (JSON.stringify({ event: job.template.event, data: dataFor(job, 0, MARK) }).slice(0, -1) + ',"id":"').split(JSON.stringify(MARK).slice(1, -1));
  const body = job.callKeys ? `${luaString(before)} .. "call_" .. (counter % ${job.callKeys}) .. ${luaString(after)}` : luaString(before);
  return `
local counter = 0
local done_here = 0
local limit = ${perThread ?? 'nil'}
local thread_no = 0
local threads = {}
function setup(thread)
  thread_no = thread_no + 1
  thread:set("tid", thread_no)
  table.insert(threads, thread)
end
function init(args)
  wrk.method = "POST"
${Object.entries(job.headers).map(([k, v]) => `  wrk.headers[ ${luaString(k)} ] = ${luaString(v)}`).join('\n')}
end
function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, ${body} .. ${luaString(job.idPrefix)} .. "w" .. tid .. "_" .. counter .. "_0\\"}")
end
function response(status, headers, body)
  done_here = done_here + 1
  if limit and done_here == limit then
    io.write("stopped\\n")
    io.flush()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,"p50":%f,"p99":%f,"max":%f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`;
}

export async function wrkLoad(job: LoadJob): Promise<LoadResult> {
  const perThread = job.amount !== undefined ? Math.ceil(job.amount / THREADS) : null;
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-wrk-')), 'load.lua');
  fs.writeFileSync(file, script(job, perThread));
  // With an amount, the duration is only a bound: the script stops each thread at its share.
  const seconds = job.duration ?? 300;
  const proc = spawn('wrk', ['-t', String(THREADS), '-c', String(job.connections), '-d', `${seconds}s`, '--timeout', '10s', '-s', file, job.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let errors = '';
  // A script error does not stop wrk (it would send plain GETs for the whole duration): stop it here.
  proc.stderr.on('data', (c: Buffer) => {
    errors += c.toString('utf8');
    proc.kill('SIGKILL');
  });
  let out = '';
  // wrk sleeps for its whole duration even once every thread stopped; SIGINT ends that sleep.
  proc.stdout.on('data', (c: Buffer) => {
    out += c.toString('utf8');
    if (perThread !== null && out.split('stopped\n').length - 1 >= THREADS) proc.kill('SIGINT');
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    proc.once('exit', resolve);
    proc.once('error', reject); // --generator=wrk without wrk installed
  });
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  const line = out.split('\n').find((l) => l.startsWith('{"requests"'));
  if (code !== 0 || !line || errors) throw new Error(`wrk exited with ${code}: ${errors}${out}`);
  const r = JSON.parse(line) as { requests: number; duration_us: number; status_errors: number; socket_errors: number; p50: number; p99: number; max: number };
  return {
    generator: `wrk -t${THREADS} (child process)`,
    accepted: r.requests - r.status_errors,
    non2xx: r.status_errors + r.socket_errors,
    seconds: r.duration_us / 1e6,
    ackP50: r.p50 / 1000,
    ackP99: r.p99 / 1000,
    ackMax: r.max / 1000,
  };
}
