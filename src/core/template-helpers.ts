/**
 * The functions every mapping template and filter can call besides JSONata's own:
 * `$formatDuration`, `$truncate`, `$slackEscape`, `$isoToUnixMs`. Stateless, so they are
 * registered once per compiled expression; `$env` and `$subscription` change per
 * evaluation and are passed as bindings instead (see mapping.ts).
 *
 * JSONata convention: an undefined argument (a missing field) gives an undefined result,
 * so `$truncate(data.missing, 10)` leaves the key out of an object rather than failing.
 */
import { formatDuration } from './duration.ts';

export interface TemplateHelper {
  name: string;
  implementation: (...args: any[]) => unknown;
  /** JSONata function signature: argument types checked before the call. */
  signature: string;
}

/** `$formatDuration(180)` -> `3m`; seconds in, the same human form the gateway uses elsewhere. */
export function formatDurationSeconds(seconds: number | undefined): string | undefined {
  if (seconds === undefined) return undefined;
  return formatDuration(seconds * 1000);
}

/**
 * At most `maxLength` Unicode code points, suffix included; the suffix marks a cut.
 * When the suffix alone does not fit, the text is cut hard without it.
 */
export function truncate(text: string | undefined, maxLength: number, suffix = '…'): string | undefined {
  if (text === undefined) return undefined;
  if (!Number.isInteger(maxLength) || maxLength < 0) {
    throw new Error(`$truncate: the maximum length must be a whole number >= 0, got ${maxLength}`);
  }
  const chars = Array.from(text);
  if (chars.length <= maxLength) return text;
  const suffixChars = Array.from(suffix);
  if (suffixChars.length >= maxLength) return chars.slice(0, maxLength).join('');
  return chars.slice(0, maxLength - suffixChars.length).join('') + suffix;
}

/** Slack mrkdwn treats &, < and > as control characters; everything else passes as is. */
export function slackEscape(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// Date only, or date and time with optional seconds, fraction and zone. Date.parse alone
// would also accept forms like "March 7" whose meaning depends on the host.
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/** `2026-03-15T14:30:00Z` -> 1773585000000. A string that is not ISO 8601 is an error. */
export function isoToUnixMs(iso: string | undefined): number | undefined {
  if (iso === undefined) return undefined;
  const ms = ISO_8601.test(iso) ? Date.parse(iso) : Number.NaN;
  if (Number.isNaN(ms)) throw new Error(`$isoToUnixMs: ${JSON.stringify(iso)} is not an ISO 8601 timestamp`);
  return ms;
}

export const TEMPLATE_HELPERS: readonly TemplateHelper[] = [
  { name: 'formatDuration', implementation: formatDurationSeconds, signature: '<n-:s>' },
  { name: 'truncate', implementation: truncate, signature: '<s-ns?:s>' },
  { name: 'slackEscape', implementation: slackEscape, signature: '<s-:s>' },
  { name: 'isoToUnixMs', implementation: isoToUnixMs, signature: '<s-:n>' },
];

/** The variables a template may read with `$env(name)`: only allow-listed names, never more. */
export function pickTemplateEnv(
  allowlist: readonly string[],
  source: Readonly<Record<string, string | undefined>>,
): Readonly<Record<string, string>> {
  const picked: Record<string, string> = {};
  for (const name of allowlist) {
    const value = source[name];
    if (typeof value === 'string') picked[name] = value;
  }
  return Object.freeze(picked);
}
