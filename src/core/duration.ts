/**
 * Durations as users write them in retry schedules and settings: a number of seconds, or a
 * string of `<number><unit>` parts (`30s`, `5m`, `1.5h`, `2m30s`, `1h 30m`) with units
 * ms, s, m, h, d.
 */

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

// `ms` must come before `m` so `500ms` is not read as 500 minutes followed by junk.
const PART = /(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)/gy;
const BARE_SECONDS = /^\d+(?:\.\d+)?$/;

function invalid(value: unknown, why: string): Error {
  return new Error(
    `invalid duration ${JSON.stringify(value)}: ${why}; use a number of seconds or a string like "30s", "5m", "1.5h" or "2m30s" (units ms, s, m, h, d)`,
  );
}

/** Milliseconds (rounded to a whole number) for a duration; numbers are seconds. Throws on junk. */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalid(value, 'not a finite number');
    if (value < 0) throw invalid(value, 'must not be negative');
    return Math.round(value * 1000);
  }
  if (typeof value !== 'string') throw invalid(value, 'not a number or a string');
  const text = value.trim().toLowerCase();
  if (text === '') throw invalid(value, 'empty');
  const total = BARE_SECONDS.test(text) ? Number(text) * 1000 : sumOfParts(value, text);
  if (!Number.isFinite(total)) throw invalid(value, 'too large');
  return Math.round(total);
}

/** Milliseconds of `<number><unit>` parts ("2m30s", "1h 30m"); Infinity when too large for a number. */
function sumOfParts(value: string, text: string): number {
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const at = PART.lastIndex;
    const match = PART.exec(text);
    if (!match) throw invalid(value, `unexpected "${text.slice(at)}"`);
    total += Number(match[1]) * UNIT_MS[match[2]];
    // Spaces between parts are fine ("2m 30s", the form formatDuration writes).
    while (text[PART.lastIndex] === ' ') PART.lastIndex++;
  }
  return total;
}

const FORMAT_UNITS: [string, number][] = [
  ['d', UNIT_MS.d],
  ['h', UNIT_MS.h],
  ['m', UNIT_MS.m],
  ['s', UNIT_MS.s],
];

/**
 * Human form of a duration: `2m 30s`, `1h 5m`, `45s`, `0s`; below a second, `250ms`.
 * At a second or more, the sub-second rest is rounded away.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new Error(`formatDuration needs a finite number of milliseconds, got ${ms}`);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  const wholeMs = Math.round(ms);
  if (wholeMs > 0 && wholeMs < 1000) return `${wholeMs}ms`;
  let rest = Math.round(ms / 1000) * 1000;
  const parts: string[] = [];
  for (const [unit, size] of FORMAT_UNITS) {
    const count = Math.floor(rest / size);
    if (count > 0) {
      parts.push(`${count}${unit}`);
      rest -= count * size;
    }
  }
  return parts.length ? parts.join(' ') : '0s';
}

/**
 * A span in words, in the largest of days, hours or seconds that fits, to one decimal: "5 days",
 * "6 hours", "0.9 seconds" (the disable reason stays readable at any SLUICE_DISABLE_AFTER_DAYS).
 */
export function describeSpan(ms: number): string {
  const [unit, size] = ms >= UNIT_MS.d ? ['day', UNIT_MS.d] as const : ms >= UNIT_MS.h ? ['hour', UNIT_MS.h] as const : ['second', UNIT_MS.s] as const;
  const count = Math.round((ms / size) * 10) / 10;
  return `${count} ${unit}${count === 1 ? '' : 's'}`;
}
