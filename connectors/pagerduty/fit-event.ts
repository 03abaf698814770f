/**
 * Keeps an Events API v2 event within PagerDuty's size limit. PagerDuty refuses an event over
 * 512 KB, while Sluice accepts events up to 1 MB and the default template sends the event's
 * whole `data` as `custom_details`: cutting there, largest field first, means an alert is never
 * refused for its size. What was cut is listed in `custom_details._sluice_cut`.
 */

/** 512 KB, read as 512,000 bytes (the stricter of KB and KiB), of the JSON body. */
export const PAGERDUTY_MAX_EVENT_BYTES = 512_000;
/** The key of the note that lists the cuts, inside custom_details. */
export const CUT_NOTE_KEY = '_sluice_cut';
/** Room kept for the note itself while cutting. */
const NOTE_ALLOWANCE_BYTES = 4_096;

type Container = Record<string, unknown> | unknown[];

/** Below this, a field is not worth a marker: its container loses trailing fields instead. */
const SMALL_FIELD_BYTES = 200;

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
const isContainer = (value: unknown): value is Container => typeof value === 'object' && value !== null;
const isPlainObject = (value: unknown): value is Record<string, unknown> => isContainer(value) && !Array.isArray(value);
const bytes = (n: number) => n.toLocaleString('en-US');

/** The child of a container that serializes largest, with its key. */
function largestChild(node: Container): { key: string | number; size: number } | undefined {
  let best: { key: string | number; size: number } | undefined;
  const entries: [string | number, unknown][] = Array.isArray(node) ? node.map((v, i) => [i, v]) : Object.entries(node);
  for (const [key, value] of entries) {
    if (key === CUT_NOTE_KEY) continue;
    const size = jsonBytes(value);
    if (!best || size > best.size) best = { key, size };
  }
  return best;
}

/** Bytes a code point takes inside a JSON string: escapes for quotes, backslashes, controls and lone surrogates. */
function jsonCharBytes(code: number): number {
  if (code === 0x22 || code === 0x5c) return 2;
  if (code < 0x20) return [0x08, 0x09, 0x0a, 0x0c, 0x0d].includes(code) ? 2 : 6;
  if (code < 0x80) return 1;
  if (code < 0x800) return 2;
  if (code >= 0xd800 && code <= 0xdfff) return 6;
  return code < 0x10000 ? 3 : 4;
}

/** The longest prefix of `text` (whole code points) whose JSON form takes at most `maxBytes`, in one pass. */
function prefixWithin(text: string, maxBytes: number): string {
  let bytes = 2; // the quotes
  let end = 0;
  while (end < text.length) {
    const code = text.codePointAt(end)!;
    const width = jsonCharBytes(code);
    if (bytes + width > maxBytes) break;
    bytes += width;
    end += code > 0xffff ? 2 : 1;
  }
  return text.slice(0, end);
}

/** Removes fields from the end of a container of many small ones until `excess` bytes are gone. */
function dropTrailing(node: Container, excess: number): number {
  let removed = 0;
  let freed = 0;
  if (Array.isArray(node)) {
    while (node.length > 0 && freed <= excess) {
      freed += jsonBytes(node.pop()) + 1;
      removed++;
    }
    return removed;
  }
  for (const key of Object.keys(node).reverse()) {
    if (freed > excess) break;
    if (key === CUT_NOTE_KEY) continue;
    freed += jsonBytes(key) + jsonBytes(node[key]) + 2;
    delete node[key];
    removed++;
  }
  return removed;
}

function setChild(node: Container, key: string | number, value: unknown): void {
  if (Array.isArray(node)) node[key as number] = value;
  else Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Cuts `excess` bytes or more out of `details` in place, from its largest field: a string is
 * shortened (its start kept, ending in "…"), an array or object loses its last parts, anything
 * else is replaced by a marker. A field is followed down into its largest part while that part
 * alone holds the excess, so a huge transcript inside `data.call` is cut rather than the whole
 * call. Returns what was cut.
 */
function cutLargest(details: Container, excess: number, path: string): string {
  let node: Container = details;
  let where = path;
  for (;;) {
    const child = largestChild(node);
    if (!child) return '';
    const value = (node as Record<string | number, unknown>)[child.key];
    const childPath = Array.isArray(node) ? `${where}[${child.key}]` : `${where}.${String(child.key)}`;
    if (isContainer(value)) {
      const inner = largestChild(value);
      if (inner && inner.size > excess) {
        node = value;
        where = childPath;
        continue;
      }
      if (inner && child.size >= SMALL_FIELD_BYTES) {
        // Every part is smaller than the excess: keep the first ones (a transcript's start).
        const count = Array.isArray(value) ? value.length : Object.keys(value).length;
        return `${childPath}: its last ${dropTrailing(value, excess)} of ${count} fields removed`;
      }
    }
    if (child.size < SMALL_FIELD_BYTES) {
      const count = Array.isArray(node) ? node.length : Object.keys(node).length;
      const removed = dropTrailing(node, excess);
      return `${where}: its last ${removed} of ${count} fields removed`;
    }
    if (typeof value === 'string' && child.size > excess + 64) {
      const kept = `${prefixWithin(value, child.size - excess - 64)}…`;
      setChild(node, child.key, kept);
      return `${childPath}: cut from ${bytes(child.size)} to ${bytes(jsonBytes(kept))} bytes`;
    }
    setChild(node, child.key, `[removed by Sluice: ${bytes(child.size)} bytes]`);
    return `${childPath}: removed (${bytes(child.size)} bytes)`;
  }
}

/**
 * The event as it goes to PagerDuty, its custom_details cut until the whole body fits in
 * `maxBytes`. An event that fits is returned as is. Throws when even an empty custom_details
 * would not fit (a template that put something huge elsewhere), naming the cause.
 */
export function fitEvent(event: Record<string, unknown>, maxBytes = PAGERDUTY_MAX_EVENT_BYTES): Record<string, unknown> {
  const original = jsonBytes(event);
  if (original <= maxBytes) return event;
  const payload = event.payload as Record<string, unknown>;
  // A copy: the template's output (the delivery log shows it) stays as it was.
  const raw: unknown = structuredClone(payload.custom_details);
  const details: Record<string, unknown> = isPlainObject(raw) ? raw : { value: raw };
  const fitted = { ...event, payload: { ...payload, custom_details: details } };
  const cuts: string[] = [];
  const target = maxBytes - NOTE_ALLOWANCE_BYTES;
  for (let size = jsonBytes(fitted); size > target && cuts.length < 1_000; size = jsonBytes(fitted)) {
    const cut = cutLargest(details, size - target, 'custom_details');
    if (!cut) break;
    cuts.push(cut);
  }
  const note = {
    reason: `PagerDuty accepts events up to ${bytes(maxBytes)} bytes; this one was ${bytes(original)}, so Sluice cut its largest fields. The whole event is in Sluice.`,
    cuts: cuts.slice(0, 20),
  };
  setChild(details, CUT_NOTE_KEY, note);
  if (jsonBytes(fitted) > maxBytes) {
    throw new Error(`the event is over PagerDuty's ${bytes(maxBytes)} bytes even with custom_details cut; check what the template puts in payload, links and images`);
  }
  return fitted;
}
