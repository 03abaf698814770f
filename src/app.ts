import http from 'node:http';
import type { Express } from 'express';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { ConfigError, type Config } from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { loadSecretBox } from './master-key.ts';
import type { SecretBox } from './core/secret-box.ts';
import type { Storage } from './storage/types.ts';
import { SqliteStorage } from './storage/sqlite/sqlite-storage.ts';
import { ApiKeyService } from './services/api-keys.ts';
import { SubscriptionService } from './services/subscriptions.ts';
import { IngestService } from './services/ingest.ts';
import { MappingRegistry } from './services/mapping-registry.ts';
import { loadEventCatalog } from './catalog/event-catalog.ts';
import { assertDestinationAllowed, createGuardedConnector, type Resolver } from './delivery/ssrf-lookup.ts';
import { HttpClient } from './delivery/http-client.ts';
import { DeliveryWorker } from './delivery/worker.ts';
import { destinationOf, loggableUrl } from './delivery/dispatch.ts';
import { DeliveryService } from './services/deliveries.ts';
import { deliveriesRouter } from './http/routes/deliveries.ts';
import { mappingsRouter } from './http/routes/mappings.ts';
import { connectorsRouter } from './http/routes/connectors.ts';
import { MappingPreviewService } from './services/mapping-preview.ts';
import { EvaluationPool } from './services/evaluation-pool.ts';
import type { RuntimeSubscription } from './services/subscriptions.ts';
import { createHttpApp } from './http/http-app.ts';
import { keysRouter } from './http/routes/keys.ts';
import { authenticate } from './http/auth.ts';
import { eventsRouter } from './http/routes/events.ts';
import { webhooksRouter } from './http/routes/webhooks.ts';
import { hooksRouter } from './http/routes/hooks.ts';
import { openapiRouter } from './http/routes/openapi.ts';
import { HookService } from './services/hooks.ts';
import { dashboardRouter } from './http/dashboard-router.ts';
import { CONNECTORS } from '../connectors/index.ts';
import { newId } from './core/ids.ts';
import { eventMatches } from './core/event-match.ts';

export interface SluiceOptions {
  logger?: Logger;
  now?: () => number;
  /** Where the bootstrap admin key is printed on first start (stdout by default). */
  announce?: (line: string) => void;
  /**
   * How destination host names are resolved, both when a destination is saved and on every
   * connect (the system's DNS by default). A seam for tests: a fake resolver lets them rebind a
   * name to a private address and prove the guard in the gateway's own wiring refuses it.
   */
  resolve?: Resolver;
}

