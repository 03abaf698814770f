import { createHash } from 'node:crypto';
import { stringify as stableStringify } from 'safe-stable-stringify';

/** Which envelope fields the client posted (the others the gateway filled in). */
export interface PostedFields {
  id: boolean;
  timestamp: boolean;
}

/**
 * SHA-256 of an event as its client posted it: event, id and timestamp when posted, and data,
 * in a canonical key order, so a repeat with its keys in another order is still the same event.
 */
export function requestHash(event: { event: string; id: string; timestamp: string; data: unknown }, posted: PostedFields): string {
  const canonical = stableStringify({ event: event.event, id: posted.id ? event.id : undefined, timestamp: posted.timestamp ? event.timestamp : undefined, data: event.data });
  return createHash('sha256').update(canonical ?? '').digest('hex');
}
