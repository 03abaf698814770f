import fs from 'node:fs';
import path from 'node:path';
import { parseAllowlist } from './core/ssrf.ts';
import { parseDuration } from './core/duration.ts';

/** Frozen, validated runtime settings. Every value comes from SLUICE_* variables (or a JSON config file). */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string | undefined;
  /** Connections each instance keeps to PostgreSQL (pool size, plus one for LISTEN). */
  databasePool: number;
  adminKey: string | undefined;
  masterKey: string | undefined;
  allowInsecureUrls: boolean;
  ssrfAllowlist: string;
  logLevel: string;
  maxBodyBytes: number;
  maxBatchEvents: number;
  secretRotationHours: number;
  disableAfterDays: number;
  deliveryConcurrency: number;
  perDestinationConcurrency: number;
  defaultTimeoutSeconds: number;
  leaseSeconds: number;
  shutdownGraceSeconds: number;
  replayLimit: number;
  mappingsDir: string;
  catalogDir: string;
  templateEnvAllowlist: string[];
  templateTimeoutMs: number;
  templateThreads: number;
  templateMemoryMb: number;
  templateInlineBytes: number;
  templateMaxOutputBytes: number;
  templateMaxItems: number;
  watchMappings: boolean;
  /** Delivery (claims, templates, signing, sending) on its own thread, beside the HTTP thread. */
  deliveryThread: boolean;
  metricsToken: string | undefined;
  headersTimeoutSeconds: number;
  requestTimeoutSeconds: number;
  maxConnections: number;
  /** Where people reach this gateway (and its dashboard), for links connectors send out; no trailing slash. */
  publicUrl: string | undefined;
  /** How long finished (delivered, cancelled) deliveries and their attempts are kept, ms. */
  retentionMs: number;
  /** How long failed deliveries are kept, ms. */
  deadLetterRetentionMs: number;
  /** How often the background pruner runs, ms. */
  pruneIntervalMs: number;
}

type Env = Record<string, string | undefined>;

