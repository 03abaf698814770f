import http from 'node:http';
import type { Express } from 'express';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { ConfigError, type Config } from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { ownThreadId, threadCpuSeconds } from './thread-cpu.ts';
import { loadSecretBox } from './master-key.ts';
import type { SecretBox } from './core/secret-box.ts';
import type { Storage } from './storage/types.ts';
import { SqliteStorage } from './storage/sqlite/sqlite-storage.ts';
import { SqliteThreadStorage, type SqliteThreadOptions } from './storage/sqlite/thread-storage.ts';
import { PostgresStorage } from './storage/postgres/postgres-storage.ts';
import { DatabaseStartError } from './storage/postgres/connection.ts';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { ApiKeyService } from './services/api-keys.ts';
import { SubscriptionService } from './services/subscriptions.ts';
import { IngestService } from './services/ingest.ts';
import { MappingRegistry } from './services/mapping-registry.ts';
import { loadEventCatalog } from './catalog/event-catalog.ts';
import { assertDestinationAllowed, type Resolver } from './delivery/ssrf-lookup.ts';
import type { DeliveryWorker } from './delivery/worker.ts';
import { createDeliveryStack, templateView, type DeliveryEngine } from './delivery/delivery-stack.ts';
import { DeliveryThread } from './delivery/delivery-thread-host.ts';
import { DeliveryService } from './services/deliveries.ts';
import { deliveriesRouter } from './http/routes/deliveries.ts';
import { mappingsRouter } from './http/routes/mappings.ts';
import { connectorsRouter } from './http/routes/connectors.ts';
import { MappingPreviewService } from './services/mapping-preview.ts';
import { EvaluationPool, evaluatorScriptPath } from './services/evaluation-pool.ts';
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
import { Pruner } from './services/pruner.ts';
import { shortRetentions } from './core/retention.ts';
import { formatDuration } from './core/duration.ts';
import { EventErasureService } from './services/erasure.ts';
import { IngestQuota } from './services/ingest-quota.ts';
import { routeSource, type RouteResult } from './core/ordering.ts';

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
  /**
   * The SQLite storage thread died: by default the gateway logs it and exits with status 1 (a
   * gateway that cannot store must not keep answering, nor hang). A seam for in-process tests.
   */
  onFatal?: (err: Error) => void;
  /** A test seam: a module run in the SQLite storage thread on its storage (see storage-thread.ts). */
  sqliteThreadPreload?: string;
}

