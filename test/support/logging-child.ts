/**
 * A child process that logs through src/logger.ts the way the gateway does, for tests of what
 * happens when nobody reads its stdout. Waits for a line on stdin (the test has done what it
 * wanted to stdout by then), logs `count` lines of `bytes` bytes in batches (yielding between
 * them like a server), reports on stderr, then calls process.exit(0).
 */
import { createLogger } from '../../src/logger.ts';

const [count, bytes] = process.argv.slice(2).map(Number);
const logger = createLogger('info');
const payload = 'x'.repeat(bytes);
let maxPending = 0;
let eventLoopTurns = 0;

process.stdin.once('data', async () => {
  const ticker = setInterval(() => eventLoopTurns++, 1);
  for (let i = 0; i < count; i++) {
    logger.info({ i, payload }, 'a line');
    maxPending = Math.max(maxPending, process.stdout.writableLength);
    if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
  }
  clearInterval(ticker);
  process.stderr.write(`${JSON.stringify({ maxPending, eventLoopTurns })}\n`);
  process.exit(0);
});
