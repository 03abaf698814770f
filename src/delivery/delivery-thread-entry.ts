import { parentPort, workerData } from 'node:worker_threads';
import { runDeliveryThread } from './delivery-thread.ts';
import type { DeliveryThreadData } from './delivery-thread-protocol.ts';

/** The bundled script the delivery thread runs (see delivery-thread-host.ts). */
runDeliveryThread(parentPort!, workerData as DeliveryThreadData);
