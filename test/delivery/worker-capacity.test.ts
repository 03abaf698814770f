import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { WorkerCapacity } from '../../src/delivery/worker-capacity.ts';

/** The worker's slot counts, which ingest's preclaim reserves from when the worker runs in another thread. */
describe('WorkerCapacity', () => {
  it('has room for the concurrency minus the working and the reserved; waiting ones hold no slot, up to twice the limit', () => {
    const capacity = new WorkerCapacity(10);
    expect(capacity.reserve(3)).toBe(0); // not running: nothing to reserve
    capacity.running = true;
    expect(capacity.room()).toBe(10);
    capacity.adjustActive(4);
    expect(capacity.room()).toBe(6);
    // Two of the four wait for their destination's slot: they hold no global slot.
    capacity.adjustWaiting(2);
    expect(capacity.room()).toBe(8);
    expect(capacity.reserve(5)).toBe(5);
    expect(capacity.room()).toBe(3);
    expect(capacity.reserve(5)).toBe(3);
    expect(capacity.room()).toBe(0);
    capacity.release(8);
    // Waiting ones are bounded apart, at twice the limit: 19 waiting leave room for 1.
    capacity.adjustActive(17);
    capacity.adjustWaiting(17);
    expect(capacity.waitingForDestination).toBe(19);
    expect(capacity.room()).toBe(1);
  });

  it('never counts a release below zero reserved', () => {
    const capacity = new WorkerCapacity(4);
    capacity.running = true;
    expect(capacity.reserve(1)).toBe(1);
    capacity.release(3);
    expect(capacity.room()).toBe(4);
    expect(capacity.reserve(9)).toBe(4);
  });

  it('is one set of counts for every thread that holds its buffer', async () => {
    const capacity = WorkerCapacity.shared(8);
    capacity.running = true;
    // Another thread takes three slots the way the delivery worker counts its active deliveries.
    const thread = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const cells = new Int32Array(workerData, 0, 4);
       Atomics.add(cells, 0, 3);
       parentPort.postMessage('done');`,
      { eval: true, workerData: capacity.buffer },
    );
    await new Promise((resolve) => thread.once('message', resolve));
    await thread.terminate();
    expect(capacity.active).toBe(3);
    expect(capacity.reserve(8)).toBe(5);
  });
});
