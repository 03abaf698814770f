// Preloaded into a gateway process (NODE_OPTIONS=--import) by shutdown tests: an exit handler that
// never returns, the way a log flush retrying a broken pipe used to, so only a deadline that lives
// outside the main thread can end the process.
import { isMainThread } from 'node:worker_threads';

if (isMainThread) process.on('exit', () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0));
