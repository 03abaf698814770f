import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ownThreadId, threadCpuSeconds } from '../src/thread-cpu.ts';

/** CPU time per thread, as /metrics reports it (sluice_thread_cpu_seconds). */
describe('thread CPU time', () => {
  it('tells threads apart and counts the CPU each one used, not the others\'', async () => {
    const main = ownThreadId()!;
    expect(main).toBe(process.pid);
    // Another thread spins until it has used 300 ms of CPU by its own count (however long a busy
    // machine makes that take), then says who it is.
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       const fs = require('node:fs');
       const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
       const cpu = () => { const s = fs.readFileSync('/proc/thread-self/stat', 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
       while (cpu() < 0.3);
       parentPort.postMessage(tid);
       setTimeout(() => {}, 10_000);`,
      { eval: true },
    );
    const tid = await new Promise<number>((resolve) => worker.once('message', resolve));
    try {
      expect(tid).not.toBe(main);
      const spun = threadCpuSeconds(tid)!;
      expect(spun).toBeGreaterThanOrEqual(0.3);
      expect(threadCpuSeconds(main)!).toBeGreaterThan(0);
      // It stopped spinning: its figure no longer grows, whatever this thread does.
      const until = Date.now() + 200;
      while (Date.now() < until);
      expect(threadCpuSeconds(tid)! - spun).toBeLessThan(0.1);
    } finally {
      await worker.terminate();
    }
    expect(threadCpuSeconds(tid)).toBeUndefined(); // gone with its thread
  });
});
