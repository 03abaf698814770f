import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ADMIN_KEY, fixture, startGateway, waitFor, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';
import { runSluice, startSluice } from '../support/cli.ts';
import { buildSignatureHeaders } from '../../src/core/signing.ts';

// Each run is a real `node bin/sluice.js` child process (about a second each on this machine).
vi.setConfig({ testTimeout: 60_000 });

let gw: TestGateway;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let env: Record<string, string>;
let subId: string;

beforeAll(async () => {
  gw = await startGateway();
  receiver = await startReceiver();
  env = { SLUICE_URL: gw.url, SLUICE_API_KEY: ADMIN_KEY };
  const created = await gw.api('POST', '/api/v1/webhooks', { url: `${receiver.url}/hook`, events: ['call.*'], retry: { schedule: ['0s'] } });
  subId = created.body.id;
});
afterAll(async () => {
  await gw.stop();
  await receiver.close();
});

describe('sluice send', () => {
  it('posts an event from a file and says where it goes; --json prints the API answer', async () => {
    const data = JSON.stringify(fixture('call.ended').data);
    const human = await runSluice(['send', 'call.ended', '--data', '@-'], { env, input: data });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^accepted evt_\w+ \(call\.ended\): 1 delivery\n  dlv_\w+ -> sub_\w+/);
    const json = await runSluice(['send', 'call.ended', '--data', data, '--id', 'evt_cli_send_1', '--json'], { env });
    expect(JSON.parse(json.stdout)).toMatchObject({ id: 'evt_cli_send_1', event: 'call.ended', duplicate: false });
    const again = await runSluice(['send', 'call.ended', '--data', data, '--id', 'evt_cli_send_1'], { env });
    expect(again.stdout).toContain('already accepted (duplicate) evt_cli_send_1');
  });

  it('reports a refused event with its JSON paths (exit 1), bad --data (exit 2), an unreachable gateway (exit 3), a missing key (exit 2)', async () => {
    const refused = await runSluice(['send', 'call.ended', '--data', '{"call": {}}'], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/sluice: 422 invalid_event: .*\n  \$\.data/);
    const bad = await runSluice(['send', 'call.ended', '--data', '{oops'], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--data is not valid JSON');
    const down = await runSluice(['send', 'call.ended'], { env: { SLUICE_URL: 'http://127.0.0.1:9', SLUICE_API_KEY: ADMIN_KEY } });
    expect(down.code).toBe(3);
    expect(down.stderr).toContain('cannot reach the gateway at http://127.0.0.1:9');
    const noKey = await runSluice(['send', 'call.ended'], { env: { SLUICE_URL: gw.url } });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('SLUICE_API_KEY');
  });

  it('answers --help on every command and exits 2 on an unknown option', async () => {
    for (const command of ['send', 'deliveries', 'replay', 'verify', 'apply', 'export']) {
      const help = await runSluice([command, '--help']);
      expect(help.code, command).toBe(0);
      expect(help.stdout, command).toContain(`Usage: sluice ${command}`);
    }
    const unknown = await runSluice(['deliveries', '--colour']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--colour'");
  });
});

describe('sluice deliveries and replay', () => {
  it('lists deliveries, tails new ones live with --follow, and replays failed ones one by one or in bulk', async () => {
    receiver.respondWith(() => ({ status: 500 }));
    const sent = await gw.api('POST', '/api/v1/events', { event: 'call.failed', data: fixture('call.failed').data });
    const failedId: string = sent.body.deliveries[0].id;
    await waitFor(async () => (await gw.api('GET', `/api/v1/deliveries/${failedId}`)).body.status === 'failed', 10_000, 'the delivery to fail');

    const listed = await runSluice(['deliveries', '--status', 'failed'], { env });
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`${failedId}  failed +500  call\\.failed +${subId}`));

    receiver.respondWith(() => ({ status: 200 }));
    const tail = startSluice(['deliveries', '--follow', '--json', '--interval', '100ms'], env);
    try {
      await tail.waitForLine((l) => l.includes(failedId));
      const replayed = await runSluice(['replay', failedId], { env });
      expect(replayed.code).toBe(0);
      expect(replayed.stdout).toContain(`replaying ${failedId}`);
      // The same delivery shows up again, now delivered: a live tail.
      const line = await tail.waitForLine((l) => l.includes(failedId) && JSON.parse(l).status === 'delivered');
      expect(JSON.parse(line)).toMatchObject({ id: failedId, last_status_code: 200 });
    } finally {
      expect(await tail.stop()).toBe(0);
    }

    receiver.respondWith(() => ({ status: 500 }));
    const second = await gw.api('POST', '/api/v1/events', { event: 'call.failed', data: fixture('call.failed').data });
    const secondId: string = second.body.deliveries[0].id;
    await waitFor(async () => (await gw.api('GET', `/api/v1/deliveries/${secondId}`)).body.status === 'failed', 10_000, 'the second delivery to fail');
    receiver.respondWith(() => ({ status: 200 }));
    const bulk = await runSluice(['replay', '--subscription', subId, '--status', 'failed', '--since', '1h', '--json'], { env });
    expect(bulk.code).toBe(0);
    expect(JSON.parse(bulk.stdout)).toEqual({ replayed: 1, delivery_ids: [secondId] });
    await waitFor(async () => (await gw.api('GET', `/api/v1/deliveries/${secondId}`)).body.status === 'delivered', 10_000, 'the bulk replay to deliver');

    const usage = await runSluice(['replay'], { env });
    expect(usage.code).toBe(2);
    const badSince = await runSluice(['replay', '--subscription', subId, '--since', 'yesterday'], { env });
    expect(badSince.code).toBe(2);
    expect(badSince.stderr).toContain('"yesterday" is neither a duration');
  }, 60_000);
});

describe('sluice verify', () => {
  const secret = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
  const body = JSON.stringify(fixture('call.ended'));
  const signed = () => buildSignatureHeaders({ msgId: 'msg_1', timestampSeconds: Math.floor(Date.now() / 1000), body, secrets: [secret], eventName: 'call.ended', deliveryId: 'dlv_1' });
  const headerArgs = (headers: Record<string, string>) => Object.entries(headers).flatMap(([k, v]) => ['--header', `${k}: ${v}`]);

  it('checks both schemes over the raw body from standard input', async () => {
    const ok = await runSluice(['verify', '--secret', secret, ...headerArgs(signed())], { input: body });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('webhook-signature (Standard Webhooks): valid');
    expect(ok.stdout).toContain('X-Webhook-Signature (hex HMAC): valid');
  });

  it('exits 4 when the body was altered, 2 without signature headers, and explains in --json', async () => {
    const forged = await runSluice(['verify', '--secret', secret, '--json', ...headerArgs(signed())], { input: body.replace('call.ended', 'call.failed') });
    expect(forged.code).toBe(4);
    const result = JSON.parse(forged.stdout);
    expect(result.valid).toBe(false);
    expect(result.schemes['webhook-signature (Standard Webhooks)']).toMatchObject({ checked: true, valid: false });
    const none = await runSluice(['verify', '--secret', secret], { input: body });
    expect(none.code).toBe(2);
  });
});
