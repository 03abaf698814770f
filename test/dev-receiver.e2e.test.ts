import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice } from './support/cli.ts';
import { freePort } from './support/gateway-process.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';
import { createSubscription, eventFrom } from './delivery/delivery-helpers.ts';

/**
 * `sluice receive`, the receiver the README walkthrough relies on: the real CLI as a child
 * process, fed by a real gateway, printing each delivery and checking both signature schemes.
 */

let gw: TestGateway;
const running: { stop: () => Promise<number | null> }[] = [];

beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  for (const r of running) await r.stop();
  await gw?.stop();
});

async function receive(args: string[]) {
  const port = await freePort();
  const cli = startSluice(['receive', '--port', String(port), ...args], {});
  running.push(cli);
  await cli.waitForLine((l) => l.startsWith(`listening on http://127.0.0.1:${port}/`), 30_000);
  return { ...cli, port, url: `http://127.0.0.1:${port}` };
}

describe('sluice receive', () => {
  it('prints a delivery and reports both signatures valid with the subscription secret', async () => {
    const port = await freePort();
    const sub = await createSubscription(gw, { url: `http://127.0.0.1:${port}/hooks`, events: ['call.ended'] });
    const cli = startSluice(['receive', '--port', String(port), '--secret', sub.signing_secret], {});
    running.push(cli);
    await cli.waitForLine((l) => l.includes('listening on') && l.includes('answering 200'), 30_000);
    const event = eventFrom('call.ended');
    expect((await gw.api('POST', '/api/v1/events', event)).status).toBe(202);
    await cli.waitForLine((l) => l.includes('POST /hooks') && l.includes('event=call.ended'), 20_000);
    expect(await cli.waitForLine((l) => l.includes('webhook-signature (Standard Webhooks):'))).toMatch(/:\s+valid$/);
    expect(await cli.waitForLine((l) => l.includes('X-Webhook-Signature (hex HMAC):'))).toMatch(/:\s+valid$/);
    await cli.waitForLine((l) => l.includes(`"id": "${event.id}"`));
  }, 60_000);

  it('reports INVALID for a wrong secret and for a forged request', async () => {
    const port = await freePort();
    const sub = await createSubscription(gw, { url: `http://127.0.0.1:${port}/wrong`, events: ['call.ended'], retry: { schedule: ['0s'] } });
    const other = 'whsec_' + Buffer.from('not the subscription secret at all!').toString('base64');
    expect(other).not.toBe(sub.signing_secret);
    const cli = startSluice(['receive', '--port', String(port), '--secret', other], {});
    running.push(cli);
    await cli.waitForLine((l) => l.includes('listening on'), 30_000);
    expect((await gw.api('POST', '/api/v1/events', eventFrom('call.ended'))).status).toBe(202);
    expect(await cli.waitForLine((l) => l.includes('webhook-signature (Standard Webhooks):'), 20_000)).toMatch(/INVALID/);
    expect(await cli.waitForLine((l) => l.includes('X-Webhook-Signature (hex HMAC):'))).toMatch(/INVALID$/);

    // A forged request with made-up headers, to the same receiver.
    const before = cli.lines.length;
    const forged = await fetch(`http://127.0.0.1:${port}/forged`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': 'msg_forged', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,AAAA', 'x-webhook-signature': 'sha256=00' },
      body: '{"forged":true}',
    });
    expect(forged.status).toBe(200);
    await cli.waitForLine((l) => l.includes('POST /forged'));
    const after = () => cli.lines.slice(before);
    // The body is printed last: once it is there, the signature lines for this request are too.
    await cli.waitForLine((l) => l.includes('"forged": true'));
    expect(after().find((l) => l.includes('webhook-signature (Standard Webhooks):'))).toMatch(/INVALID/);
    expect(after().find((l) => l.includes('X-Webhook-Signature'))).toMatch(/INVALID$/);
  }, 60_000);

  it('answers with --status, so retries can be watched', async () => {
    const cli = await receive(['--status', '503']);
    expect(cli.lines.some((l) => l.includes('answering 503'))).toBe(true);
    const res = await fetch(`${cli.url}/x`, { method: 'POST', body: 'not json' });
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('failing on purpose');
    await cli.waitForLine((l) => l === '  not json');
  }, 60_000);
});