export interface Sluice {
  readonly config: Config;
  readonly storage: Storage;
  readonly keys: ApiKeyService;
  readonly subscriptions: SubscriptionService;
  readonly ingest: IngestService;
  readonly mappings: MappingRegistry;
  readonly deliveries: DeliveryService;
  /** Delivery, in the delivery thread (SLUICE_DELIVERY_THREAD) or here. */
  readonly delivery: DeliveryEngine;
  /** The worker itself when delivery runs in this thread (SLUICE_DELIVERY_THREAD=false), for tests. */
  readonly worker: DeliveryWorker | undefined;
  readonly pruner: Pruner;
  /** The express application (its routes are checked against the OpenAPI document). */
  readonly app: Express;
  /** The base URL the server listens on, once started. */
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** What the master key check seals: any instance whose key cannot open it has another key. */
const MASTER_KEY_CHECK = 'sluice master key check';

/**
 * A different SLUICE_MASTER_KEY (or a lost master.key) cannot open the stored secrets; without
 * this check the gateway would start and then answer 500 to every ingest and subscription read.
 * A shared database keeps a sealed check value, so a second instance with another key is refused
 * even before any subscription exists.
 */
async function assertMasterKeyOpensSecrets(storage: Storage, box: SecretBox): Promise<void> {
  const shared = storage.masterKeyCheck ? await storage.masterKeyCheck(box.seal(MASTER_KEY_CHECK)) : undefined;
  const sample = shared ?? (await storage.listSubscriptions())[0]?.secret_sealed;
  if (!sample) return;
  let opened: string | undefined;
  try {
    opened = box.open(sample);
  } catch {
    // refused below
  }
  if (opened === undefined || (shared !== undefined && opened !== MASTER_KEY_CHECK)) {
    throw new ConfigError(storage.engine === 'postgres'
      ? 'the master key cannot decrypt the secrets stored in this database: every instance sharing it must run with the same SLUICE_MASTER_KEY (and, for a passphrase, the same master.salt)'
      : 'the master key cannot decrypt the stored secrets: start with the SLUICE_MASTER_KEY (or the data dir\'s master.key) they were saved with');
  }
}

/**
 * The storage engine: PostgreSQL when SLUICE_DATABASE_URL is set (any number of instances may
 * share it), else the SQLite file in the data dir (one process). The gateway runs SQLite in a
 * storage thread (`thread`); the CLI commands open the file directly.
 */
export function createStorage(config: Config, logger?: Logger, thread?: SqliteThreadOptions): Storage {
  const file = path.join(config.dataDir, 'sluice.db');
  if (!config.databaseUrl) return thread ? new SqliteThreadStorage(file, thread) : new SqliteStorage(file);
  return new PostgresStorage({
    url: config.databaseUrl,
    poolSize: config.databasePool,
    // Unique per process: a restarted instance must not mistake its predecessor's leases for its own.
    instanceId: newInstanceId(),
    onError: (err) => logger?.warn({ err: err.message }, 'database connection problem; retrying'),
  });
}

function newInstanceId(): string {
  return `${os.hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
}

/** Migrations, with a database that cannot be used at start reported in one line (exit 2). */
async function migrate(storage: Storage): Promise<number> {
  try {
    return await storage.migrate();
  } catch (err) {
    if (err instanceof DatabaseStartError) throw new ConfigError(`SLUICE_DATABASE_URL: ${err.message}`);
    throw err;
  }
}

/** The composition root: the only place concrete parts are chosen and wired together. */
export async function createSluice(config: Config, options: SluiceOptions = {}): Promise<Sluice> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const now = options.now ?? Date.now;
  const httpThreadId = ownThreadId();
  const metrics = createMetrics({
    inFlight: () => delivery.sendingCount,
    databaseSize: () => storage.databaseSize(),
    threadCpuSeconds: () => {
      const threads = { http: httpThreadId, delivery: delivery instanceof DeliveryThread ? delivery.osThreadId : undefined, storage: storage instanceof SqliteThreadStorage ? storage.osThreadId : undefined };
      const seconds: Record<string, number> = {};
      for (const [name, tid] of Object.entries(threads)) {
        const used = tid === undefined ? undefined : threadCpuSeconds(tid);
        if (used !== undefined) seconds[name] = used;
      }
      return seconds;
    },
  });
  const { box, generated, file: keyFile } = loadSecretBox(config.masterKey, config.dataDir);

  const storage = createStorage(config, logger, {
    onFatal: (err) => onFatal(err),
    onCall: (method, seconds) => metrics.storageCallSeconds.observe({ method }, seconds),
    onCheckpoint: (report) => {
      metrics.checkpointSeconds.observe({ by: report.by }, report.ms / 1000);
      metrics.walFrames.set(report.walFrames);
    },
    preload: options.sqliteThreadPreload,
  });
  const catalog = loadEventCatalog(config.catalogDir);
  const evaluationLimits = { timeoutMs: config.templateTimeoutMs, maxOutputBytes: config.templateMaxOutputBytes, maxSequence: config.templateMaxItems };
  const mappings = new MappingRegistry({ dir: config.mappingsDir, logger, envAllowlist: config.templateEnvAllowlist, limits: evaluationLimits });
  // Every template and filter the gateway runs is evaluated here, off the event loop (see evaluation-pool.ts).
  // With delivery in its own thread, templates run in that thread's pool; this one serves filters
  // and ordering keys at ingest (mostly inline), previews and samples, and starts its processes
  // when first needed.
  const evaluations = new EvaluationPool({ threads: config.templateThreads, limits: evaluationLimits, heapMb: config.templateMemoryMb, inlineBudgetBytes: config.templateInlineBytes, logger, lazy: config.deliveryThread });
  /** resolve() picks the template in service (or refuses a missing one) here; a pool thread only evaluates its source. */
  const renderMapping = (mapping: string, envelope: unknown, view: Record<string, unknown>, owner: string) =>
    evaluations.evaluate({ kind: 'template', source: mappings.resolve(mapping).source, event: envelope, bindings: mappings.bindings(view), owner });
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
    onWork: () => delivery.poke(),
    onChanged: () => delivery.subscriptionsChanged(),
    now,
  });

  const ingest = new IngestService({
    storage,
    validateData: (name, data) => (catalog.has(name) ? catalog.validate(name, data) : 'unknown_event'),
    subscriptions: () => subscriptions.runtimeAll(),
    // A filter alone is evaluated as before; with an ordering key, both go in one evaluation.
    route: async (envelope, sub, { filter, key }) => {
      const bindings = mappings.bindings(templateView(sub));
      if (!key) return { matches: (await evaluations.evaluate({ kind: 'filter', source: mappings.filter(filter!).source, event: envelope, bindings, owner: sub.record.id })) === true, key: null };
      return (await evaluations.evaluate({ kind: 'route', source: routeSource(filter, key), event: envelope, bindings, owner: sub.record.id })) as RouteResult;
    },
    onEventsAccepted: (count) => metrics.eventsAccepted.inc(count),
    onDeliveriesCreated: ({ pending, preclaimed, held }) => {
      metrics.deliveriesCreated.inc(pending.length + preclaimed.length + held);
      if (preclaimed.length) delivery.startPreclaimed(preclaimed);
      if (pending.length) delivery.notify(pending);
    },
    preclaim: { reserve: (wanted) => delivery.reserve(wanted), release: (count) => delivery.release(count), isSaturated: (id) => delivery.isSaturated(id) },
    logger,
    now,
  });

  /** The gateway's own events go through the same pipeline, so they can be subscribed to. */
  const emitOperational = (event: string, data: Record<string, unknown>) => {
    ingest.store([{ event, id: newId('evt', now()), timestamp: new Date(now()).toISOString(), data }]).catch((err) => logger.error({ err, event }, 'could not record an operational event'));
  };
  const onFatal = options.onFatal ?? ((err: Error) => {
    logger.fatal({ err }, 'a gateway thread stopped; exiting');
    process.exit(1);
  });

  // Delivery runs on a thread of its own unless configured off; the test seams that are
  // functions (a resolver, a clock) cannot cross to another thread, so they need it here.
  if (config.deliveryThread && (options.resolve || options.now)) throw new Error('the resolve and now seams need SLUICE_DELIVERY_THREAD=false');
  let worker: DeliveryWorker | undefined;
  let closeDelivery = async () => {};
  let delivery: DeliveryEngine;
  if (config.deliveryThread) {
    delivery = new DeliveryThread({
      config,
      storagePort: storage instanceof SqliteThreadStorage ? storage.connect() : undefined,
      // Its own PostgreSQL pool claims under this instance's name: ingest's preclaimed deliveries
      // are leased to it, and the delivery thread completes them.
      instanceId: storage instanceof PostgresStorage ? storage.instanceId : undefined,
      evaluatorScript: evaluatorScriptPath(),
      onOperationalEvent: emitOperational,
      onSubscriptionsChanged: () => subscriptions.invalidate(),
      onStats: (stats) => {
        for (const attempt of stats.attempts) {
          metrics.attempts.inc({ outcome: attempt.outcome });
          metrics.attemptSeconds.observe(attempt.seconds);
        }
        for (const call of stats.storageCalls) metrics.storageCallSeconds.observe({ method: call.method }, call.seconds);
      },
      onFatal,
    });
  } else {
    const stack = createDeliveryStack({
      config,
      storage,
      logger,
      now,
      resolve: options.resolve,
      connectors,
      subscriptions,
      render: renderMapping,
      emitOperational,
      onAttempt: (attempt) => {
        metrics.attempts.inc({ outcome: attempt.outcome });
        metrics.attemptSeconds.observe(attempt.latency_ms / 1000);
      },
    });
    delivery = stack.engine;
    worker = stack.worker;
    closeDelivery = stack.close;
  }

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
    onReplayed: (ids) => delivery.notify(ids),
    replayLimit: config.replayLimit,
    runNow: (id) => delivery.runNow(id),
    now,
  });

  const retention = { retentionMs: config.retentionMs, deadLetterRetentionMs: config.deadLetterRetentionMs };
  const pruner = new Pruner({
    storage,
    policy: retention,
    now,
    logger,
    onBatch: (counts) => {
      for (const table of ['deliveries', 'attempts', 'events'] as const) if (counts[table]) metrics.prunedRows.inc({ table }, counts[table]);
    },
    onPass: (report) => metrics.pruneSeconds.observe(report.duration_ms / 1000),
  });
  const quota = new IngestQuota(now);

  let ready = false;
  const app = createHttpApp({
    logger,
    maxBodyBytes: config.maxBodyBytes,
    isReady: () => ready && (storage.isAvailable?.() ?? true),
    metrics: metrics.registry,
    metricsToken: config.metricsToken,
    authenticate: authenticate(keys),
    // Client generators and the /docs page read the document without a key.
    publicApiRouters: [openapiRouter({ maxBatchEvents: config.maxBatchEvents, maxBodyBytes: config.maxBodyBytes })],
    apiRouters: [
      keysRouter(keys),
      eventsRouter({
        keys,
        ingest,
        eventTypes: () => catalog.list(),
        maxBatchEvents: config.maxBatchEvents,
        quota: (key, events) => {
          const verdict = quota.take(key, events);
          if (!verdict.allowed) metrics.ingestRefused.inc({ reason: 'quota' });
          return verdict;
        },
        erasure: new EventErasureService(storage, (woken) => delivery.notify(woken)),
      }),
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
    delivery,
    worker,
    pruner,
    app,
    url: '',
    async start() {
      const applied = await migrate(storage);
      if (applied) logger.info({ applied }, 'database migrations applied');
      await assertMasterKeyOpensSecrets(storage, box);
      // Other instances' changes: new work to claim, subscriptions and keys to read again.
      await storage.watch?.((change) => {
        if (change === 'work') delivery.poke();
        else if (change === 'subscriptions') {
          subscriptions.invalidate();
          delivery.subscriptionsChanged();
        }
        else keys.invalidate();
      });
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
      await delivery.start();
      const short = shortRetentions(retention);
      if (short.length) {
        logger.warn({ retention: formatDuration(config.retentionMs), dead_letter_retention: formatDuration(config.deadLetterRetentionMs) }, `${short.join(' and ')} below an hour: deliveries and their logs are deleted quickly (fine for tests and demos)`);
      }
      pruner.start(config.pruneIntervalMs);
      ready = true;
      logger.info({ url: sluice.url, engine: storage.engine }, 'sluice listening');
    },
    async stop() {
      ready = false;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await pruner.stop();
      // A client still reading a response (or one that never reads it) gets the grace period,
      // then its connection is cut: it must not hold the shutdown until the forced exit.
      const cutOff = setTimeout(() => server.closeAllConnections(), config.shutdownGraceSeconds * 1000);
      cutOff.unref();
      await delivery.stop();
      await closed;
      clearTimeout(cutOff);
      await closeDelivery();
      await evaluations.close();
      await mappings.close();
      await storage.close();
    },
  };
  return sluice;
}
