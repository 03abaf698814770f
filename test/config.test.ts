import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../src/config.ts';

const CWD = '/srv/sluice';

/** Loads with `env`, expecting a ConfigError whose message names `variable`. */
function expectRejected(env: Record<string, string>, variable: string, cwd = CWD): void {
  let caught: unknown;
  try {
    loadConfig(env, cwd);
  } catch (err) {
    caught = err;
  }
  expect(caught, `${JSON.stringify(env)} should be refused`).toBeInstanceOf(ConfigError);
  expect((caught as Error).message).toContain(variable);
}

describe('loadConfig defaults', () => {
  it('listens on 127.0.0.1:8080 with ./data, relative to the working directory', () => {
    const config = loadConfig({}, CWD);
    expect(config.host).toBe('127.0.0.1');
    expect(config.port).toBe(8080);
    expect(config.dataDir).toBe(path.join(CWD, 'data'));
    expect(config.mappingsDir).toBe(path.join(CWD, 'mappings'));
    expect(config.catalogDir).toBe(path.join(CWD, 'catalog/events'));
  });

  it('is secure and conservative by default', () => {
    const config = loadConfig({}, CWD);
    expect(config.allowInsecureUrls).toBe(false);
    expect(config.databaseUrl).toBeUndefined();
    expect(config.adminKey).toBeUndefined();
    expect(config.masterKey).toBeUndefined();
    expect(config.maxBodyBytes).toBe(1_048_576);
    expect(config.maxBatchEvents).toBe(1000);
    expect(config.secretRotationHours).toBe(24);
    expect(config.disableAfterDays).toBe(5);
    expect(config.defaultTimeoutSeconds).toBe(10);
    expect(config.logLevel).toBe('info');
    expect(config.watchMappings).toBe(true);
    expect(config.templateEnvAllowlist).toEqual([]);
    expect(config.metricsToken).toBeUndefined();
    expect(config.headersTimeoutSeconds).toBe(10);
    expect(config.requestTimeoutSeconds).toBe(30);
    expect(config.maxConnections).toBe(1000);
  });

  it('treats an empty variable as unset', () => {
    const config = loadConfig({ SLUICE_PORT: '', SLUICE_HOST: '', SLUICE_ADMIN_KEY: '' }, CWD);
    expect(config.port).toBe(8080);
    expect(config.host).toBe('127.0.0.1');
    expect(config.adminKey).toBeUndefined();
  });

  it('returns a frozen object', () => {
    const config = loadConfig({}, CWD);
    expect(Object.isFrozen(config)).toBe(true);
  });
});

