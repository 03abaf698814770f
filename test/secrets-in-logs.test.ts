import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.ts';
import { ADMIN_KEY, startGateway, waitFor, type TestGateway } from './support/gateway.ts';
import { startReceiver } from './support/receiver.ts';
import { createSubscription, eventFrom } from './delivery/delivery-helpers.ts';

/**
 * "Secrets are never logged", read off the logs themselves: the gateway runs with its real
 * logger (createLogger, the factory main.ts uses) at debug level, writing into a buffer here.
 */

/** A pino destination that keeps every line. */
function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { stream, lines, text: () => lines.join('\n') };
}

describe('the real logger configuration', () => {
  it('blanks secret-named fields wherever the gateway might pass them', () => {
    const out = capture();
    const logger = createLogger('debug', out.stream);
    const secret = 'sk_admin_LEAK_0123456789';
    logger.info({ secret, signing_secret: secret, password: secret, token: secret, key: secret, authorization: `Bearer ${secret}` }, 'top level');
    logger.info({ sub: { secret, signing_secret: secret, password: secret, token: secret, authorization: secret, Authorization: secret } }, 'one level down');
    logger.info({ headers: { authorization: secret }, req: { headers: { authorization: `Bearer ${secret}` } }, auth: { password: secret, token: secret, value: secret } }, 'requests');
    logger.error({ err: Object.assign(new Error('storage down'), { password: secret }) }, 'an error carrying a secret');
    expect(out.lines).toHaveLength(4);
    expect(out.text()).not.toContain('LEAK');
    expect(out.text()).toContain('[redacted]');
    expect(out.text()).toContain('storage down');
  });
});

describe('a working gateway logs no secret', { timeout: 30_000 }, () => {
  let gw: TestGateway;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const logs = capture();
  const secretPath = '/services/T0LOGLEAK/B0LOGLEAK/LOGLEAKSECRETPATH';

  beforeAll(async () => {
    receiver = await startReceiver((req) => {
      // A dead Slack webhook that quotes the URL it was called on; the rest echo what they got.
      if (req.url.startsWith('/services/')) return { status: 410, body: `gone ${req.url}` };
      if (req.url.startsWith('/teapot')) return { status: 418, body: JSON.stringify(req.headers) };
      return { status: 200, body: JSON.stringify(req.headers) };
    });
    gw = await startGateway({}, { logger: createLogger('debug', logs.stream) });
  });
  afterAll(async () => {
    await gw?.stop();
    await receiver?.close();
  });

  it('auth, signing secrets, a secret URL, API keys and an internal error: the log has the events, never the secrets', async () => {
    const password = 'log-leak-horse-battery';
    const bearer = 'tok_log_leak_0123456789';
    const basic = await createSubscription(gw, { url: `${receiver.url}/echo`, events: ['call.ended'], auth: { type: 'basic', username: 'alice', password } });
    const teapot = await createSubscription(gw, { url: `${receiver.url}/teapot`, events: ['call.ended'], auth: { type: 'bearer', token: bearer }, retry: { schedule: ['0s'] } });
    const slack = await createSubscription(gw, { connector: 'slack', events: ['call.ended'], connector_options: { webhook_url: `${receiver.url}${secretPath}` } });
    const created = await gw.api('POST', '/api/v1/keys', { role: 'ingest', name: 'logged?' });
    expect(created.status).toBe(201);
    expect((await gw.api('POST', '/api/v1/events', eventFrom('call.ended'), created.body.key)).status).toBe(202);

    // An internal error (500) whose error object carries a credential-named field.
    const storage = gw.sluice.storage;
    const list = storage.listSubscriptions;
    storage.listSubscriptions = async () => {
      throw Object.assign(new Error('simulated storage failure'), { password, token: bearer });
    };
    const failed = await gw.api('GET', '/api/v1/webhooks');
    storage.listSubscriptions = list;
    expect(failed.status).toBe(500);
    expect(failed.body.error.code).toBe('internal_error');
    expect(JSON.stringify(failed.body)).not.toContain('simulated storage failure');

    // Positive signals: the lines where a secret could slip in were written.
    await waitFor(() => logs.text().includes('subscription disabled') && logs.text().includes('request failed'), 15_000, 'the disable and 500 log lines');
    await waitFor(() => receiver.requests.some((r) => r.url === '/echo') && receiver.requests.some((r) => r.url === '/teapot'), 15_000, 'the other deliveries');
    const disabled = logs.lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'subscription disabled');
    expect(disabled).toMatchObject({ subscription_id: slack.id });
    expect(disabled.reason).toContain('410');

    const text = logs.text();
    const forbidden = {
      admin_key: ADMIN_KEY,
      ingest_key: created.body.key,
      signing_secret_basic: basic.signing_secret,
      signing_secret_teapot: teapot.signing_secret,
      signing_secret_slack: slack.signing_secret,
      password,
      basic_auth: Buffer.from(`alice:${password}`).toString('base64'),
      bearer,
      slack_path: 'T0LOGLEAK/B0LOGLEAK/LOGLEAKSECRETPATH',
      slack_path_encoded: encodeURIComponent(secretPath),
    };
    for (const [what, value] of Object.entries(forbidden)) expect(text, `the log contains the ${what}`).not.toContain(value);
  });
});
