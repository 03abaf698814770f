import type { MessagePort } from 'node:worker_threads';
import os from 'node:os';
import { createLogger } from '../logger.ts';
import { ownThreadId } from '../thread-cpu.ts';
import { errorToWire } from '../errors.ts';
import { loadSecretBox } from '../master-key.ts';
import type { Storage } from '../storage/types.ts';
import { PortStorage } from '../storage/sqlite/thread-storage.ts';
import { PostgresStorage } from '../storage/postgres/postgres-storage.ts';
import { MappingRegistry } from '../services/mapping-registry.ts';
import { EvaluationPool } from '../services/evaluation-pool.ts';
import { SubscriptionService } from '../services/subscriptions.ts';
import { CONNECTORS } from '../../connectors/index.ts';
import { createDeliveryStack } from './delivery-stack.ts';
import { WorkerCapacity } from './worker-capacity.ts';
import type { DeliveryStats, DeliveryThreadData, FromDelivery, ToDelivery } from './delivery-thread-protocol.ts';

/** How often the thread reports its measurements (attempts, storage calls, in flight) to the HTTP thread. */
const STATS_INTERVAL_MS = 100;

/**
 * The delivery thread: claims, templates, signing and sending run here, on an event loop of their
 * own, so ingest (HTTP, auth, validation, commits) and delivery never queue behind each other. It
 * builds the same delivery stack the HTTP thread would (delivery-stack.ts) over its own storage
 * client (a port to the SQLite storage thread, or its own PostgreSQL pool), its own evaluation
 * pool and subscription cache; the HTTP thread reaches it by message (delivery-thread-host.ts).
 */
export function runDeliveryThread(parent: MessagePort, data: DeliveryThreadData): void {
  const { config } = data;
  const send = (message: FromDelivery) => parent.postMessage(message);
  const logger = createLogger(config.logLevel);
  const stats: DeliveryStats = { attempts: [], storageCalls: [], sending: 0, saturated: null };
  const onCall = (method: string, seconds: number) => stats.storageCalls.push({ method, seconds });
  const storage: Storage = data.storagePort
    ? new PortStorage(data.storagePort, onCall)
    : new PostgresStorage({
      url: config.databaseUrl!,
      poolSize: config.databasePool,
      instanceId: data.instanceId ?? `${os.hostname()}/${process.pid}/delivery`,
      onError: (err) => logger.warn({ err: err.message }, 'database connection problem; retrying'),
    });
  const evaluationLimits = { timeoutMs: config.templateTimeoutMs, maxOutputBytes: config.templateMaxOutputBytes, maxSequence: config.templateMaxItems };
  // No logger: the HTTP thread's registry reads the same files and reports their problems once.
  const mappings = new MappingRegistry({ dir: config.mappingsDir, envAllowlist: config.templateEnvAllowlist, limits: evaluationLimits });
  const evaluations = new EvaluationPool({ threads: config.templateThreads, limits: evaluationLimits, heapMb: config.templateMemoryMb, inlineBudgetBytes: config.templateInlineBytes, logger, scriptPath: data.evaluatorScript, lazy: true });
  const connectors = new Map(CONNECTORS.map((c) => [c.name, c]));
  const subscriptions = new SubscriptionService({
    storage,
    secretBox: loadSecretBox(config.masterKey, config.dataDir).box,
    // Input is validated where it is written (the HTTP thread's API); the catalog's schemas are not loaded here.
    isKnownEventPattern: () => true,
    templates: mappings,
    connectors,
    checkDestination: async () => undefined,
    secretRotationMs: config.secretRotationHours * 3_600_000,
    onWork: () => engine.poke(),
  });
  const { engine, worker, close } = createDeliveryStack({
    config,
    storage,
    logger,
    now: Date.now,
    connectors,
    subscriptions,
    render: (mapping, envelope, view, owner) => evaluations.evaluate({ kind: 'template', source: mappings.resolve(mapping).source, event: envelope, bindings: mappings.bindings(view), owner }),
    emitOperational: (event, eventData) => send({ emit: event, data: eventData }),
    onSubscriptionsChanged: () => send({ subscriptionsChanged: true }),
    onAttempt: (attempt) => stats.attempts.push({ outcome: attempt.outcome, seconds: attempt.latency_ms / 1000 }),
    capacity: new WorkerCapacity(config.deliveryConcurrency, data.capacity),
  });

  let lastSaturated = '';
  const report = () => {
    const saturated = worker.saturatedSubscriptions();
    const key = saturated ? [...saturated].join(',') : '';
    const sending = engine.sendingCount;
    if (!stats.attempts.length && !stats.storageCalls.length && sending === stats.sending && key === lastSaturated) return;
    lastSaturated = key;
    send({ stats: { attempts: stats.attempts.splice(0), storageCalls: stats.storageCalls.splice(0), sending, saturated: saturated ? [...saturated] : null } });
    stats.sending = sending;
  };
  const reporter = setInterval(report, STATS_INTERVAL_MS);

  // Templates and evaluators load while the HTTP thread migrates the database; the worker
  // touches storage only once told to start.
  const loaded = (async () => {
    await mappings.load();
    await evaluations.ready();
    if (config.watchMappings) mappings.watch();
  })();
  const start = async () => {
    try {
      await loaded;
      await engine.start();
    } catch (err) {
      send({ startFailed: errorToWire(err) });
      return;
    }
    send({ ready: true, osThreadId: ownThreadId() });
  };

  parent.on('message', (message: ToDelivery) => {
    if ('start' in message) void start();
    else if ('notify' in message) engine.notify(message.notify);
    else if ('poke' in message) engine.poke();
    else if ('preclaimed' in message) engine.startPreclaimed(message.preclaimed);
    else if ('subscriptionsChanged' in message) subscriptions.invalidate();
    else if ('runNow' in message) {
      engine.runNow(message.runNow).then(
        (attempt) => send({ reply: message.call, attempt: attempt ?? null }),
        (err: unknown) => send({ reply: message.call, error: errorToWire(err) }),
      );
    } else if ('stop' in message) {
      void (async () => {
        await engine.stop();
        clearInterval(reporter);
        report();
        await close();
        await evaluations.close();
        await mappings.close();
        await storage.close();
        send({ stopped: true });
      })();
    }
  });
  loaded.catch(() => undefined); // reported when start awaits it
}