export interface Sluice {
  readonly config: Config;
  readonly storage: Storage;
  readonly keys: ApiKeyService;
  readonly subscriptions: SubscriptionService;
  readonly ingest: IngestService;
  readonly mappings: MappingRegistry;
  readonly deliveries: DeliveryService;
  readonly worker: DeliveryWorker;
  /** The express application (its routes are checked against the OpenAPI document). */
  readonly app: Express;
  /** The base URL the server listens on, once started. */
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A different SLUICE_MASTER_KEY (or a lost master.key) cannot open the stored secrets; without
 * this check the gateway would start and then answer 500 to every ingest and subscription read.
 */
async function assertMasterKeyOpensSecrets(storage: Storage, box: SecretBox): Promise<void> {
  const [sample] = await storage.listSubscriptions();
  if (!sample) return;
  try {
    box.open(sample.secret_sealed);
  } catch {
    throw new Error('The master key cannot decrypt the stored secrets: start with the SLUICE_MASTER_KEY (or the data dir\'s master.key) they were saved with.');
  }
}

/** The composition root: the only place concrete parts are chosen and wired together. */
export async function createSluice(config: Config, options: SluiceOptions = {}): Promise<Sluice> {
  if (config.databaseUrl) {
    // Refuse rather than silently fall back to SQLite: an operator who asked for PostgreSQL
    // must not find their events in a file they do not back up.
    throw new ConfigError('SLUICE_DATABASE_URL: the PostgreSQL backend is not part of this version yet; unset it to use the embedded SQLite database');
  }
  const logger = options.logger ?? createLogger(config.logLevel);
  const now = options.now ?? Date.now;
  const metrics = createMetrics({ inFlight: () => worker.sendingCount });
  const { box, generated, file: keyFile } = loadSecretBox(config.masterKey, config.dataDir);

  const storage: Storage = new SqliteStorage(path.join(config.dataDir, 'sluice.db'));
  const catalog = loadEventCatalog(config.catalogDir);
  const evaluationLimits = { timeoutMs: config.templateTimeoutMs, maxOutputBytes: config.templateMaxOutputBytes, maxSequence: config.templateMaxItems };
  const mappings = new MappingRegistry({ dir: config.mappingsDir, logger, envAllowlist: config.templateEnvAllowlist, limits: evaluationLimits });
  // Every template and filter the gateway runs is evaluated here, off the event loop (see evaluation-pool.ts).
  const evaluations = new EvaluationPool({ threads: config.templateThreads, limits: evaluationLimits, heapMb: config.templateMemoryMb, logger });
  /** resolve() picks the template in service (or refuses a missing one) here; a pool thread only evaluates its source. */
  const renderMapping = (mapping: string, envelope: unknown, view: Record<string, unknown>, owner: string) =>
    evaluations.evaluate({ kind: 'template', source: mappings.resolve(mapping).source, event: envelope, bindings: mappings.bindings(view), owner });
  /** `$subscription` in templates and filters: never anything secret. */
  const templateView = (sub: RuntimeSubscription) => ({
    id: sub.record.id,
    description: sub.record.description,
    connector: sub.record.connector,
    options: sub.record.connector_options,
  });
  const connectors = new Map(CONNECTORS.map((c) => [c.name, c]));
  const keys = new ApiKeyService(storage, now);
  const subscriptions = new SubscriptionService({
    storage,
    secretBox: box,
    isKnownEventPattern: (p) => catalog.isKnownPattern(p),
    templates: mappings,
    connectors,
    checkDestination: (url, at) => assertDestinationAllowed(url, { allowInsecure: config.allowInsecureUrls, allowlist: config.ssrfAllowlist, path: at, resolve: options.resolve }),
    secretRotationMs: config.secretRotationHours * 3_600_000,
    now,
  });

  const ingest = new IngestService({
    storage,
    validateData: (name, data) => (catalog.has(name) ? catalog.validate(name, data) : 'unknown_event'),
    subscriptions: () => subscriptions.runtimeAll(),
    filterMatches: async (filter, envelope, sub) => (await evaluations.evaluate({
      kind: 'filter', source: mappings.filter(filter).source, event: envelope, bindings: mappings.bindings(templateView(sub)), owner: sub.record.id,
    })) === true,
    onEventsAccepted: (count) => metrics.eventsAccepted.inc(count),
    onDeliveriesCreated: ({ pending, preclaimed }) => {
      metrics.deliveriesCreated.inc(pending.length + preclaimed.length);
      if (preclaimed.length) worker.startPreclaimed(preclaimed);
      if (pending.length) worker.notify(pending);
    },
    preclaim: { reserve: (wanted) => worker.reserve(wanted), release: (count) => worker.release(count) },
    logger,
    now,
  });

  const httpClient = new HttpClient({
    connector: (connect) => createGuardedConnector({ allowInsecure: config.allowInsecureUrls, allowlist: config.ssrfAllowlist, resolve: options.resolve, connect }),
    connectTimeoutMs: config.defaultTimeoutSeconds * 1000,
    connectionsPerOrigin: config.perDestinationConcurrency,
  });

  /** The gateway's own events go through the same pipeline, so they can be subscribed to. */
  const emitOperational = (event: string, data: Record<string, unknown>) => {
    ingest.store([{ event, id: newId('evt', now()), timestamp: new Date(now()).toISOString(), data }]).catch((err) => logger.error({ err, event }, 'could not record an operational event'));
  };

  const worker: DeliveryWorker = new DeliveryWorker(
    {
      storage,
      dispatch: {
        http: httpClient,
        defaultTimeoutMs: config.defaultTimeoutSeconds * 1000,
        userAgent: 'Sluice-Webhooks/0.1',
        publicUrl: config.publicUrl,
        render: async (envelope, sub, mapping) => (mapping ? renderMapping(mapping, envelope, templateView(sub), sub.record.id) : envelope),
      },
      subscription: (id) => subscriptions.runtime(id),
      connector: (name) => connectors.get(name),
      invalidateSubscriptions: () => subscriptions.invalidate(),
      logger,
      now,
      hooks: {
        onAttempt: (attempt) => {
          metrics.attempts.inc({ outcome: attempt.outcome });
          metrics.attemptSeconds.observe(attempt.latency_ms / 1000);
        },
        onDeliveryFailed: ({ claimed, sub, attempt }) => {
          // A failed delivery of an operational event raises no new one: no feedback loops.
          if (claimed.event.event.startsWith('sluice.') || claimed.event.test) return;
          emitOperational('sluice.delivery.failed', {
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
          emitOperational('sluice.webhook.disabled', { subscription_id: sub.record.id, url, reason: code, message: reason, disabled_at: new Date(now()).toISOString(), deleted });
        },
      },
    },
    {
      concurrency: config.deliveryConcurrency,
      perDestinationConcurrency: config.perDestinationConcurrency,
      leaseMs: config.leaseSeconds * 1000,
      disableAfterMs: config.disableAfterDays * 86_400_000,
      shutdownGraceMs: config.shutdownGraceSeconds * 1000,
    },
  );

  const deliveries = new DeliveryService({
    storage,
    subscriptions,
    ingest,
    sampleEvent: (patterns, requested) => {
      const names = catalog.list().map((t) => t.name).filter((name) => patterns.some((p) => eventMatches(p, name)));
      const name = requested ?? names[0];
      if (!name || !names.includes(name)) return undefined;
      const example = catalog.get(name)!.example as { data: unknown };
      return { event: name, data: example.data };
    },
    onReplayed: (ids) => worker.notify(ids),
    replayLimit: config.replayLimit,
    runNow: async (id) => {
      const [claimed] = await storage.claimByIds([id], now(), now() + config.leaseSeconds * 1000);
      if (!claimed) return undefined;
      const result = await worker.runClaimed(claimed);
      return result === 'released' ? undefined : result;
    },
    now,
  });

  let ready = false;
  const app = createHttpApp({
    logger,
    maxBodyBytes: config.maxBodyBytes,
    isReady: () => ready,
    metrics: metrics.registry,
    metricsToken: config.metricsToken,
    authenticate: authenticate(keys),
    publicApiRouters: [openapiRouter({ maxBatchEvents: config.maxBatchEvents, maxBodyBytes: config.maxBodyBytes })],
    apiRouters: [
      keysRouter(keys),
      eventsRouter({ keys, ingest, eventTypes: () => catalog.list(), maxBatchEvents: config.maxBatchEvents }),
      webhooksRouter({ keys, subscriptions }),
      hooksRouter({ keys, hooks: new HookService({ storage, catalog, connectors, subscriptions, render: (mapping, envelope, view) => renderMapping(mapping, envelope, view, 'hook-samples') }) }),
      deliveriesRouter({ keys, deliveries }),
      connectorsRouter({ keys, connectors: CONNECTORS }),
      mappingsRouter({ keys, preview: new MappingPreviewService({ mappings, storage, subscriptions, evaluate: (request) => evaluations.evaluate({ ...request, owner: 'preview' }), defaultMapping: (name) => connectors.get(name)?.defaultMapping }) }),
    ],
    rootRouters: [dashboardRouter()],
  });
  // Slow clients: a trickled request is cut off after these limits instead of Node's minutes,
  // checked every second; idle keep-alive stays above the 60 s idle timeout of common load
  // balancers (closing first makes them answer 502); past the connection cap new sockets are dropped.
  const server = http.createServer({ connectionsCheckingInterval: 1_000 }, app);
  server.headersTimeout = config.headersTimeoutSeconds * 1000;
  server.requestTimeout = config.requestTimeoutSeconds * 1000;
  server.keepAliveTimeout = 65_000;
  server.maxConnections = config.maxConnections;

  const sluice: Sluice = {
    config,
    storage,
    keys,
    subscriptions,
    ingest,
    mappings,
    deliveries,
    worker,
    app,
    url: '',
    async start() {
      const applied = await storage.migrate();
      if (applied) logger.info({ applied }, 'database migrations applied');
      await assertMasterKeyOpensSecrets(storage, box);
      await mappings.load();
      await evaluations.ready();
      if (config.watchMappings) mappings.watch();
      // Bind before creating a first-start admin key: a port in use must not burn the one-time key.
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) => {
          if (err.code === 'EADDRINUSE') reject(new ConfigError(`${config.host}:${config.port} is already in use; stop what listens there or set SLUICE_PORT to another port`));
          else if (err.code === 'EACCES' || err.code === 'EADDRNOTAVAIL') reject(new ConfigError(`cannot listen on ${config.host}:${config.port} (${err.code}); check SLUICE_HOST and SLUICE_PORT`));
          else reject(err);
        });
        server.listen(config.port, config.host, () => resolve());
      });
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      sluice.url = `http://${host}:${address.port}`;
      if (generated) logger.warn({ file: keyFile }, 'generated a master key for secrets at rest; back this file up (or set SLUICE_MASTER_KEY)');
      if (config.allowInsecureUrls) logger.warn('SLUICE_ALLOW_INSECURE_URLS is on: http:// and private and loopback destinations are allowed (link-local and cloud metadata stay refused); for local development only');
      if (config.adminKey) {
        const bootstrap = await keys.ensureAdminKey(config.adminKey);
        if (bootstrap.outcome === 'added') logger.info('admin key from SLUICE_ADMIN_KEY registered');
        if (bootstrap.outcome === 'revoked') {
          logger.error({ key_id: bootstrap.record.id, revoked_at: new Date(bootstrap.record.revoked_at!).toISOString() }, 'SLUICE_ADMIN_KEY was revoked and is refused: it is not registered again; remove it from the environment or set a new key');
        }
      } else if ((await storage.countActiveAdminKeys()) === 0) {
        const { key } = await keys.createUnchecked('admin', 'generated on first start');
        (options.announce ?? ((line) => process.stdout.write(line + '\n')))(
          `\nSluice generated an admin API key. It is shown only this once; store it now:\n\n    ${key}\n`,
        );
      }
      await worker.start();
      ready = true;
      logger.info({ url: sluice.url, engine: storage.engine }, 'sluice listening');
    },
    async stop() {
      ready = false;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await worker.stop();
      await closed;
      await httpClient.close();
      await evaluations.close();
      await mappings.close();
      await storage.close();
    },
  };
  return sluice;
}
