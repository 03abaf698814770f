import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger.ts';
import type { PruneCounts, Storage } from '../storage/types.ts';
import { BATCH_LIMITS, bareEventCutoff, nextBatchSize, pauseAfterBatch, pruneCutoffs, type RetentionPolicy } from '../core/retention.ts';

/** Connector state rows deleted per statement (they are small and few). */
const CONNECTOR_STATE_BATCH = 1_000;

export interface PruneReport extends PruneCounts {
  duration_ms: number;
  batches: number;
}

export interface PrunerDeps {
  storage: Storage;
  policy: RetentionPolicy;
  now?: () => number;
  logger?: Logger;
  /** Called after every batch, with what it deleted (metrics). */
  onBatch?: (counts: PruneCounts) => void;
  /** Called after every pass. */
  onPass?: (report: PruneReport) => void;
  /** Waits between batches; replaced in tests that must not depend on timers. */
  pause?: (ms: number) => Promise<void>;
}

/**
 * Deletes what retention allows, in small paced batches (core/retention.ts decides sizes and
 * pauses): first finished deliveries with their attempts (and their events once bare), then a
 * sweep of events that have no delivery. One pass at a time; `start` repeats it on an interval.
 */
export class Pruner {
  readonly #deps: PrunerDeps;
  readonly #now: () => number;
  readonly #pause: (ms: number) => Promise<void>;
  #deliveryBatch: number = BATCH_LIMITS.initial;
  #sweepBatch: number = BATCH_LIMITS.initial;
  /**
   * Events received before this were swept by an earlier pass of this process: those still held
   * by a delivery are removed with their last delivery, so later sweeps start here.
   */
  #sweptBefore = 0;
  #running: Promise<PruneReport> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(deps: PrunerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#pause = deps.pause ?? ((ms) => sleep(ms));
  }

  /** One pass; a call while a pass runs gets that pass's report. */
  runOnce(): Promise<PruneReport> {
    this.#running ??= this.#pass().finally(() => (this.#running = null));
    return this.#running;
  }

  /** Runs a pass every `intervalMs` (the first one interval after start). */
  start(intervalMs: number): void {
    this.#stopped = false;
    const schedule = () => {
      this.#timer = setTimeout(async () => {
        try {
          await this.runOnce();
        } catch (err) {
          this.#deps.logger?.error({ err }, 'prune pass failed; retrying at the next interval');
        }
        if (!this.#stopped) schedule();
      }, intervalMs);
      this.#timer.unref();
    };
    schedule();
  }

  /** Stops the timer and ends a running pass after its current batch. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running?.catch(() => undefined);
  }

  async #pass(): Promise<PruneReport> {
    const started = performance.now();
    const now = this.#now();
    const { storage, policy } = this.#deps;
    const total: PruneReport = { deliveries: 0, attempts: 0, events: 0, duration_ms: 0, batches: 0 };
    const add = (counts: PruneCounts) => {
      total.deliveries += counts.deliveries;
      total.attempts += counts.attempts;
      total.events += counts.events;
      total.batches++;
      this.#deps.onBatch?.(counts);
    };

    const cutoffs = pruneCutoffs(now, policy);
    for (;;) {
      if (this.#stopped) return this.#finish(total, started);
      const limit = this.#deliveryBatch;
      const t0 = performance.now();
      const counts = await storage.pruneDeliveries(cutoffs, limit);
      const took = performance.now() - t0;
      add(counts);
      this.#deliveryBatch = nextBatchSize(limit, took);
      if (counts.deliveries < limit) break;
      await this.#pause(pauseAfterBatch(took));
    }

    // What connectors keep per ordering key (a Slack thread's message) goes once untouched as long.
    while (!this.#stopped && (await storage.pruneConnectorState(cutoffs.finishedBefore, CONNECTOR_STATE_BATCH)) === CONNECTOR_STATE_BATCH);

    const receivedBefore = bareEventCutoff(now, policy);
    let after: { received_at: number; id: string } | undefined;
    for (;;) {
      if (this.#stopped) return this.#finish(total, started);
      const limit = this.#sweepBatch;
      const t0 = performance.now();
      const swept = await storage.sweepEvents({ receivedFrom: this.#sweptBefore, receivedBefore, after, limit });
      const took = performance.now() - t0;
      add({ deliveries: 0, attempts: 0, events: swept.deleted });
      this.#sweepBatch = nextBatchSize(limit, took);
      after = swept.last;
      if (swept.scanned < limit) break;
      await this.#pause(pauseAfterBatch(took));
    }
    this.#sweptBefore = Math.max(this.#sweptBefore, receivedBefore);
    return this.#finish(total, started);
  }

  #finish(total: PruneReport, started: number): PruneReport {
    total.duration_ms = Math.round((performance.now() - started) * 10) / 10;
    this.#deps.onPass?.(total);
    if (total.deliveries || total.events) this.#deps.logger?.info({ ...total }, 'pruned what retention no longer keeps');
    return total;
  }
}
