import { loadConfig, ConfigError } from './config.ts';
import { createLogger } from './logger.ts';
import { createSluice } from './app.ts';
import { armExitDeadline } from './exit-deadline.ts';

/** How long past the grace period a shutdown may take (closing storage, threads) before it is forced. */
const SHUTDOWN_MARGIN_MS = 5_000;

/** Process entry: configuration, start, and a graceful drain on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sluice: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  // A configuration problem (including a port in use) is one line, not a stack trace.
  const exitOnConfigError = (err: unknown): never => {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`sluice: configuration error: ${err.message}\n`);
    process.exit(2);
  };
  const sluice = await createSluice(config, { logger }).catch(exitOnConfigError);
  await sluice.start().catch(exitOnConfigError);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    // Armed before anything else: whatever blocks the stop or the exit itself, the process ends.
    const deadlineMs = config.shutdownGraceSeconds * 1000 + SHUTDOWN_MARGIN_MS;
    armExitDeadline(deadlineMs, () => logger.error({ deadline_ms: deadlineMs }, 'shutdown did not finish in time; forcing exit'));
    logger.info({ signal }, 'shutting down: finishing in-flight deliveries');
    try {
      await sluice.stop();
      logger.info('stopped cleanly');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'error during shutdown');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`sluice: failed to start: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
