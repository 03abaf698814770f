import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Field names pino blanks out wherever they appear, so a secret that slips into a
 * log call is never written.
 */
const REDACT_PATHS = [
  'secret', 'signing_secret', 'password', 'token', 'key', 'authorization', 'Authorization',
  '*.secret', '*.signing_secret', '*.password', '*.token', '*.authorization', '*.Authorization',
  'headers.authorization', 'req.headers.authorization', 'auth.password', 'auth.token', 'auth.value',
];

/** Log output waiting for a reader beyond this is dropped (and counted), not kept in memory. */
export const MAX_PENDING_LOG_BYTES = 1024 * 1024;

let processStdout: pino.DestinationStream | undefined;

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  // One destination for process.stdout however many loggers there are (tests make many).
  destination ??= processStdout ??= stdoutDestination(process.stdout);
  return pino({ level, base: undefined, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, destination);
}

/**
 * Log lines for `stream` (stdout) that never block and never hold the process. pino's own
 * default (sonic-boom) flushes synchronously on exit and retries a broken pipe forever, so a
 * gone log reader used to hang process.exit. Here a line is handed to the stream's own
 * non-blocking write; after a write error (EPIPE: the reader went away) logging stops, and
 * while nobody reads, lines past MAX_PENDING_LOG_BYTES are dropped and counted.
 */
export function stdoutDestination(stream: NodeJS.WritableStream & { writableLength: number }): pino.DestinationStream {
  let broken = false;
  let dropped = 0;
  stream.on('error', () => {
    broken = true;
  });
  stream.on('drain', () => {
    if (!dropped || broken) return;
    stream.write(`${JSON.stringify({ level: 40, time: Date.now(), msg: `${dropped} log lines dropped: the log output was not being read` })}\n`);
    dropped = 0;
  });
  return {
    write(line: string) {
      if (broken) return;
      if (stream.writableLength >= MAX_PENDING_LOG_BYTES) {
        dropped++;
        return;
      }
      stream.write(line);
    },
  };
}
