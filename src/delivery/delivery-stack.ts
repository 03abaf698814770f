import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { AttemptRecord, ClaimedDelivery, Storage } from '../storage/types.ts';
import type { RuntimeSubscription } from '../services/subscriptions.ts';
import type { ConnectorDefinition } from './connector.ts';
import { createGuardedConnector, type Resolver } from './ssrf-lookup.ts';
import { HttpClient } from './http-client.ts';
import { DeliveryWorker } from './worker.ts';
import type { WorkerCapacity } from './worker-capacity.ts';
import { destinationOf, loggableUrl } from './dispatch.ts';

/**
 * What the rest of the gateway asks of delivery, wherever it runs: in the HTTP thread (this
 * module's stack) or in the delivery thread (delivery-thread-host.ts forwards each call).
 */
export interface DeliveryEngine {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** New or replayed deliveries committed: claim them now rather than at the next poll. */
  notify(deliveryIds: string[]): void;
  /** New work may be due (another instance, a subscription change): poll now. */
  poke(): void;
  /** Worker slots for deliveries about to be committed already leased (ingest's preclaim). */
  reserve(wanted: number): { count: number; leaseUntil: number };
  release(count: number): void;
  /** Deliveries committed already leased to this worker (their slots were reserved). */
  startPreclaimed(claimed: ClaimedDelivery[]): void;
  /** Its destination has a full queue: the subscription's new deliveries stay pending. */
  isSaturated(subscriptionId: string): boolean;
  /** Claims one delivery and attempts it now (test sends); undefined when it could not be claimed. */
  runNow(deliveryId: string): Promise<AttemptRecord | undefined>;
  /** Subscriptions were changed elsewhere: read them again before the next attempt. */
  subscriptionsChanged(): void;
  /** Attempts on the wire right now (the in-flight gauge). */
  readonly sendingCount: number;
}

/** The subscription as templates and filters see it (`$subscription`): never anything secret. */
export function templateView(sub: RuntimeSubscription): Record<string, unknown> {
  return {
    id: sub.record.id,
    description: sub.record.description,
    connector: sub.record.connector,
    options: sub.record.connector_options,
  };
}

export interface DeliveryStackDeps {
  config: Config;
  storage: Storage;
  logger: Logger;
  now: () => number;
  /** How destination names are resolved on connect (the system's DNS by default; a test seam). */
  resolve?: Resolver;
  connectors: Map<string, ConnectorDefinition>;
  subscriptions: { runtime(id: string): Promise<RuntimeSubscription | undefined>; invalidate(): void };
  /** A mapping template's output for one delivery (evaluated by the evaluation pool). */
  render: (mapping: string, envelope: unknown, view: Record<string, unknown>, owner: string) => Promise<unknown>;
  /** Records one of the gateway's own events (`sluice.delivery.failed`, `sluice.webhook.disabled`). */
  emitOperational: (event: string, data: Record<string, unknown>) => void;
  /** The worker changed a subscription (disabled it, mirrored its health): others must read it again. */
  onSubscriptionsChanged?: () => void;
  onAttempt?: (attempt: AttemptRecord) => void;
  capacity?: WorkerCapacity;
}

/**
 * The delivery half of the gateway: the HTTP client with the SSRF guard on every connect, the
 * worker (claims, templates, signing, sending, retries) and the operational events it raises.
 * Built the same way in the HTTP thread and in the delivery thread.
 */
export function createDeliveryStack(deps: DeliveryStackDeps): { engine: DeliveryEngine; worker: DeliveryWorker; close(): Promise<void> } {
  const { config, storage, logger, now, connectors } = deps;
  const httpClient = new HttpClient({
    connector: (connect) => createGuardedConnector({ allowInsecure: config.allowInsecureUrls, allowlist: config.ssrfAllowlist, resolve: deps.resolve, connect }),
    connectTimeoutMs: config.defaultTimeoutSeconds * 1000,
    connectionsPerOrigin: config.perDestinationConcurrency,
  });

  const worker: DeliveryWorker = new DeliveryWorker(
    {
      storage,
      dispatch: {
        http: httpClient,
        defaultTimeoutMs: config.defaultTimeoutSeconds * 1000,
        userAgent: 'Sluice-Webhooks/0.1',
        publicUrl: config.publicUrl,
        keyState: {
          get: (subscriptionId, key) => storage.getConnectorState(subscriptionId, key),
          set: (subscriptionId, key, value) => storage.setConnectorState(subscriptionId, key, value, now()),
        },
        render: async (envelope, sub, mapping) => (mapping ? deps.render(mapping, envelope, templateView(sub), sub.record.id) : envelope),
      },
      subscription: (id) => deps.subscriptions.runtime(id),
      connector: (name) => connectors.get(name),
      invalidateSubscriptions: () => {
        deps.subscriptions.invalidate();
        deps.onSubscriptionsChanged?.();
      },
      logger,
      now,
      capacity: deps.capacity,
      hooks: {
        onAttempt: deps.onAttempt,
        onDeliveryFailed: ({ claimed, sub, attempt }) => {
          // A failed delivery of an operational event raises no new one: no feedback loops.
          if (claimed.event.event.startsWith('sluice.') || claimed.event.test) return;
          deps.emitOperational('sluice.delivery.failed', {
            delivery_id: claimed.delivery.id,
            subscription_id: sub.record.id,
            event_id: claimed.event.id,
            event: claimed.event.event,
            attempts: attempt.number,
            last_status_code: attempt.response_status,
            last_error: attempt.error,
            url: attempt.url,
          });
        },
        onSubscriptionDisabled: ({ sub, reason, deleted, attempt }) => {
          logger.warn({ subscription_id: sub.record.id, reason, deleted }, deleted ? 'subscription deleted by its destination' : 'subscription disabled');
          const connector = connectors.get(sub.record.connector);
          const url = connector ? loggableUrl(destinationOf(sub, connector), connector) : sub.record.url;
          // A short code to route on, and the sentence for people.
          const code = deleted ? 'deleted' : attempt.outcome === 'disabled' ? (attempt.response_status === 410 ? 'gone' : 'rejected') : 'failing';
          deps.emitOperational('sluice.webhook.disabled', { subscription_id: sub.record.id, url, reason: code, message: reason, disabled_at: new Date(now()).toISOString(), deleted });
        },
      },
    },
    {
      concurrency: config.deliveryConcurrency,
      perDestinationConcurrency: config.perDestinationConcurrency,
      leaseMs: config.leaseSeconds * 1000,
      // A SQLite file is this process's alone: every lease in it at start is a dead process's.
      exclusiveStorage: storage.engine === 'sqlite',
      disableAfterMs: config.disableAfterDays * 86_400_000,
      shutdownGraceMs: config.shutdownGraceSeconds * 1000,
    },
  );

  const engine: DeliveryEngine = {
    start: () => worker.start(),
    stop: () => worker.stop(),
    notify: (ids) => worker.notify(ids),
    poke: () => worker.poke(),
    reserve: (wanted) => worker.reserve(wanted),
    release: (count) => worker.release(count),
    startPreclaimed: (claimed) => worker.startPreclaimed(claimed),
    isSaturated: (id) => worker.isSaturated(id),
    runNow: async (id) => {
      const [claimed] = await storage.claimByIds([id], now(), now() + config.leaseSeconds * 1000);
      if (!claimed) return undefined;
      const result = await worker.runClaimed(claimed);
      return result === 'released' ? undefined : result;
    },
    subscriptionsChanged: () => deps.subscriptions.invalidate(),
    get sendingCount() {
      return worker.sendingCount;
    },
  };
  return { engine, worker, close: () => httpClient.close() };
}
