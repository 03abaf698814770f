import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, tempDir, waitFor } from '../support/gateway.ts';
import { callApi, killGateways, launchGateway, spawnGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { expectError } from '../support/error-shape.ts';

/** Attacks on the listening socket and the open endpoints, against a running gateway process. */

const METRICS_TOKEN = 'metrics-token-0123456789';
let gw: GatewayProcess;

beforeAll(async () => {
  gw = await spawnGateway(tempDir(), { SLUICE_HEADERS_TIMEOUT_SECONDS: '1', SLUICE_REQUEST_TIMEOUT_SECONDS: '2', SLUICE_METRICS_TOKEN: METRICS_TOKEN });
});
afterAll(killGateways);

/** Writes `head` at once, then one byte of `trickle` every 200 ms; resolves when the server closes the socket. */
function trickle(port: number, head: string, trickleText: string): Promise<{ ms: number; answer: string }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    let i = 0;
    const timer = setInterval(() => {
      if (!socket.destroyed) socket.write(trickleText[i++ % trickleText.length]);
    }, 200);
    socket.on('data', (c) => (answer += c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ ms: Date.now() - started, answer });
    });
    socket.write(head);
  });
}

describe('slow clients', () => {
  it('cuts off trickled headers after SLUICE_HEADERS_TIMEOUT_SECONDS (Node alone allowed minutes)', async () => {
    const { ms, answer } = await trickle(gw.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', 'X-Slow: aaaaaaaa\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(ms).toBeLessThan(15_000);
  }, 30_000);

  it('cuts off a trickled body after SLUICE_REQUEST_TIMEOUT_SECONDS', async () => {
    const head = `POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n`;
    const { ms, answer } = await trickle(gw.port, head, '{"a":1,');
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(ms).toBeLessThan(15_000);
  }, 30_000);
});

describe('connection cap', () => {
  it('refuses connections beyond SLUICE_MAX_CONNECTIONS, and serves again once one closes', async () => {
    const capped = await spawnGateway(tempDir(), { SLUICE_MAX_CONNECTIONS: '3' });
    const held: net.Socket[] = [];
    const keptAlive = (socket: net.Socket) =>
      new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (c) => {
          text += c;
          if (text.includes('"status"')) resolve(text);
        });
        socket.on('close', () => resolve(text));
        socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      });
    // The readiness probe's connection may still be closing: retry until three are held.
    for (let tries = 0; held.length < 3; tries++) {
      expect(tries, 'connections under the cap are served').toBeLessThan(20);
      const socket = net.connect(capped.port, '127.0.0.1');
      socket.on('error', () => undefined);
      if ((await keptAlive(socket)).includes('200 OK')) held.push(socket);
    }
    const extra = net.connect(capped.port, '127.0.0.1');
    extra.on('error', () => undefined);
    expect(await keptAlive(extra)).toBe('');
    held.pop()!.destroy();
    await waitFor(async () => (await fetch(`${capped.url}/healthz`).catch(() => undefined))?.status === 200, 10_000, 'a free connection slot');
    for (const socket of held) socket.destroy();
  }, 40_000);
});

describe('/metrics', () => {
  it('needs the bearer token when SLUICE_METRICS_TOKEN is set', async () => {
    expectError(await callApi(gw, 'GET', '/metrics', undefined, null), 401, 'unauthorized');
    expectError(await callApi(gw, 'GET', '/metrics', undefined, 'wrong-token'), 401, 'unauthorized');
    const ok = await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('sluice_events_accepted_total');
  });
});

describe('insecure mode', () => {
  it('logs a warning at start, and still refuses cloud metadata (169.254.169.254)', async () => {
    expect(gw.output()).toContain('SLUICE_ALLOW_INSECURE_URLS is on');
    const res = await callApi(gw, 'POST', '/api/v1/webhooks', { url: 'http://169.254.169.254/latest/meta-data/iam/security-credentials/', events: ['call.ended'] });
    expectError(res, 422, 'destination_forbidden');
    expect((await callApi(gw, 'POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['call.ended'] })).status).toBe(201);
  });
});

describe('a port already in use', () => {
  it('exits with one line, before any first-start admin key is generated', async () => {
    const env: Record<string, string> = { SLUICE_ADMIN_KEY: '', SLUICE_ALLOW_INSECURE_URLS: 'false' };
    const second = launchGateway(tempDir(), env, gw.port);
    const { code } = await second.exited;
    expect(code).toBe(2);
    const output = second.output().trim();
    expect(output).toMatch(/^sluice: configuration error: 127\.0\.0\.1:\d+ is already in use/);
    expect(output.split('\n')).toHaveLength(1);
    expect(output).not.toContain('admin API key');
  }, 30_000);
});
