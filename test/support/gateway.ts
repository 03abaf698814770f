import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createSluice, type Sluice, type SluiceOptions } from '../../src/app.ts';
import { ROOMY_LIMITS } from './limits.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES_DIR = path.resolve(REPO_ROOT, '../shared/fixtures/events');
export const ADMIN_KEY = 'sk_admin_test_key_0123456789abcdef';

export function fixture(name: string): { event: string; id: string; timestamp: string; data: any } {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES_DIR, `${name}.json`), 'utf8'));
}

export function tempDir(prefix = 'sluice-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface TestGateway {
  sluice: Sluice;
  url: string;
  dataDir: string;
  /** Calls the API with a key (admin by default); returns status and parsed JSON. */
  api(method: string, route: string, body?: unknown, key?: string | null, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  stop(): Promise<void>;
}

/** A real gateway on a random loopback port with a fresh SQLite file. */
export async function startGateway(env: Record<string, string> = {}, options: { dataDir?: string; now?: () => number } & Pick<SluiceOptions, 'logger' | 'resolve' | 'onFatal' | 'sqliteThreadPreload'> = {}): Promise<TestGateway> {
  const dataDir = options.dataDir ?? tempDir();
  const config = loadConfig(
    {
      SLUICE_PORT: '0',
      SLUICE_DATA_DIR: dataDir,
      SLUICE_ADMIN_KEY: ADMIN_KEY,
      SLUICE_ALLOW_INSECURE_URLS: 'true',
      SLUICE_LOG_LEVEL: 'silent',
      SLUICE_WATCH_MAPPINGS: 'false',
      SLUICE_MAPPINGS_DIR: path.join(REPO_ROOT, 'mappings'),
      SLUICE_CATALOG_DIR: path.join(REPO_ROOT, 'catalog/events'),
      SLUICE_SHUTDOWN_GRACE_SECONDS: '2',
      // What templates give, not how fast they run (tests of the limit set their own): a cold
      // evaluation on a loaded machine can pass the 100 ms production default.
      SLUICE_TEMPLATE_TIMEOUT_MS: String(ROOMY_LIMITS.timeoutMs),
      // In this process by default: the seams (a clock, a resolver, a logger to read) reach the
      // worker only here. Gateways run as child processes deliver from their delivery thread.
      SLUICE_DELIVERY_THREAD: 'false',
      ...env,
    },
    REPO_ROOT,
  );
  const sluice = await createSluice(config, { logger: options.logger ?? createLogger('silent'), announce: () => undefined, now: options.now, resolve: options.resolve, onFatal: options.onFatal, sqliteThreadPreload: options.sqliteThreadPreload });
  await sluice.start();
  const api: TestGateway['api'] = (method, route, body, key = ADMIN_KEY, headers = {}) => callApi(sluice, method, route, body, key, headers);
  return { sluice, url: sluice.url, dataDir, api, stop: () => sluice.stop() };
}

/**
 * Calls the API of a gateway (in this process or a child: anything with a url) with a key (admin
 * by default); a string body is sent as it is. Returns status, parsed JSON (or the text), headers.
 */
export async function callApi(gw: { url: string }, method: string, route: string, body?: unknown, key: string | null = ADMIN_KEY, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(gw.url + route, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** The SQLite probe a test loads into a gateway's storage thread (see sqlite-thread-probe.ts). */
export const SQLITE_THREAD_PROBE = path.join(REPO_ROOT, 'test/support/sqlite-thread-probe.ts');

/** A second connection to a gateway's SQLite file, for tests that look at rows directly (the gateway's own lives in its storage thread). */
export function openDatabase(gw: { dataDir: string }): Database.Database {
  const db = new Database(path.join(gw.dataDir, 'sluice.db'));
  db.pragma('busy_timeout = 5000');
  return db;
}

/** Polls until `check` returns a truthy value, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 5_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
