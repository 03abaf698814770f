import type { AttemptRecord } from './types.ts';

/** JSON kept in TEXT columns (both engines keep payloads as text so key order survives). */
export const json = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value));
export const parse = <T>(value: string | null): T | null => (value === null ? null : (JSON.parse(value) as T));

/** An attempt row as both engines store it: headers and steps are JSON text. */
export function toAttempt(row: Record<string, any>): AttemptRecord {
  return {
    ...(row as AttemptRecord),
    request_headers: JSON.parse(row.request_headers),
    response_headers: parse(row.response_headers),
    steps: parse(row.steps),
  };
}
