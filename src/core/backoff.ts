import type { ErrorDetail } from '../errors.ts';
import { parseDuration } from './duration.ts';

/**
 * Retry policy of a subscription, as the API takes it. `schedule` is the delay before each
 * attempt, the first entry normally `0s`: `["0s", "1m", "5m", "15m", "1h"]` is 5 attempts.
 * `max_attempts: N` keeps the default curve and stops after N attempts.
 */
export interface RetryPolicy {
  schedule?: (number | string)[];
  max_attempts?: number;
}

/**
 * The default curve: 10 attempts, exponential-ish, over about a day.
 * Delays add up to 0 + 30s + 2m + 10m + 30m + 1h + 2h + 4h + 8h + 8h = 23h 42m 30s,
 * so the last attempt happens about 23.7 hours after the event (±20% jitter per step).
 */
export const DEFAULT_SCHEDULE: readonly string[] = Object.freeze(['0s', '30s', '2m', '10m', '30m', '1h', '2h', '4h', '8h', '8h']);

export const MAX_ATTEMPTS = 50;
/** One scheduled delay longer than this is almost certainly a typo (`30d` for `30s`). */
export const MAX_SCHEDULED_DELAY_MS = 7 * 86_400_000;
/**
 * A receiver's Retry-After is honoured up to one hour: beyond that a buggy or hostile
 * receiver could park deliveries for days, and the default curve's later gaps (2h, 4h, 8h)
 * already give a struggling destination room to recover.
 */
export const MAX_RETRY_AFTER_MS = 3_600_000;
/** Each delay is spread by up to ±20% so retries of a burst do not arrive in lockstep. */
export const JITTER_RATIO = 0.2;

const DEFAULT_SCHEDULE_MS: readonly number[] = DEFAULT_SCHEDULE.map(parseDuration);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every problem in a retry policy, each with its JSON path; empty when the policy is valid. */
export function validateRetryPolicy(input: unknown, path = '$.retry'): ErrorDetail[] {
  if (!isPlainObject(input)) {
    return [{ path, message: 'must be an object with "schedule" (a list of delays) or "max_attempts" (a number)' }];
  }
  const details: ErrorDetail[] = [];
  for (const key of Object.keys(input)) {
    if (key !== 'schedule' && key !== 'max_attempts') {
      details.push({ path: `${path}.${key}`, message: 'is not a retry option; use "schedule" or "max_attempts"' });
    }
  }
  const hasSchedule = input.schedule !== undefined;
  const hasMax = input.max_attempts !== undefined;
  if (hasSchedule && hasMax) {
    details.push({ path, message: 'give either "schedule" or "max_attempts", not both (max_attempts applies to the default curve)' });
  }
  if (hasSchedule) details.push(...validateSchedule(input.schedule, `${path}.schedule`));
  if (hasMax) {
    const max = input.max_attempts;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > MAX_ATTEMPTS) {
      details.push({ path: `${path}.max_attempts`, message: `must be a whole number from 1 to ${MAX_ATTEMPTS}` });
    }
  }
  return details;
}

function validateSchedule(schedule: unknown, path: string): ErrorDetail[] {
  if (!Array.isArray(schedule)) {
    return [{ path, message: 'must be a list of delays, e.g. ["0s", "30s", "5m", "1h"]' }];
  }
  if (schedule.length === 0) return [{ path, message: 'must list at least one delay (the first is the delay before the first attempt, normally "0s")' }];
  if (schedule.length > MAX_ATTEMPTS) return [{ path, message: `has ${schedule.length} entries; at most ${MAX_ATTEMPTS} attempts are allowed` }];
  const details: ErrorDetail[] = [];
  schedule.forEach((entry, i) => {
    const at = `${path}[${i}]`;
    if (typeof entry === 'number') {
      if (!Number.isFinite(entry)) details.push({ path: at, message: 'must be a finite number of seconds' });
      else if (entry < 0) details.push({ path: at, message: 'must not be negative' });
      else if (entry * 1000 > MAX_SCHEDULED_DELAY_MS) details.push({ path: at, message: 'must be at most 7 days' });
      return;
    }
    if (typeof entry !== 'string') {
      details.push({ path: at, message: 'must be a number of seconds or a duration string like "30s", "5m", "1h"' });
      return;
    }
    try {
      if (parseDuration(entry) > MAX_SCHEDULED_DELAY_MS) details.push({ path: at, message: 'must be at most 7 days' });
    } catch (err) {
      details.push({ path: at, message: (err as Error).message });
    }
  });
  return details;
}

