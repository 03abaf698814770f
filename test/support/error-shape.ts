import { expect } from 'vitest';

interface ApiResponse {
  status: number;
  body: any;
}

/** Asserts the one JSON error shape `{error: {code, message, details}}` with this status and code. */
export function expectError(res: ApiResponse, status: number, code?: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body, 'error body is JSON').toBeTypeOf('object');
  expect(Object.keys(res.body)).toEqual(['error']);
  expect(res.body.error.code).toMatch(/^[a-z][a-z0-9_]*$/);
  if (code) expect(res.body.error.code).toBe(code);
  expect(res.body.error.message).toBeTypeOf('string');
  expect(res.body.error.message.length).toBeGreaterThan(0);
  expect(Array.isArray(res.body.error.details)).toBe(true);
}

/** The JSON paths named by a 422's details. */
export function errorPaths(res: ApiResponse): string[] {
  return (res.body?.error?.details ?? []).map((d: { path?: string }) => d.path);
}

/**
 * The error a call throws or a promise rejects with, for its fields to be asserted; fails the
 * test when it succeeds instead.
 */
export async function thrownBy<E = Error>(run: Promise<unknown> | (() => unknown)): Promise<E> {
  try {
    await (typeof run === 'function' ? run() : run);
  } catch (err) {
    return err as E;
  }
  throw new Error('expected an error, and it succeeded');
}
