import type { ResponseInfo } from '../../src/delivery/connector.ts';

/**
 * Reading HubSpot's answers: ids out of success bodies, reasons out of error bodies.
 * HubSpot says to treat every field of an error body as optional, and the engine hands
 * connectors at most the first 4 KB of a body, so a JSON parse may fail on a long answer:
 * ids then come from a pattern match on the text.
 */

/** HubSpot's error body: `{status, message, correlationId, category, errors: [{message, in}]}`; a 429 adds policyName. */
interface ErrorBody {
  message?: unknown;
  category?: unknown;
  correlationId?: unknown;
  policyName?: unknown;
  errors?: unknown;
}

const MAX_REASON_CHARS = 1_000;

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() ? value.trim() : undefined;
}

function idText(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return text(value);
}

/** The messages of an `errors[]` list (each `{message}`), de-duplicated. */
function errorMessages(errors: unknown): string[] {
  if (!Array.isArray(errors)) return [];
  const messages = errors.map((e) => text(asObject(e)?.message)).filter((m): m is string => m !== undefined);
  return [...new Set(messages)];
}

/**
 * HubSpot's own words for an error answer: `HTTP 400 VALIDATION_ERROR: <message> (<errors[].message>; …)
 * [correlationId …]`, or the start of the raw body when it is not HubSpot's JSON.
 */
export function describeError(response: ResponseInfo): string {
  const body = asObject(parseJson(response.body)) as ErrorBody | undefined;
  const head = `HTTP ${response.status}${text(body?.category) ? ` ${text(body?.category)}` : ''}`;
  if (!body) {
    const raw = response.body.trim();
    return raw ? `${head}: ${raw.slice(0, 300)}` : head;
  }
  const message = text(body.message);
  const details = errorMessages(body.errors).filter((m) => m !== message);
  let reason = head;
  if (message) reason += `: ${message}`;
  if (details.length) reason += ` (${details.join('; ')})`;
  if (text(body.correlationId)) reason += ` [correlationId ${text(body.correlationId)}]`;
  return reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS - 1)}…` : reason;
}

/** A 429's `policyName` (`TEN_SECONDLY_ROLLING`, `DAILY`, …); a message naming the daily limit counts as DAILY. */
export function rateLimitPolicy(response: ResponseInfo): string | undefined {
  const body = asObject(parseJson(response.body));
  const policy = text(body?.policyName);
  if (policy) return policy.toUpperCase();
  return /daily limit/i.test(text(body?.message) ?? response.body) ? 'DAILY' : undefined;
}

/** The contact id in a 409 "Contact already exists. Existing ID: 12345". */
export function existingContactId(response: ResponseInfo): string | undefined {
  const message = text(asObject(parseJson(response.body))?.message) ?? response.body;
  return /Existing ID:\s*(\d+)/i.exec(message)?.[1];
}

/** A single object's id: `{"id": "12345", "properties": {...}}` (create, update). */
export function objectId(response: ResponseInfo): string | undefined {
  const body = asObject(parseJson(response.body));
  if (body) return idText(body.id);
  return /^\s*\{\s*"id"\s*:\s*"([^"]+)"/.exec(response.body)?.[1];
}

/** The first result's id in a batch or search answer: `{"results": [{"id": "12345", ...}]}`. */
function firstResultId(response: ResponseInfo): string | undefined {
  const body = asObject(parseJson(response.body));
  if (body) {
    const results = Array.isArray(body.results) ? body.results : [];
    return idText(asObject(results[0])?.id);
  }
  return /"results"\s*:\s*\[\s*\{\s*"id"\s*:\s*"([^"]+)"/.exec(response.body)?.[1];
}

export type UpsertOutcome = { contactId: string } | { error: string };

/**
 * A batch upsert's answer: the contact id from `results[0].id`, or why there is none. With
 * no result, a 207 (multi-status), `numErrors` > 0 or an `errors[]` entry is the input's
 * failure, reported with HubSpot's messages.
 */
export function upsertOutcome(response: ResponseInfo): UpsertOutcome {
  // One input per request: a result for it is its success, whatever else the answer says.
  const contactId = firstResultId(response);
  if (contactId) return { contactId };
  const body = asObject(parseJson(response.body));
  const errors = Array.isArray(body?.errors) ? body.errors : [];
  const failed = response.status === 207 || errors.length > 0 || (typeof body?.numErrors === 'number' && body.numErrors > 0);
  if (failed) {
    const first = asObject(errors[0]);
    const messages = [text(first?.message), ...errorMessages(first?.errors)].filter((m): m is string => m !== undefined);
    const category = text(first?.category);
    const what = messages.length ? [...new Set(messages)].join('; ') : 'no error message given';
    return { error: `HubSpot did not upsert the contact (HTTP ${response.status}${category ? ` ${category}` : ''}): ${what}` };
  }
  return { error: `HubSpot answered the contact upsert with HTTP ${response.status} but no results[0].id` };
}

export type SearchOutcome = { id: string } | { notFound: true } | { error: string };

/** A search's answer (contacts, companies): the first match, none, or an unreadable answer. */
export function searchOutcome(response: ResponseInfo, what = 'contact'): SearchOutcome {
  const id = firstResultId(response);
  if (id) return { id };
  const body = asObject(parseJson(response.body));
  if (body && Array.isArray(body.results) && body.results.length === 0) return { notFound: true };
  return { error: `HubSpot answered the ${what} search with HTTP ${response.status} but neither results nor an empty list` };
}

export type NoteSearchOutcome = { noteId: string } | { notFound: true } | { error: string };

/** A note search's answer: the note whose body carries `marker` (the event's), if any. */
export function markedNote(response: ResponseInfo, marker: string): NoteSearchOutcome {
  const body = asObject(parseJson(response.body));
  if (!body || !Array.isArray(body.results)) {
    return { error: `HubSpot answered the note search with HTTP ${response.status} but no results list` };
  }
  for (const result of body.results) {
    const note = asObject(result);
    const noteBody = text(asObject(note?.properties)?.hs_note_body);
    const id = idText(note?.id);
    if (id && noteBody?.includes(marker)) return { noteId: id };
  }
  return { notFound: true };
}