describe('loadConfig parses every SLUICE_* variable', () => {
  const env = {
    SLUICE_HOST: '0.0.0.0',
    SLUICE_PORT: '9090',
    SLUICE_DATA_DIR: '/var/lib/sluice',
    SLUICE_DATABASE_URL: 'postgres://sluice:pw@db:5432/sluice',
    SLUICE_DATABASE_POOL: '4',
    SLUICE_ADMIN_KEY: 'sk_admin_0123456789abcdef',
    SLUICE_MASTER_KEY: 'a memorable passphrase',
    SLUICE_ALLOW_INSECURE_URLS: 'true',
    SLUICE_SSRF_ALLOWLIST: '10.0.0.0/8,hooks.internal.example',
    SLUICE_LOG_LEVEL: 'debug',
    SLUICE_MAX_BODY_BYTES: '4096',
    SLUICE_MAX_BATCH_EVENTS: '50',
    SLUICE_SECRET_ROTATION_HOURS: '48',
    SLUICE_DISABLE_AFTER_DAYS: '2',
    SLUICE_DELIVERY_CONCURRENCY: '64',
    SLUICE_DESTINATION_CONCURRENCY: '8',
    SLUICE_DEFAULT_TIMEOUT_SECONDS: '2.5',
    SLUICE_LEASE_SECONDS: '30',
    SLUICE_SHUTDOWN_GRACE_SECONDS: '3',
    SLUICE_REPLAY_LIMIT: '500',
    SLUICE_MAPPINGS_DIR: 'custom/mappings',
    SLUICE_CATALOG_DIR: '/etc/sluice/catalog',
    SLUICE_TEMPLATE_ENV: ' REGION , TEAM ,,',
    SLUICE_TEMPLATE_TIMEOUT_MS: '250',
    SLUICE_TEMPLATE_THREADS: '3',
    SLUICE_TEMPLATE_MEMORY_MB: '48',
    SLUICE_TEMPLATE_INLINE_BYTES: '4096',
    SLUICE_TEMPLATE_MAX_OUTPUT_BYTES: '65536',
    SLUICE_TEMPLATE_MAX_ITEMS: '5000',
    SLUICE_WATCH_MAPPINGS: 'no',
    SLUICE_DELIVERY_THREAD: '0',
    SLUICE_METRICS_TOKEN: 'scrape-token',
    SLUICE_HEADERS_TIMEOUT_SECONDS: '5',
    SLUICE_REQUEST_TIMEOUT_SECONDS: '20',
    SLUICE_MAX_CONNECTIONS: '200',
    SLUICE_PUBLIC_URL: 'https://sluice.example.com/',
    SLUICE_RETENTION: '7d',
    SLUICE_DEAD_LETTER_RETENTION: '2d 12h',
    SLUICE_PRUNE_INTERVAL: '30s',
  };

  it('covers every documented variable in this test', () => {
    const documented = Object.keys(CONFIG_VARIABLES).filter((name) => name !== 'SLUICE_CONFIG_FILE');
    expect(Object.keys(env).sort()).toEqual(documented.sort());
  });

  it('maps each variable to its setting', () => {
    const config = loadConfig(env, CWD);
    expect(config).toEqual({
      host: '0.0.0.0',
      port: 9090,
      dataDir: '/var/lib/sluice',
      databaseUrl: 'postgres://sluice:pw@db:5432/sluice',
      databasePool: 4,
      adminKey: 'sk_admin_0123456789abcdef',
      masterKey: 'a memorable passphrase',
      allowInsecureUrls: true,
      ssrfAllowlist: '10.0.0.0/8,hooks.internal.example',
      logLevel: 'debug',
      maxBodyBytes: 4096,
      maxBatchEvents: 50,
      secretRotationHours: 48,
      disableAfterDays: 2,
      deliveryConcurrency: 64,
      perDestinationConcurrency: 8,
      defaultTimeoutSeconds: 2.5,
      leaseSeconds: 30,
      shutdownGraceSeconds: 3,
      replayLimit: 500,
      mappingsDir: path.join(CWD, 'custom/mappings'),
      catalogDir: '/etc/sluice/catalog',
      templateEnvAllowlist: ['REGION', 'TEAM'],
      templateTimeoutMs: 250,
      templateThreads: 3,
      templateMemoryMb: 48,
      templateInlineBytes: 4096,
      templateMaxOutputBytes: 65536,
      templateMaxItems: 5000,
      watchMappings: false,
      deliveryThread: false,
      metricsToken: 'scrape-token',
      headersTimeoutSeconds: 5,
      requestTimeoutSeconds: 20,
      maxConnections: 200,
      publicUrl: 'https://sluice.example.com',
      retentionMs: 7 * 86_400_000,
      deadLetterRetentionMs: 60 * 3_600_000,
      pruneIntervalMs: 30_000,
    });
  });

  it('keeps deliveries 30 days, failed ones 90, and prunes every minute by default; short retentions are allowed', () => {
    expect(loadConfig({}, CWD)).toMatchObject({ retentionMs: 30 * 86_400_000, deadLetterRetentionMs: 90 * 86_400_000, pruneIntervalMs: 60_000 });
    expect(loadConfig({ SLUICE_RETENTION: '5s', SLUICE_PRUNE_INTERVAL: '500ms' }, CWD)).toMatchObject({ retentionMs: 5_000, pruneIntervalMs: 500 });
  });

  it('refuses a headers timeout longer than the request timeout', () => {
    expectRejected({ SLUICE_HEADERS_TIMEOUT_SECONDS: '60', SLUICE_REQUEST_TIMEOUT_SECONDS: '30' }, 'SLUICE_HEADERS_TIMEOUT_SECONDS');
  });

  it.each([
    ['true', true], ['TRUE', true], ['1', true], ['yes', true],
    ['false', false], ['0', false], ['No', false],
  ])('reads the boolean %s as %s', (raw, expected) => {
    expect(loadConfig({ SLUICE_ALLOW_INSECURE_URLS: raw }, CWD).allowInsecureUrls).toBe(expected);
  });

  it('accepts postgresql:// as well as postgres://', () => {
    expect(loadConfig({ SLUICE_DATABASE_URL: 'postgresql://localhost/sluice' }, CWD).databaseUrl).toBe('postgresql://localhost/sluice');
  });
});

