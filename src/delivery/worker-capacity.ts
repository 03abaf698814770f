/**
 * The delivery worker's slot counts, in a buffer that may be shared with another thread: ingest
 * (on the HTTP thread) reserves slots for the deliveries it commits already leased while the
 * worker runs in the delivery thread. Both sides compute the room with the same formula over
 * the same cells. Between threads the room can be read just before the other side takes part
 * of it: a claim may then exceed the limit by what was reserved meanwhile (one batch at most).
 */
const ACTIVE = 0;
const WAITING = 1;
const RESERVED = 2;
const RUNNING = 3;
const CELLS = 4;

export class WorkerCapacity {
  readonly #cells: Int32Array;
  readonly concurrency: number;

  constructor(concurrency: number, buffer: SharedArrayBuffer | ArrayBuffer = new ArrayBuffer(CELLS * 4)) {
    this.concurrency = concurrency;
    this.#cells = new Int32Array(buffer, 0, CELLS);
  }

  /** A capacity whose cells another thread can see (pass `buffer` to it). */
  static shared(concurrency: number): WorkerCapacity {
    return new WorkerCapacity(concurrency, new SharedArrayBuffer(CELLS * 4));
  }

  get buffer(): SharedArrayBuffer | ArrayBuffer {
    return this.#cells.buffer as SharedArrayBuffer | ArrayBuffer;
  }

  /** Deliveries this worker is processing (including those waiting for their destination's slot). */
  get active(): number {
    return Atomics.load(this.#cells, ACTIVE);
  }

  /** Of the active ones, those waiting for their destination's slot. */
  get waitingForDestination(): number {
    return Atomics.load(this.#cells, WAITING);
  }

  get running(): boolean {
    return Atomics.load(this.#cells, RUNNING) === 1;
  }

  set running(running: boolean) {
    Atomics.store(this.#cells, RUNNING, running ? 1 : 0);
  }

  adjustActive(delta: number): void {
    Atomics.add(this.#cells, ACTIVE, delta);
  }

  adjustWaiting(delta: number): void {
    Atomics.add(this.#cells, WAITING, delta);
  }

  /**
   * How many more deliveries to claim. A delivery waiting for its destination's slot holds no
   * global slot (one slow destination must not fill the pool), so the global limit counts only
   * the others. The waiting ones are bounded apart: a destination with a full queue gets no more
   * claims, so it holds at most one claim batch beyond its queue, and all of them together at
   * most twice the global limit (memory).
   */
  room(): number {
    const waiting = this.waitingForDestination;
    const working = this.active - waiting;
    return Math.min(this.concurrency - working - Atomics.load(this.#cells, RESERVED), 2 * this.concurrency - waiting);
  }

  /** Reserves up to `wanted` slots (none while the worker is stopped); how many it got. */
  reserve(wanted: number): number {
    if (!this.running) return 0;
    const count = Math.max(0, Math.min(wanted, this.room()));
    Atomics.add(this.#cells, RESERVED, count);
    return count;
  }

  release(count: number): void {
    // Never below zero, even if a release overtakes its reservation.
    let current = Atomics.load(this.#cells, RESERVED);
    for (;;) {
      const next = Math.max(0, current - count);
      const seen = Atomics.compareExchange(this.#cells, RESERVED, current, next);
      if (seen === current) return;
      current = seen;
    }
  }
}
