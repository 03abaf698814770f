import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ownThreadId, threadCpuSeconds } from '../src/thread-cpu.ts';

/** CPU time per thread, as /metrics reports it (sluice_thread_cpu_seconds). */
describe('thread CPU time', () => {
  it('tells threads apart and counts the CPU each one used, not the others\'', async () => {
    const main = ownThreadId()!;
    expect(main).toBe(process.pid);
    // Another thread spins for 300 ms of CPU and says who it is.
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
       const until = Date.now() + 300; while (Date.now() < until);
       parentPort.postMessage(tid);
       setTimeout(() => {}, 10_000);`,
      { eval: true },
    );
    const tid = await new Promise<number>((resolve) => worker.once('message', resolve));
    try {
      expect(tid).not.toBe(main);
      const spun = threadCpuSeconds(tid)!;
      expect(spun).toBeGreaterThanOrEqual(0.2);
      const before = threadCpuSeconds(main)!;
      expect(before).toBeGreaterThan(0);
      // This thread idles meanwhile: the other's figure is its own.
      expect(threadCpuSeconds(tid)! - spun).toBeLessThan(0.1);
    } finally {
      await worker.terminate();
    }
    expect(threadCpuSeconds(tid)).toBeUndefined(); // gone with its thread
  });
});