describe('loadConfig rejects bad values with a ConfigError naming the variable', () => {
  it.each([
    ['SLUICE_PUBLIC_URL', 'sluice.example.com'],
    ['SLUICE_PUBLIC_URL', 'https://sluice.example.com/#/'],
    ['SLUICE_PORT', 'eighty'],
    ['SLUICE_PORT', '70000'],
    ['SLUICE_PORT', '-1'],
    ['SLUICE_PORT', '80.5'],
    ['SLUICE_PORT', ' '],
    ['SLUICE_PORT', '0x50'],
    ['SLUICE_MAX_BODY_BYTES', '10'],
    ['SLUICE_MAX_BODY_BYTES', '4096.5'],
    ['SLUICE_MAX_BATCH_EVENTS', '0'],
    ['SLUICE_MAX_BATCH_EVENTS', '2.5'],
    ['SLUICE_SECRET_ROTATION_HOURS', '-2'],
    ['SLUICE_DISABLE_AFTER_DAYS', '0'],
    ['SLUICE_DELIVERY_CONCURRENCY', 'lots'],
    ['SLUICE_DESTINATION_CONCURRENCY', '0'],
    ['SLUICE_DEFAULT_TIMEOUT_SECONDS', '1000'],
    ['SLUICE_LEASE_SECONDS', '0'],
    ['SLUICE_SHUTDOWN_GRACE_SECONDS', 'NaN'],
    ['SLUICE_REPLAY_LIMIT', '0'],
    ['SLUICE_TEMPLATE_TIMEOUT_MS', 'Infinity'],
    ['SLUICE_TEMPLATE_THREADS', '17'],
    ['SLUICE_TEMPLATE_THREADS', 'auto'],
    ['SLUICE_TEMPLATE_MEMORY_MB', '8'],
    ['SLUICE_TEMPLATE_INLINE_BYTES', '-1'],
    ['SLUICE_TEMPLATE_MAX_OUTPUT_BYTES', '100'],
    ['SLUICE_TEMPLATE_MAX_ITEMS', '1.5'],
    ['SLUICE_ALLOW_INSECURE_URLS', 'maybe'],
    ['SLUICE_WATCH_MAPPINGS', 'on-tuesdays'],
    ['SLUICE_DELIVERY_THREAD', 'sometimes'],
    ['SLUICE_DATABASE_URL', 'mysql://localhost/sluice'],
    ['SLUICE_DATABASE_URL', 'postgres://user:p@ss@host:99999/db'],
    ['SLUICE_DATABASE_URL', 'postgres://user:%zz@host/db'],
    ['SLUICE_DATABASE_POOL', '0'],
    ['SLUICE_ADMIN_KEY', 'short'],
    ['SLUICE_LOG_LEVEL', 'verbose'],
    ['SLUICE_SSRF_ALLOWLIST', '10.0.0.0/99'],
    ['SLUICE_RETENTION', '30 days'],
    ['SLUICE_RETENTION', '0'],
    ['SLUICE_RETENTION', '0s'],
    ['SLUICE_RETENTION', '-1d'],
    ['SLUICE_DEAD_LETTER_RETENTION', 'forever'],
    ['SLUICE_PRUNE_INTERVAL', '0m'],
  ])('%s=%j', (name, value) => {
    expectRejected({ [name]: value }, name);
  });

  it.each(['SLUICE_MASTER_KEY', 'SLUICE_ADMIN_KEY', 'SLUICE_DATABASE_URL', 'sluice_master_key'])('SLUICE_TEMPLATE_ENV naming the gateway secret %s', (secret) => {
    expectRejected({ SLUICE_TEMPLATE_ENV: `REGION, ${secret}` }, 'SLUICE_TEMPLATE_ENV');
    expect(() => loadConfig({ SLUICE_TEMPLATE_ENV: `REGION, ${secret}` }, CWD)).toThrow(new RegExp(`gateway's own secrets.*${secret}`));
  });
});

