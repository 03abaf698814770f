import fs from 'node:fs';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { verifySimpleSignature } from '../src/core/signing.ts';
import { startReceiver } from './support/receiver.ts';
import { callApi, fixture, REPO_ROOT, tempDir, waitFor } from './support/gateway.ts';
import { killGateways, npmStartArgs, spawnGateway } from './support/gateway-process.ts';

/**
 * `npm start` runs the gateway bundled by scripts/start.mjs rather than through tsx: each module
 * keeps its own `import.meta.url`, class names survive, and nothing of the bundler stays behind.
 * The other child-process tests start src/main.ts through tsx (coverage maps to src/); this one
 * runs the very command of package.json through a whole delivery.
 */

afterEach(() => killGateways());

/**
 * The processes a gateway started (evaluators, or a bundler service left running), from any of
 * its threads: a child belongs to the thread that spawned it (esbuild's synchronous API spawns
 * its service from a worker thread).
 */
function childCommands(pid: number): string[] {
  const children = fs.readdirSync(`/proc/${pid}/task`).flatMap((tid) => fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
  // The name from stat, which a process that exited but was never reaped still has.
  return children.map((child) => `${/\((.*)\)/.exec(fs.readFileSync(`/proc/${child}/stat`, 'utf8'))?.[1]} ${fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').replaceAll('\0', ' ')}`);
}

describe('npm start', () => {
  it('runs the bundled gateway: a signed delivery through the storage thread, the dashboard, the API document, a clean stop', async () => {
    const dataDir = tempDir('sluice-npm-start-');
    const receiver = await startReceiver();
    try {
      const args = npmStartArgs();
      expect(args).toContain('scripts/start.mjs');
      // As from a shell: the test runner's environment turns esbuild's worker-thread service off
      // (which is what keeps a service process alive after a synchronous build).
      const gw = await spawnGateway(dataDir, { SLUICE_LOG_LEVEL: 'info', ESBUILD_WORKER_THREADS: '1' }, 60_000, args);
      expect(gw.output()).not.toMatch(/tsx/);

      // Files found beside their module (import.meta.url of each source file, not the bundle's).
      const page = await fetch(`${gw.url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<html');
      expect((await fetch(`${gw.url}/assets/vendor/swagger-ui-bundle.js`)).status).toBe(200);
      const version = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version;
      expect((await (await fetch(`${gw.url}/api/v1/openapi.json`)).json()).info.version).toBe(version);

      // A delivery: ingest committed by the storage thread, an inline template, both signatures.
      const sub = await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${receiver.url}/hook`, events: ['call.ended'], mapping: '{"call": data.call.id, "event": event}' });
      expect(sub.status).toBe(201);
      const event = fixture('call.ended');
      expect((await callApi(gw, 'POST', '/api/v1/events', event)).status).toBe(202);
      await waitFor(() => receiver.requests.length >= 1, 15_000, 'the delivery');
      const [req] = receiver.requests;
      expect(JSON.parse(req.body)).toEqual({ call: event.data.call.id, event: 'call.ended' });
      const headers = (name: string) => String(req.headers[name]);
      expect(verifySimpleSignature(req.body, sub.body.signing_secret, headers('x-webhook-signature'))).toBe(true);
      new Webhook(sub.body.signing_secret).verify(req.body, { 'webhook-id': headers('webhook-id'), 'webhook-timestamp': headers('webhook-timestamp'), 'webhook-signature': headers('webhook-signature') });

      // Errors keep their class names (they are matched by name across the storage thread).
      const repeat = await callApi(gw, 'POST', '/api/v1/events', { ...event, data: { ...event.data, changed: true } });
      expect(repeat.status).toBe(409);
      expect(repeat.body.error.code).toBe('event_id_conflict');

      // The bundler's service processes were stopped once the bundles were built.
      expect(childCommands(gw.child.pid!).filter((command) => command.includes('esbuild'))).toEqual([]);

      gw.child.kill('SIGTERM');
      expect(await gw.exited).toEqual({ code: 0, signal: null });
    } finally {
      await receiver.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
