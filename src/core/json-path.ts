/**
 * Where a validation error points, as the JSONPath our error details use (`$.events[0]`,
 * `$.data.call.id`, `$.data["odd key"]`). ajv reports JSON Pointers (`/events/0`); every
 * validator (subscriptions, hooks, the event catalog) turns them into paths here.
 */

/** `/call/id` -> ['call', 'id'], undoing JSON Pointer escapes. */
export function pointerSegments(pointer: string): string[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Keys written with a dot; anything else is bracket-quoted. */
const PLAIN_KEY = /^[^.[\]"'\s]+$/;

/**
 * Segments -> JSONPath below `root`. With the validated `data`, it walks alongside, so a numeric
 * segment becomes `[n]` only where the value really is an array (an object may have a key "0");
 * without it, numeric segments are read as indexes.
 */
export function jsonPathOf(segments: string[], options: { root?: string; data?: unknown } = {}): string {
  let out = options.root ?? '$';
  const walk = 'data' in options;
  let node: unknown = options.data;
  for (const segment of segments) {
    const index = /^\d+$/.test(segment) && (walk ? Array.isArray(node) : true);
    if (index) out += `[${segment}]`;
    else if (PLAIN_KEY.test(segment)) out += `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[segment] : undefined;
  }
  return out;
}
