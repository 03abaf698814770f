import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fixture, tempDir, waitFor } from '../support/gateway.ts';
import { callApi, killGateways, launchGateway, spawnGateway, stopGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { runSluice } from '../support/cli.ts';
import { startReceiver } from '../support/receiver.ts';

let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(() => receiver.close());
afterEach(() => killGateways());

/** Posts `count` call.ended events to a fresh subscription and waits until all are delivered. */
async function deliveredEvents(gw: GatewayProcess, count: number): Promise<string[]> {
  await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${receiver.url}/hook`, events: ['call.ended'] });
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await callApi(gw, 'POST', '/api/v1/events', { ...fixture('call.ended'), id: `evt_life_${Date.now()}_${i}` });
    ids.push(res.body.deliveries[0].id);
  }
  await waitFor(async () => {
    for (const id of ids) if ((await callApi(gw, 'GET', `/api/v1/deliveries/${id}`)).body.status !== 'delivered') return false;
    return true;
  }, 10_000, 'the deliveries');
  return ids;
}

describe('retention in a running gateway', () => {
  it('the background pruner deletes delivered work past a short retention, warns about it at start, and counts it in the metrics', async () => {
    const dataDir = tempDir();
    const gw = await spawnGateway(dataDir, { SLUICE_RETENTION: '1s', SLUICE_PRUNE_INTERVAL: '200ms' });
    expect(gw.output()).toContain('SLUICE_RETENTION below an hour');
    const [id] = await deliveredEvents(gw, 1);
    await waitFor(async () => (await callApi(gw, 'GET', `/api/v1/deliveries/${id}`)).status === 404, 10_000, 'the pruner to delete the delivery');
    const metrics = (await callApi(gw, 'GET', '/metrics', undefined, null)).body as string;
    expect(metrics).toMatch(/sluice_pruned_rows_total\{table="deliveries"\} [1-9]/);
    expect(metrics).toMatch(/sluice_prune_duration_seconds_count [1-9]/);
    expect(metrics).toMatch(/sluice_database_bytes [1-9]\d*/);
    await stopGateway(gw);
  }, 60_000);

  it('refuses to start with a retention that is not positive, in one line naming the variable (exit 2)', async () => {
    const gw = launchGateway(tempDir(), { SLUICE_DEAD_LETTER_RETENTION: '0s' });
    expect((await gw.exited).code).toBe(2);
    expect(gw.output()).toContain('SLUICE_DEAD_LETTER_RETENTION must be a positive duration');
  }, 30_000);

  it('refuses a retention that does not parse, naming the variable (exit 2)', async () => {
    const run = await runSluice(['prune'], { env: { SLUICE_DATA_DIR: tempDir(), SLUICE_RETENTION: 'a month' } });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('SLUICE_RETENTION must be a positive duration');
  }, 30_000);
});

describe('sluice prune and sluice backup', () => {
  it('prune runs one pass next to the running gateway and prints what it removed', async () => {
    const dataDir = tempDir();
    const gw = await spawnGateway(dataDir);
    const ids = await deliveredEvents(gw, 3);
    const env = { SLUICE_DATA_DIR: dataDir, SLUICE_RETENTION: '1ms', SLUICE_DEAD_LETTER_RETENTION: '1ms' };
    const run = await runSluice(['prune'], { env });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^pruned 3 deliveries, 3 attempts and 3 events in /);
    expect(run.stdout).toMatch(/database [\d.]+ MB, of which [\d.]+ MB free for reuse/);
    for (const id of ids) expect((await callApi(gw, 'GET', `/api/v1/deliveries/${id}`)).status).toBe(404);
    // The gateway carries on, and a second pass finds nothing.
    expect((await callApi(gw, 'POST', '/api/v1/events', { ...fixture('call.ended'), id: 'evt_after_prune' })).status).toBe(202);
    const again = JSON.parse((await runSluice(['prune', '--json'], { env: { ...env, SLUICE_RETENTION: '30d' } })).stdout);
    expect(again).toMatchObject({ deliveries: 0, attempts: 0, events: 0 });
    await stopGateway(gw);
  }, 60_000);

  it('backup writes a consistent, private copy while the gateway runs, and refuses to overwrite one', async () => {
    const dataDir = tempDir();
    const gw = await spawnGateway(dataDir);
    const [id] = await deliveredEvents(gw, 1);
    const target = path.join(tempDir(), 'sluice-backup.db');
    const run = await runSluice(['backup', target], { env: { SLUICE_DATA_DIR: dataDir } });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`to ${target}`);
    expect(fs.statSync(target).mode & 0o777).toBe(0o600);
    const copy = new Database(target, { readonly: true });
    try {
      expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(copy.prepare('SELECT status FROM deliveries WHERE id = ?').get(id)).toEqual({ status: 'delivered' });
    } finally {
      copy.close();
    }
    const refused = await runSluice(['backup', target], { env: { SLUICE_DATA_DIR: dataDir } });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--force');
    expect((await runSluice(['backup', target, '--force'], { env: { SLUICE_DATA_DIR: dataDir } })).code).toBe(0);
    await stopGateway(gw);
  }, 60_000);

  it('backup explains a data directory without a database (exit 2)', async () => {
    const run = await runSluice(['backup', path.join(tempDir(), 'x.db')], { env: { SLUICE_DATA_DIR: tempDir() } });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('no database at');
  }, 30_000);
});