/**
 * The delays (ms) before each attempt for a policy, which must already be valid.
 * No policy: the default curve. `max_attempts: N`: the first N delays of the default curve,
 * repeating its last delay when N is longer than the curve.
 */
export function resolveSchedule(policy?: RetryPolicy | null): number[] {
  if (policy?.schedule !== undefined) return policy.schedule.map(parseDuration);
  if (policy?.max_attempts !== undefined) {
    const n = policy.max_attempts;
    const last = DEFAULT_SCHEDULE_MS[DEFAULT_SCHEDULE_MS.length - 1];
    return Array.from({ length: n }, (_, i) => DEFAULT_SCHEDULE_MS[i] ?? last);
  }
  return [...DEFAULT_SCHEDULE_MS];
}

export interface NextAttemptInput {
  /** From resolveSchedule: the delay before each attempt. */
  schedule: readonly number[];
  /** Attempts already made, including the one that just failed. */
  attemptsMade: number;
  /** A number in [0, 1); injected so tests are deterministic. */
  random?: () => number;
  /** The receiver's Retry-After (or a connector's floor), in ms. */
  retryAfterMs?: number;
}

/**
 * The wait (ms) before the next attempt, or null when the schedule is exhausted.
 * The scheduled delay gets ±20% jitter; a larger Retry-After wins, clamped to MAX_RETRY_AFTER_MS.
 */
export function nextAttemptDelay({ schedule, attemptsMade, random = Math.random, retryAfterMs }: NextAttemptInput): number | null {
  if (attemptsMade >= schedule.length) return null;
  const base = schedule[Math.max(0, attemptsMade)];
  const spread = (random() * 2 - 1) * JITTER_RATIO; // in [-0.2, 0.2)
  const jittered = Math.max(0, Math.round(base * (1 + spread)));
  if (retryAfterMs === undefined || !Number.isFinite(retryAfterMs)) return jittered;
  const asked = Math.min(Math.max(0, retryAfterMs), MAX_RETRY_AFTER_MS);
  return Math.max(jittered, Math.round(asked));
}

const HTTP_DATE_FORMATS = [
  /^[a-z]{3}, \d{2} [a-z]{3} \d{4} \d{2}:\d{2}:\d{2} gmt$/i, // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
  /^[a-z]{6,9}, \d{2}-[a-z]{3}-\d{2} \d{2}:\d{2}:\d{2} gmt$/i, // obsolete RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
  /^[a-z]{3} [a-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/i, // obsolete asctime: Sun Nov  6 08:49:37 1994
];

/**
 * A Retry-After header in ms from `now`: delta-seconds or an HTTP-date. A date in the past
 * gives 0; anything else (missing, junk, negative numbers) gives undefined.
 */
export function parseRetryAfter(headerValue: string | undefined, now: Date): number | undefined {
  if (headerValue === undefined) return undefined;
  const text = headerValue.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!HTTP_DATE_FORMATS.some((format) => format.test(text))) return undefined;
  // asctime has no zone; it is GMT by definition.
  const when = Date.parse(text.endsWith('GMT') || text.endsWith('gmt') ? text : `${text} GMT`);
  if (Number.isNaN(when)) return undefined;
  return Math.max(0, when - now.getTime());
}

export type StatusClass = 'success' | 'retry' | 'fail' | 'gone';

/**
 * What a generic webhook's response status means. 2xx success; 408, 429 and 5xx are worth
 * retrying; 410 Gone disables the subscription; everything else fails at once, 3xx included
 * because redirects are never followed (the attempt records the Location).
 */
export function classifyStatus(status: number): StatusClass {
  if (status >= 200 && status <= 299) return 'success';
  if (status === 408 || status === 429 || (status >= 500 && status <= 599)) return 'retry';
  if (status === 410) return 'gone';
  return 'fail';
}
