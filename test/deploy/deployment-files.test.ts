import { spawn, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_VARIABLES } from '../../src/config.ts';
import { REPO_ROOT, tempDir, waitFor } from '../support/gateway.ts';
import { npmStartArgs } from '../support/gateway-process.ts';

/**
 * Containers cannot be built on this machine (no Docker engine), so this checks what can be:
 * the Dockerfile's promises, the compose file against the config, and — the real test — that
 * `npm ci --omit=dev` on exactly what the image copies gives a gateway that starts.
 */

const run = promisify(execFile);
const dockerfile = fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
const known = new Set(Object.keys(CONFIG_VARIABLES));

/** The runtime stage: everything after the last FROM. */
const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

describe('Dockerfile', () => {
  it('is multi-stage, installs production dependencies only, runs as a non-root user with a data volume and a /readyz health check', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev/m);
    expect(runtimeStage).toMatch(/^COPY --from=deps \/app\/node_modules/m);
    expect(runtimeStage).toMatch(/^USER node$/m);
    expect(runtimeStage).toMatch(/^VOLUME \["\/data"\]$/m);
    expect(runtimeStage).toMatch(/^HEALTHCHECK [\s\S]*\/readyz/m);
    expect(runtimeStage).toContain('SLUICE_DATA_DIR=/data');
    // The image runs what npm start runs, with the bundle built at image build time.
    expect(imageCommand()).toEqual(['node', ...npmStartArgs()]);
    expect(runtimeStage).toMatch(/^RUN node scripts\/start\.mjs --build$/m);
    for (const [, name] of runtimeStage.matchAll(/\b(SLUICE_[A-Z_]+)=/g)) expect(known, name).toContain(name);
  });
});

describe('docker-compose.yml', () => {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8');
  // Compose resolves YAML merge keys (<<: *gateway), so the test does too.
  const compose = parse(text, { merge: true });

  it('parses, runs two gateway instances of the image on one PostgreSQL, and names only variables the config knows', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['postgres', 'sluice-1', 'sluice-2']);
    expect(Object.keys(compose.volumes)).toEqual(['postgres-data']);
    for (const name of ['sluice-1', 'sluice-2']) {
      const gateway = compose.services[name];
      expect(gateway.build).toBe('.');
      expect(gateway.depends_on.postgres.condition).toBe('service_healthy');
      expect(gateway.environment.SLUICE_DATABASE_URL).toMatch(/^postgres:\/\/sluice:\$\{POSTGRES_PASSWORD:\?[^}]*\}@postgres:5432\/sluice$/);
      for (const variable of Object.keys(gateway.environment)) expect(known, variable).toContain(variable);
      // Secrets come from the environment, never written into the file; every instance shares the master key.
      expect(gateway.environment.SLUICE_ADMIN_KEY).toMatch(/^\$\{SLUICE_ADMIN_KEY:\?/);
      expect(gateway.environment.SLUICE_MASTER_KEY).toMatch(/^\$\{SLUICE_MASTER_KEY:\?/);
    }
    // Interpolations too: ${SLUICE_…:?…} must name real settings.
    for (const [, name] of text.matchAll(/\$\{(SLUICE_[A-Z_]+)/g)) expect(known, name).toContain(name);
  });
});

/** What the runtime stage copies from the build context (`COPY <src> <dest>` without --from). */
function runtimeCopies(): string[] {
  return [...runtimeStage.matchAll(/^COPY (?!--from)(.+)$/gm)].flatMap((m) => m[1].trim().split(/\s+/).slice(0, -1));
}

/** The image's CMD (exec form). */
function imageCommand(): string[] {
  return JSON.parse(/^CMD (\[.*\])$/m.exec(runtimeStage)![1]) as string[];
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('a production install (npm ci --omit=dev) of what the image holds', () => {
  it('starts a gateway that needs no dev dependency: ready, API document, /docs with its vendor files', async () => {
    // The install is reused while the manifests are unchanged; the application files are copied
    // afresh every run. better-sqlite3's native addon is not compiled again (two to five minutes
    // on this shared machine): install scripts are skipped and the addon the development install
    // built for the same version is copied in; any other version is rebuilt.
    const manifests = ['package.json', 'package-lock.json', 'connectors/n8n/package.json'];
    const hash = crypto.createHash('sha256');
    for (const file of manifests) hash.update(fs.readFileSync(path.join(REPO_ROOT, file)));
    const root = path.join(os.tmpdir(), `sluice-production-install-${hash.digest('hex').slice(0, 16)}`);
    const installed = path.join(root, '.installed');
    if (!fs.existsSync(installed)) {
      fs.rmSync(root, { recursive: true, force: true });
      for (const file of manifests) fs.cpSync(path.join(REPO_ROOT, file), path.join(root, file));
      const npmEnv = { ...process.env, SCARF_ANALYTICS: 'false' };
      await run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts'], { cwd: root, env: npmEnv, timeout: 420_000 });
      const version = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'node_modules/better-sqlite3/package.json'), 'utf8')).version;
      if (version(root) === version(REPO_ROOT)) fs.cpSync(path.join(REPO_ROOT, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'), path.join(root, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'));
      else await run('npm', ['rebuild', 'better-sqlite3'], { cwd: root, env: npmEnv, timeout: 420_000 });
      fs.writeFileSync(installed, new Date().toISOString());
    }
    for (const src of runtimeCopies()) {
      fs.rmSync(path.join(root, src), { recursive: true, force: true });
      fs.cpSync(path.join(REPO_ROOT, src), path.join(root, src), { recursive: true, filter: (from) => !from.split(path.sep).includes('node_modules') });
    }
    for (const devOnly of ['vitest', 'typescript', 'playwright-core', '@redocly/cli', 'autocannon']) expect(fs.existsSync(path.join(root, 'node_modules', devOnly)), devOnly).toBe(false);

    const port = await freePort();
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLUICE_') && k !== 'NODE_OPTIONS'));
    // As the image does: the bundle built ahead, then its CMD.
    await run(process.execPath, ['scripts/start.mjs', '--build'], { cwd: root, env });
    const [node, ...args] = imageCommand();
    expect(node).toBe('node');
    const gateway = spawn(process.execPath, args, {
      cwd: root,
      env: { ...env, NODE_ENV: 'production', SLUICE_PORT: String(port), SLUICE_DATA_DIR: tempDir(), SLUICE_ADMIN_KEY: 'sk_admin_production_install_0123', SLUICE_LOG_LEVEL: 'warn', SLUICE_WATCH_MAPPINGS: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    gateway.stdout.on('data', (c) => (output += c));
    gateway.stderr.on('data', (c) => (output += c));
    const exited = new Promise<number | null>((resolve) => gateway.on('close', resolve));
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitFor(async () => (gateway.exitCode === null ? (await fetch(`${base}/readyz`).catch(() => undefined))?.ok : Promise.reject(new Error(output))), 60_000, 'the gateway to be ready');
      expect((await fetch(`${base}/api/v1/openapi.json`)).status).toBe(200);
      expect((await fetch(`${base}/docs`)).status).toBe(200);
      expect((await fetch(`${base}/assets/vendor/swagger-ui-bundle.js`)).status).toBe(200);
      const events = await fetch(`${base}/api/v1/event-types`, { headers: { authorization: 'Bearer sk_admin_production_install_0123' } });
      expect(events.status).toBe(200);
    } finally {
      gateway.kill('SIGTERM');
    }
    expect(await exited, output).toBe(0);
  }, 600_000);
});
