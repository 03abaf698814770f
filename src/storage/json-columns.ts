/** JSON kept in TEXT columns (both engines keep payloads as text so key order survives). */
export const json = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value));
export const parse = <T>(value: string | null): T | null => (value === null ? null : (JSON.parse(value) as T));
