/**
 * Subscription event patterns: an exact event name (`call.ended`), `*` for every event,
 * or a prefix wildcard (`call.*`) that matches any name under that prefix, at any depth
 * (`call.ended`, `call.a.b`), but never the bare prefix (`call`) or a longer word (`callx.y`).
 */
export function eventMatches(pattern: string, eventName: string): boolean {
  if (pattern === '*') return true;
  const prefix = wildcardPrefix(pattern);
  if (prefix === undefined) return pattern === eventName;
  return eventName.length > prefix.length && eventName.startsWith(prefix);
}

/**
 * `call.*` -> `call.` (the part every match starts with, dot included); undefined when the
 * pattern is not a prefix wildcard. A `*` anywhere else is not a wildcard, so such a
 * pattern can only match an identical name (and the catalog has none).
 */
export function wildcardPrefix(pattern: string): string | undefined {
  if (!pattern.endsWith('.*')) return undefined;
  const prefix = pattern.slice(0, -1);
  return prefix.length > 1 && !prefix.includes('*') ? prefix : undefined;
}
