import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, tempDir } from '../support/gateway.ts';
import { killGateways, spawnGateway, type GatewayProcess } from '../support/gateway-process.ts';

/**
 * Attacks on body reading, against a running gateway process: the body of a request is read
 * only once its key checks out, and a deeply nested body is refused while it arrives.
 * Each request declares an 800 KB body but sends only its first bytes: an answer before the
 * rest is sent proves the gateway did not wait for (or buffer) the whole body.
 */

let gw: GatewayProcess;

beforeAll(async () => {
  gw = await spawnGateway(tempDir());
});
afterAll(killGateways);

/** Sends the head and `firstBytes` of a body declared `declaredLength` long; resolves with the raw answer. */
function partialRequest(head: Record<string, string>, firstBytes: string, declaredLength: number): Promise<{ status: number; text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(gw.port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer before the body was complete; got: ${text}`));
    }, 10_000);
    socket.on('data', (chunk) => (text += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]), text, closed: true });
    });
    const headers = Object.entries({ host: '127.0.0.1', 'content-type': 'application/json', 'content-length': String(declaredLength), ...head }).map(([k, v]) => `${k}: ${v}`).join('\r\n');
    socket.write(`POST /api/v1/events HTTP/1.1\r\n${headers}\r\n\r\n${firstBytes}`);
  });
}

describe('reading request bodies', () => {
  it('answers 401 to a request without a key before reading its body, and closes the connection', async () => {
    const res = await partialRequest({}, '['.repeat(1000), 800_000);
    expect(res.status).toBe(401);
    expect(res.text).toContain('"code":"unauthorized"');
    expect(res.text.toLowerCase()).toContain('connection: close');
  });

  it('answers 401 to a wrong key without reading the body', async () => {
    const res = await partialRequest({ authorization: 'Bearer sk_admin_not_a_real_key_at_all' }, '['.repeat(1000), 800_000);
    expect(res.status).toBe(401);
  });

  it('refuses deep nesting while the body arrives (422 json_too_deep after its first bytes)', async () => {
    const res = await partialRequest({ authorization: `Bearer ${ADMIN_KEY}` }, '['.repeat(1000), 800_000);
    expect(res.status).toBe(422);
    expect(res.text).toContain('"code":"json_too_deep"');
  });

  it('refuses a declared length over the limit before reading', async () => {
    const res = await partialRequest({ authorization: `Bearer ${ADMIN_KEY}` }, '{', 5_000_000);
    expect(res.status).toBe(413);
  });
});