describe('SLUICE_TEMPLATE_THREADS', () => {
  it('defaults to two threads, and reads 0 (inline evaluation, in earlier versions) as the default', () => {
    expect(loadConfig({}, CWD).templateThreads).toBe(2);
    expect(loadConfig({ SLUICE_TEMPLATE_THREADS: '0' }, CWD).templateThreads).toBe(2);
    expect(loadConfig({ SLUICE_TEMPLATE_THREADS: '1' }, CWD).templateThreads).toBe(1);
  });
});

describe('SLUICE_CONFIG_FILE', () => {
  function writeConfig(content: unknown): string {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-config-')), 'sluice.json');
    fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  }

  it('adds settings from a JSON file, numbers and booleans included', () => {
    const file = writeConfig({ SLUICE_PORT: 9191, SLUICE_ALLOW_INSECURE_URLS: true, SLUICE_LOG_LEVEL: 'warn' });
    const config = loadConfig({ SLUICE_CONFIG_FILE: file }, CWD);
    expect(config.port).toBe(9191);
    expect(config.allowInsecureUrls).toBe(true);
    expect(config.logLevel).toBe('warn');
    expect(config.host).toBe('127.0.0.1');
  });

  it('lets the environment win over the file', () => {
    const file = writeConfig({ SLUICE_PORT: 9191, SLUICE_HOST: '0.0.0.0' });
    const config = loadConfig({ SLUICE_CONFIG_FILE: file, SLUICE_PORT: '7070' }, CWD);
    expect(config.port).toBe(7070);
    expect(config.host).toBe('0.0.0.0');
  });

  it('resolves a relative file path against the working directory', () => {
    const file = writeConfig({ SLUICE_MAX_BATCH_EVENTS: 7 });
    const config = loadConfig({ SLUICE_CONFIG_FILE: path.basename(file) }, path.dirname(file));
    expect(config.maxBatchEvents).toBe(7);
  });

  it('validates values that come from the file', () => {
    const file = writeConfig({ SLUICE_PORT: 'not-a-port' });
    expectRejected({ SLUICE_CONFIG_FILE: file }, 'SLUICE_PORT');
  });

  it.each([
    ['unknown settings', { SLUICE_COLOUR: 'blue' }],
    ['invalid JSON', '{"SLUICE_PORT": '],
    ['a JSON array', [1, 2]],
  ])('refuses %s', (_what, content) => {
    expectRejected({ SLUICE_CONFIG_FILE: writeConfig(content) }, 'SLUICE_CONFIG_FILE');
  });

  it('refuses a missing file', () => {
    expectRejected({ SLUICE_CONFIG_FILE: '/nonexistent/sluice.json' }, 'SLUICE_CONFIG_FILE');
  });
});
