import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics served at /metrics. One registry per gateway instance (tests run several).
 * The default metrics include the event loop's delay (perf_hooks.monitorEventLoopDelay, sampled
 * every 10 ms): `sluice_nodejs_eventloop_lag_{p50,p90,p99,max}_seconds`, over the time since the
 * previous scrape (each scrape starts a new window; the benchmark scrapes before and after a load).
 */
export function createMetrics(sources: {
  inFlight: () => number;
  databaseSize: () => Promise<{ bytes: number; free_bytes: number | null }>;
  /** CPU seconds each of the gateway's threads has used, by thread (see thread-cpu.ts). */
  threadCpuSeconds?: () => Record<string, number>;
}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'sluice_' });
  return {
    registry,
    eventsAccepted: new Counter({ name: 'sluice_events_accepted_total', help: 'Events durably accepted', registers: [registry] }),
    deliveriesCreated: new Counter({ name: 'sluice_deliveries_created_total', help: 'Deliveries created by fan-out', registers: [registry] }),
    attempts: new Counter({ name: 'sluice_delivery_attempts_total', help: 'Delivery attempts by outcome', labelNames: ['outcome'], registers: [registry] }),
    attemptSeconds: new Histogram({
      name: 'sluice_delivery_attempt_seconds',
      help: 'Latency of delivery attempts',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'sluice_deliveries_in_flight',
      help: 'Attempts in flight',
      registers: [registry],
      // Read at scrape time from the worker, so it can never drift from the real count.
      collect() {
        this.set(sources.inFlight());
      },
    }),
    databaseBytes: new Gauge({
      name: 'sluice_database_bytes',
      help: 'Size of the database (SQLite: its pages, the -wal file not included)',
      registers: [registry],
      async collect() {
        this.set((await sources.databaseSize()).bytes);
      },
    }),
    databaseFreeBytes: new Gauge({
      name: 'sluice_database_free_bytes',
      help: 'Of the database size, bytes freed by pruning and waiting to be reused',
      registers: [registry],
      async collect() {
        this.set((await sources.databaseSize()).free_bytes ?? 0);
      },
    }),
    prunedRows: new Counter({ name: 'sluice_pruned_rows_total', help: 'Rows deleted by retention, by table', labelNames: ['table'], registers: [registry] }),
    pruneSeconds: new Histogram({
      name: 'sluice_prune_duration_seconds',
      help: 'Duration of prune passes (pauses between batches included)',
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers: [registry],
    }),
    storageCallSeconds: new Histogram({
      name: 'sluice_storage_call_seconds',
      help: 'SQLite time of each storage call, measured in the storage thread (commits and their fsyncs included), by method',
      labelNames: ['method'],
      buckets: [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    checkpointSeconds: new Histogram({
      name: 'sluice_sqlite_checkpoint_seconds',
      help: 'WAL checkpoints: by the checkpointer thread in the background, or finished by the storage thread between two transactions',
      labelNames: ['by'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    threadCpuSeconds: new Gauge({
      name: 'sluice_thread_cpu_seconds',
      help: 'CPU time (user + system) each gateway thread (http, delivery, storage) has used since it started (Linux; only grows; its rate is the cores the thread keeps busy)',
      labelNames: ['thread'],
      registers: [registry],
      collect() {
        for (const [thread, seconds] of Object.entries(sources.threadCpuSeconds?.() ?? {})) this.set({ thread }, seconds);
      },
    }),
    walFrames: new Gauge({ name: 'sluice_sqlite_wal_frames', help: 'Frames in the SQLite WAL at the last checkpoint', registers: [registry] }),
    ingestRefused: new Counter({ name: 'sluice_ingest_refused_total', help: 'Ingest requests refused, by reason (quota: the API key is over its rate_limit)', labelNames: ['reason'], registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