/** Names of every variable, with its default and meaning; the README's configuration table mirrors it. */
export const CONFIG_VARIABLES = {
  SLUICE_HOST: ['127.0.0.1', 'address to listen on'],
  SLUICE_PORT: ['8080', 'port to listen on'],
  SLUICE_DATA_DIR: ['./data', 'SQLite database, master key file'],
  SLUICE_DATABASE_URL: ['', 'a postgres:// URL selects the PostgreSQL backend (several instances may share it)'],
  SLUICE_DATABASE_POOL: ['10', 'PostgreSQL connections per instance (plus one that listens for changes)'],
  SLUICE_ADMIN_KEY: ['', 'bootstraps an admin API key'],
  SLUICE_MASTER_KEY: ['', 'encrypts secrets at rest (else a key file in the data dir)'],
  SLUICE_ALLOW_INSECURE_URLS: ['false', 'permit http:// and private/loopback destinations'],
  SLUICE_SSRF_ALLOWLIST: ['', 'CIDRs and hostnames exempt from the SSRF guard'],
  SLUICE_LOG_LEVEL: ['info', 'pino log level'],
  SLUICE_MAX_BODY_BYTES: ['1048576', 'largest accepted request body'],
  SLUICE_MAX_BATCH_EVENTS: ['1000', 'largest batch for /events/batch'],
  SLUICE_SECRET_ROTATION_HOURS: ['24', 'how long an old signing secret keeps signing after rotation'],
  SLUICE_DISABLE_AFTER_DAYS: ['5', 'disable a subscription failing without success this long'],
  SLUICE_DELIVERY_CONCURRENCY: ['256', 'attempts in flight at once, all destinations'],
  SLUICE_DESTINATION_CONCURRENCY: ['32', 'attempts in flight at once per destination origin'],
  SLUICE_DEFAULT_TIMEOUT_SECONDS: ['10', 'delivery timeout when a subscription sets none'],
  SLUICE_LEASE_SECONDS: ['60', 'how long a claimed delivery stays leased'],
  SLUICE_SHUTDOWN_GRACE_SECONDS: ['10', 'how long SIGTERM waits for in-flight attempts'],
  SLUICE_REPLAY_LIMIT: ['10000', 'most deliveries one bulk replay call queues'],
  SLUICE_MAPPINGS_DIR: ['./mappings', 'JSONata templates'],
  SLUICE_CATALOG_DIR: ['./catalog/events', 'event catalog (JSON Schemas)'],
  SLUICE_TEMPLATE_ENV: ['', 'comma-separated variables templates may read with $env()'],
  SLUICE_TEMPLATE_TIMEOUT_MS: ['100', 'time limit for one template evaluation'],
  SLUICE_TEMPLATE_THREADS: ['2', 'evaluator processes running templates and filters (0, from earlier versions, means 2)'],
  SLUICE_TEMPLATE_MEMORY_MB: ['64', 'heap limit of each evaluator process'],
  SLUICE_TEMPLATE_INLINE_BYTES: ['65536', 'work budget (paths read x event size) under which a bounded template runs in the gateway itself; 0: never'],
  SLUICE_TEMPLATE_MAX_OUTPUT_BYTES: ['1048576', 'largest template output (and $pad width)'],
  SLUICE_TEMPLATE_MAX_ITEMS: ['100000', 'largest array a template or filter may build'],
  SLUICE_WATCH_MAPPINGS: ['true', 'reload mappings/ when files change'],
  SLUICE_DELIVERY_THREAD: ['true', 'run delivery (claims, templates, signing, sending) on a thread of its own, so ingest and delivery never wait for each other\'s turn on one event loop'],
  SLUICE_METRICS_TOKEN: ['', 'when set, GET /metrics needs Authorization: Bearer <token>'],
  SLUICE_HEADERS_TIMEOUT_SECONDS: ['10', 'a client must send its request headers within this time'],
  SLUICE_REQUEST_TIMEOUT_SECONDS: ['30', 'a client must send its whole request within this time'],
  SLUICE_MAX_CONNECTIONS: ['1000', 'open client connections at once; more are refused'],
  SLUICE_PUBLIC_URL: ['', "the gateway's public URL, for links back to its dashboard in vendor alerts"],
  SLUICE_RETENTION: ['30d', 'finished deliveries, their attempts and events are deleted this long after they finished'],
  SLUICE_DEAD_LETTER_RETENTION: ['90d', 'failed deliveries are deleted this long after they failed'],
  SLUICE_PRUNE_INTERVAL: ['1m', 'how often the background pruner runs'],
  SLUICE_CONFIG_FILE: ['', 'optional JSON file of SLUICE_* settings; the environment wins'],
} as const;

export class ConfigError extends Error {}

/**
 * Two evaluation threads by default, whatever the core count: a runaway template holds at most
 * one (the pool runs a suspect template one evaluation at a time), so the other keeps serving
 * everyone else. More threads help heavy templates on more cores; each costs about 10 MB plus
 * what its heap grows to (at most SLUICE_TEMPLATE_MEMORY_MB).
 */
const DEFAULT_EVALUATION_THREADS = 2;

/** Gateway settings that are credentials (or carry them): never readable by a template. */
const GATEWAY_SECRETS = new Set(['SLUICE_MASTER_KEY', 'SLUICE_ADMIN_KEY', 'SLUICE_DATABASE_URL', 'SLUICE_CONFIG_FILE']);

