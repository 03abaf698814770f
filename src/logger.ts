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

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: undefined, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, destination);
}
