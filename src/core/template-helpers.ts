/**
 * The functions every mapping template and filter can call besides JSONata's own:
 * `$formatDuration`, `$truncate`, `$slackEscape`, `$isoToUnixMs`, `$flatten`. Stateless, so they are
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

const graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' });

/** Code points before the cut that are segmented into graphemes: far more than any emoji has. */
const GRAPHEME_WINDOW = 64;

/**
 * The first `max` code points of `points`, less a grapheme (an emoji with its modifiers or
 * ZWJ parts) the cut would split. Only a window before the cut is segmented: segmenting the
 * whole text would cost templates far more than the cut itself.
 */
function wholeGraphemes(points: string[], max: number): string {
  const start = Math.max(0, max - GRAPHEME_WINDOW);
  let kept = points.slice(0, start).join('');
  let count = start;
  for (const { segment } of graphemes.segment(points.slice(start, max + GRAPHEME_WINDOW).join(''))) {
    count += Array.from(segment).length;
    if (count > max) break;
    kept += segment;
  }
  return kept;
}

/**
 * At most `maxLength` Unicode code points, suffix included; the suffix marks a cut. Code
 * points are what Slack's own SDK counts for its "characters" limits. A cut never splits
 * a grapheme, so no emoji is left half (a family without its last member, a flag's first
 * letter). When the suffix alone does not fit, the text is cut hard without it.
 */
export function truncate(text: string | undefined, maxLength: number, suffix = '…'): string | undefined {
  if (text === undefined) return undefined;
  if (!Number.isInteger(maxLength) || maxLength < 0) {
    throw new Error(`$truncate: the maximum length must be a whole number >= 0, got ${maxLength}`);
  }
  const points = Array.from(text);
  if (points.length <= maxLength) return text;
  const suffixLength = Array.from(suffix).length;
  if (suffixLength >= maxLength) return wholeGraphemes(points, maxLength);
  return wholeGraphemes(points, maxLength - suffixLength) + suffix;
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

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Defines an own property even for names like `__proto__`, which plain assignment would not. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function listItemText(item: unknown): string {
  if (item === null || item === undefined) return '';
  return typeof item === 'object' ? JSON.stringify(item) : String(item);
}

/**
 * `$flatten(obj, "_")`: one level of keys, for destinations that cannot map nested JSON
 * (Zapier collapses nested objects and arrays on its own, less predictably).
 * - nested objects join their keys with `separator`: `{call: {id: 1}}` -> `{call_id: 1}`;
 * - arrays of objects stay arrays, each item flattened the same way (Zapier's line items);
 * - other arrays become one string joined with `listSeparator` (objects inside as JSON);
 *   an empty array becomes "";
 * - scalars and null stay as they are; an empty object adds no key.
 * Should two paths flatten to one name (`a_b` and `a.b`), the later one wins.
 */
export function flatten(value: Record<string, unknown> | undefined, separator = '_', listSeparator = ','): Record<string, Json> | undefined {
  if (value === undefined) return undefined;
  const out: Record<string, Json> = {};
  const walk = (node: unknown, prefix: string): void => {
    if (typeof node === 'function' || node === undefined) return;
    if (isPlainObject(node)) {
      for (const [key, child] of Object.entries(node)) walk(child, prefix ? `${prefix}${separator}${key}` : key);
    } else if (Array.isArray(node)) {
      const lineItems = node.length > 0 && node.every(isPlainObject);
      setOwn(out, prefix, lineItems ? node.map((item) => flatten(item, separator, listSeparator)!) : node.map(listItemText).join(listSeparator));
    } else {
      setOwn(out, prefix, node as Json);
    }
  };
  walk(value, '');
  return out;
}

export const TEMPLATE_HELPERS: readonly TemplateHelper[] = [
  { name: 'flatten', implementation: flatten, signature: '<o-s?s?:o>' },
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