function isGatewaySecret(name: string): boolean {
  return GATEWAY_SECRETS.has(name.toUpperCase());
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function readConfigFile(file: string): Env {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`SLUICE_CONFIG_FILE ${file}: ${(err as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`SLUICE_CONFIG_FILE ${file}: expected a JSON object of SLUICE_* settings`);
  }
  const out: Env = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!(key in CONFIG_VARIABLES)) throw new ConfigError(`SLUICE_CONFIG_FILE ${file}: unknown setting ${key}`);
    out[key] = value === null || value === undefined ? undefined : String(value);
  }
  return out;
}

export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const fileEnv = env.SLUICE_CONFIG_FILE ? readConfigFile(path.resolve(cwd, env.SLUICE_CONFIG_FILE)) : {};
  const get = (name: keyof typeof CONFIG_VARIABLES): string => {
    const value = env[name] ?? fileEnv[name];
    return value === undefined || value === '' ? CONFIG_VARIABLES[name][0] : value;
  };
  const num = (name: keyof typeof CONFIG_VARIABLES, min: number, max: number): number => {
    const raw = get(name);
    // Number() would read " " as 0 and "0x50" as 80; only plain decimal numbers are settings.
    const value = /^\s*(\d+\.?\d*|\.\d+)\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isFinite(value) || value < min || value > max) {
      throw new ConfigError(`${name} must be a number between ${min} and ${max}, got "${raw}"`);
    }
    return value;
  };
  /** Ports, sizes and counts: a fraction would fail later, far from the setting that caused it. */
  const int = (name: keyof typeof CONFIG_VARIABLES, min: number, max: number): number => {
    const value = num(name, min, max);
    if (!Number.isInteger(value)) throw new ConfigError(`${name} must be a whole number between ${min} and ${max}, got "${get(name)}"`);
    return value;
  };
  const bool = (name: keyof typeof CONFIG_VARIABLES): boolean => {
    const raw = get(name).toLowerCase();
    if (['true', '1', 'yes'].includes(raw)) return true;
    if (['false', '0', 'no'].includes(raw)) return false;
    throw new ConfigError(`${name} must be true or false, got "${raw}"`);
  };
  /** A positive duration (`30d`, `12h`, `5s`, or seconds). */
  const duration = (name: keyof typeof CONFIG_VARIABLES): number => {
    const raw = get(name);
    let ms: number;
    try {
      ms = parseDuration(raw);
    } catch {
      ms = NaN;
    }
    if (!(ms > 0) || ms > 100 * 365 * 86_400_000) throw new ConfigError(`${name} must be a positive duration such as 30d, 12h, 15m or 5s, got "${raw}"`);
    return ms;
  };
  const optional = (name: keyof typeof CONFIG_VARIABLES): string | undefined => get(name) || undefined;

  const databaseUrl = optional('SLUICE_DATABASE_URL');
  if (databaseUrl) checkDatabaseUrl(databaseUrl);
  const adminKey = optional('SLUICE_ADMIN_KEY');
  if (adminKey && adminKey.length < 16) throw new ConfigError('SLUICE_ADMIN_KEY must be at least 16 characters');

  const logLevel = get('SLUICE_LOG_LEVEL');
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`SLUICE_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  const ssrfAllowlist = get('SLUICE_SSRF_ALLOWLIST');
  try {
    parseAllowlist(ssrfAllowlist);
  } catch (err) {
    throw new ConfigError(`SLUICE_SSRF_ALLOWLIST: ${(err as Error).message}`);
  }

  const templateEnvAllowlist = get('SLUICE_TEMPLATE_ENV').split(',').map((s) => s.trim()).filter(Boolean);
  // $env() output lands in delivered bodies and previews: the gateway's own secrets never may.
  const ownSecrets = templateEnvAllowlist.filter(isGatewaySecret);
  if (ownSecrets.length) {
    throw new ConfigError(`SLUICE_TEMPLATE_ENV must not expose the gateway's own secrets to templates: remove ${ownSecrets.join(', ')}`);
  }
  const headersTimeoutSeconds = num('SLUICE_HEADERS_TIMEOUT_SECONDS', 0.1, 600);
  const requestTimeoutSeconds = num('SLUICE_REQUEST_TIMEOUT_SECONDS', 0.1, 3600);
  if (headersTimeoutSeconds > requestTimeoutSeconds) throw new ConfigError('SLUICE_HEADERS_TIMEOUT_SECONDS must not exceed SLUICE_REQUEST_TIMEOUT_SECONDS');
  const publicUrl = optional('SLUICE_PUBLIC_URL');
  if (publicUrl && !/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(publicUrl)) {
    throw new ConfigError(`SLUICE_PUBLIC_URL must be an http(s):// URL without query or fragment, e.g. https://sluice.example.com, got "${publicUrl}"`);
  }

  return Object.freeze({
    host: get('SLUICE_HOST'),
    port: int('SLUICE_PORT', 0, 65535),
    dataDir: path.resolve(cwd, get('SLUICE_DATA_DIR')),
    databaseUrl,
    databasePool: int('SLUICE_DATABASE_POOL', 1, 1000),
    adminKey,
    masterKey: optional('SLUICE_MASTER_KEY'),
    allowInsecureUrls: bool('SLUICE_ALLOW_INSECURE_URLS'),
    ssrfAllowlist,
    logLevel,
    maxBodyBytes: int('SLUICE_MAX_BODY_BYTES', 1024, 64 * 1024 * 1024),
    maxBatchEvents: int('SLUICE_MAX_BATCH_EVENTS', 1, 10_000),
    secretRotationHours: num('SLUICE_SECRET_ROTATION_HOURS', 0, 24 * 30),
    disableAfterDays: num('SLUICE_DISABLE_AFTER_DAYS', 0.000001, 365), // fractions of a second, for tests
    deliveryConcurrency: int('SLUICE_DELIVERY_CONCURRENCY', 1, 10_000),
    perDestinationConcurrency: int('SLUICE_DESTINATION_CONCURRENCY', 1, 10_000),
    defaultTimeoutSeconds: num('SLUICE_DEFAULT_TIMEOUT_SECONDS', 0.1, 300),
    leaseSeconds: int('SLUICE_LEASE_SECONDS', 1, 3600),
    shutdownGraceSeconds: num('SLUICE_SHUTDOWN_GRACE_SECONDS', 0, 300),
    replayLimit: int('SLUICE_REPLAY_LIMIT', 1, 1_000_000),
    mappingsDir: path.resolve(cwd, get('SLUICE_MAPPINGS_DIR')),
    catalogDir: path.resolve(cwd, get('SLUICE_CATALOG_DIR')),
    templateEnvAllowlist,
    templateTimeoutMs: int('SLUICE_TEMPLATE_TIMEOUT_MS', 1, 60_000),
    templateThreads: int('SLUICE_TEMPLATE_THREADS', 0, 16) || DEFAULT_EVALUATION_THREADS,
    templateMemoryMb: int('SLUICE_TEMPLATE_MEMORY_MB', 16, 4096),
    templateInlineBytes: int('SLUICE_TEMPLATE_INLINE_BYTES', 0, 1024 * 1024),
    templateMaxOutputBytes: int('SLUICE_TEMPLATE_MAX_OUTPUT_BYTES', 1024, 64 * 1024 * 1024),
    templateMaxItems: int('SLUICE_TEMPLATE_MAX_ITEMS', 100, 10_000_000),
    watchMappings: bool('SLUICE_WATCH_MAPPINGS'),
    deliveryThread: bool('SLUICE_DELIVERY_THREAD'),
    metricsToken: optional('SLUICE_METRICS_TOKEN'),
    headersTimeoutSeconds,
    requestTimeoutSeconds,
    maxConnections: int('SLUICE_MAX_CONNECTIONS', 1, 1_000_000),
    publicUrl: publicUrl?.replace(/\/+$/, ''),
    retentionMs: duration('SLUICE_RETENTION'),
    deadLetterRetentionMs: duration('SLUICE_DEAD_LETTER_RETENTION'),
    pruneIntervalMs: duration('SLUICE_PRUNE_INTERVAL'),
  });
}

/** Refuses what the driver would misread or fail on later, without echoing the password. */
function checkDatabaseUrl(url: string): void {
  if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError('SLUICE_DATABASE_URL must be a postgres:// URL (leave it unset for SQLite)');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('SLUICE_DATABASE_URL is not a valid URL; the form is postgres://user:password@host:5432/database (percent-encode special characters in the password)');
  }
  if (parsed.port && !(Number(parsed.port) >= 1 && Number(parsed.port) <= 65535)) throw new ConfigError(`SLUICE_DATABASE_URL has an invalid port "${parsed.port}"`);
  try {
    decodeURIComponent(parsed.password);
    decodeURIComponent(parsed.pathname);
  } catch {
    throw new ConfigError('SLUICE_DATABASE_URL has a malformed percent-escape (in the password or database name)');
  }
}
