/**
 * A delivery whose processing kills the gateway must not kill it again on every restart: each
 * claim is counted before the template runs, and after three claims that ended with the process
 * gone the delivery is failed, with the reason, instead of being claimed a fourth time.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { fixture, tempDir, waitFor } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';
import { callApi, killGateways, spawnGateway, stopGateway } from '../support/gateway-process.ts';
import { evaluatorPids } from '../support/processes.ts';

afterEach(() => killGateways());

function alive(pid: number): boolean {
  try {
    // A zombie (exited, not yet reaped by init) counts as gone.
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Keeps its evaluation thread busy for many seconds: long enough to be killed mid-evaluation. */
const SLOW_TEMPLATE = '$count($distinct([1..90000]))';
/** Restarts on a loaded machine (the previous life's evaluator may still be busy) can be slow. */
const READY_MS = 60_000;

describe('a delivery that the gateway dies on, again and again', () => {
  it('is failed with the reason after three deaths, not claimed forever (kill -9 during its template)', async () => {
    const rx = await startReceiver();
    const dataDir = tempDir();
    const env = { SLUICE_TEMPLATE_TIMEOUT_MS: '60000', SLUICE_LEASE_SECONDS: '1' };
    try {
      let gw = await spawnGateway(dataDir, env, READY_MS);
      const sub = await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${rx.url}/slow`, events: ['call.ended'], mapping: SLOW_TEMPLATE });
      expect(sub.status).toBe(201);
      const posted = await callApi(gw, 'POST', '/api/v1/events', fixture('call.ended'));
      expect(posted.status).toBe(202);
      const deliveryId: string = posted.body.deliveries[0].id;
      for (let death = 1; death <= 3; death++) {
        if (death > 1) gw = await spawnGateway(dataDir, env, READY_MS);
        // Its template is being evaluated (the delivery is leased and no attempt is recorded yet).
        await waitFor(async () => {
          const d = (await callApi(gw, 'GET', `/api/v1/deliveries/${deliveryId}`)).body;
          return d.status === 'delivering' && d.attempts.length === 0;
        }, 20_000, `the delivery in progress (life ${death})`);
        // Evaluators start when a template first needs one: wait for them to be there.
        const evaluators = await waitFor(() => {
          const pids = evaluatorPids(gw.child.pid!);
          return pids.length ? pids : undefined;
        }, 20_000, `the evaluators (life ${death})`);
        gw.child.kill('SIGKILL');
        await gw.exited;
        // Its evaluators die with it, the busy one included (it cannot hear its channel close).
        await waitFor(() => evaluators.every((pid) => !alive(pid)), 10_000, 'the killed gateway\'s evaluators to be gone');
      }
      gw = await spawnGateway(dataDir, env, READY_MS);
      const failed = await waitFor(async () => {
        const d = (await callApi(gw, 'GET', `/api/v1/deliveries/${deliveryId}`)).body;
        return d.status === 'failed' ? d : undefined;
      }, 20_000, 'the delivery to be failed');
      expect(failed.attempts).toHaveLength(1);
      expect(failed.attempts[0].error).toMatch(/abandoned: the gateway stopped 3 times while processing this delivery/);
      expect(rx.requests).toHaveLength(0);
      // A replay starts afresh: it is claimed (and evaluated) again.
      expect((await callApi(gw, 'POST', `/api/v1/deliveries/${deliveryId}/replay`)).status).toBe(202);
      await waitFor(async () => (await callApi(gw, 'GET', `/api/v1/deliveries/${deliveryId}`)).body.status === 'delivering', 20_000, 'the replay in progress');
      await stopGateway(gw, 3_000);
    } finally {
      await rx.close();
    }
  }, 180_000);
});
