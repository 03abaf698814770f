import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics served at /metrics. One registry per gateway instance (tests run several). */
export function createMetrics(sources: { inFlight: () => number }) {
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
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
