/**
 * The slack connector end to end: a real gateway delivering to a local fake of Slack, both
 * an incoming webhook (plain-text `ok` and plain-text error codes) and the Web API's
 * chat.postMessage (`{"ok": true | false, ...}` JSON), over real HTTP.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MappingRegistry } from '../../src/services/mapping-registry.ts';
import { REPO_ROOT, type TestGateway } from '../support/gateway.ts';
import type { ReceivedRequest, Responder } from '../support/receiver.ts';
import { createSubscription, deliveryFor, eventFrom, gatewayForTest, header, receiverForTest, waitForDelivery } from '../delivery/delivery-helpers.ts';

const HOOK_PATH = '/services/T0001/B0001/s3cr3tW3bh00kT0k3nAbCdEf';
const BOT_TOKEN = 'xoxb-1111-2222-s3cr3tB0tT0k3nAbCdEf';
const FAST = { schedule: ['0s', '50ms', '50ms'] };
const EITHER = 'give either "webhook_url" (an incoming webhook), or "bot_token" and "channel" (chat.postMessage, optionally "api_base_url"), not both';

let mappings: MappingRegistry;

beforeAll(async () => {
  mappings = new MappingRegistry({ dir: path.join(REPO_ROOT, 'mappings') });
  await mappings.load();
});

/** hooks.slack.com: 200 with the plain-text body `ok`. */
const ok = (): ReturnType<Responder> => ({ status: 200, body: 'ok' });
/** hooks.slack.com's errors: the status and a plain-text error code. */
const slackError = (status: number, code: string): ReturnType<Responder> => ({ status, body: code });
/** slack.com/api: JSON, HTTP 200 even for application errors. */
const api = (body: Record<string, unknown>, status = 200, headers: Record<string, string> = {}): ReturnType<Responder> => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  body: JSON.stringify(body),
});
const posted = { ok: true, channel: 'C0123456789', ts: '1503435956.000247', message: { type: 'message', text: 'hi' } };

/** Posts a fixture event with a fresh id; returns it and its delivery for the subscription. */
async function send(gw: TestGateway, subscriptionId: string, name = 'call.ended') {
  const event = eventFrom(name);
  const res = await gw.api('POST', '/api/v1/events', event);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return { event, deliveryId: deliveryFor(res.body, subscriptionId) };
}

async function webhookSubscription(gw: TestGateway, fakeUrl: string, extra: Record<string, unknown> = {}) {
  return createSubscription(gw, { connector: 'slack', connector_options: { webhook_url: `${fakeUrl}${HOOK_PATH}` }, events: ['call.*', 'signal.*'], retry: FAST, ...extra });
}

async function botSubscription(gw: TestGateway, fakeUrl: string, extra: Record<string, unknown> = {}) {
  return createSubscription(gw, {
    connector: 'slack',
    connector_options: { bot_token: BOT_TOKEN, channel: 'C0123456789', api_base_url: `${fakeUrl}/api` },
    events: ['call.*', 'signal.*'],
    retry: FAST,
    ...extra,
  });
}

const bodyOf = (req: ReceivedRequest) => JSON.parse(req.body);

describe('slack incoming webhook', () => {
  it('delivers call.ended as the default Block Kit message, unsigned, with the webhook URL kept secret', async () => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest(ok);
    const sub = await webhookSubscription(gw, slack.url);
    expect(sub).toMatchObject({ connector: 'slack', url: '', rate_limit: 1, connector_options: { webhook_url: '********' } });
    const { event, deliveryId } = await send(gw, sub.id);

    const delivery = await waitForDelivery(gw, deliveryId);
    expect(delivery).toMatchObject({ status: 'delivered', attempt_count: 1, last_status_code: 200 });
    expect(delivery.attempts[0]).toMatchObject({ outcome: 'success', response: { status: 200, body: 'ok' } });

    expect(slack.requests).toHaveLength(1);
    const [req] = slack.requests;
    expect(req.method).toBe('POST');
    expect(req.url).toBe(HOOK_PATH);
    expect(header(req.headers, 'content-type')).toBe('application/json');
    expect(header(req.headers, 'webhook-signature')).toBe('');
    expect(header(req.headers, 'x-webhook-signature')).toBe('');
    expect(bodyOf(req)).toEqual(await mappings.render('slack/default', event, { connector: 'slack', options: {} }));
    expect(bodyOf(req).blocks[0].text.text).toBe(':telephone_receiver: Call ended: inbound, +1234567890');

    // The URL is the credential: the log keeps the origin only.
    expect(delivery.attempts[0].request.url).toBe(`${slack.url}/********`);
    expect(JSON.stringify(delivery)).not.toContain('s3cr3tW3bh00kT0k3n');
    const stored = await gw.api('GET', `/api/v1/webhooks/${sub.id}`);
    expect(JSON.stringify(stored.body)).not.toContain('s3cr3tW3bh00kT0k3n');
  });

  it('paces deliveries at one message a second by default', async () => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest(ok);
    const sub = await webhookSubscription(gw, slack.url);
    const first = await send(gw, sub.id, 'call.ended');
    const second = await send(gw, sub.id, 'call.failed');
    await waitForDelivery(gw, first.deliveryId);
    await waitForDelivery(gw, second.deliveryId);
    expect(slack.requests).toHaveLength(2);
    expect(slack.requests[1].at - slack.requests[0].at).toBeGreaterThanOrEqual(900);
  });

  it('retries a 429 after the Retry-After Slack sends', async () => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest((_req, index) => (index === 0 ? { status: 429, headers: { 'retry-after': '1' }, body: 'rate_limited' } : ok()));
    const sub = await webhookSubscription(gw, slack.url);
    const { deliveryId } = await send(gw, sub.id);
    const delivery = await waitForDelivery(gw, deliveryId);
    expect(delivery.status).toBe('delivered');
    expect(delivery.attempts.map((a: any) => [a.outcome, a.response.status])).toEqual([['retry', 429], ['success', 200]]);
    expect(delivery.attempts[0].error).toBe('Slack rate limit (429 rate_limited); retrying after Retry-After');
    // The schedule says 50 ms; Slack said 1 s.
    expect(slack.requests[1].at - slack.requests[0].at).toBeGreaterThanOrEqual(950);
  });

  it('retries a 500', async () => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest((_req, index) => (index === 0 ? slackError(500, 'rollup_error') : ok()));
    const sub = await webhookSubscription(gw, slack.url);
    const { deliveryId } = await send(gw, sub.id);
    const delivery = await waitForDelivery(gw, deliveryId);
    expect(delivery.status).toBe('delivered');
    expect(delivery.attempts.map((a: any) => a.error)).toEqual(['Slack answered 500 rollup_error', null]);
  });

  it.each([
    [404, 'no_service'],
    [404, 'channel_not_found'],
    [410, 'channel_is_archived'],
    [403, 'invalid_token'],
    [403, 'action_prohibited'],
    [403, 'team_disabled'],
  ])('%i %s fails the delivery and disables the subscription with Slack\'s error in the reason', async (status, code) => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest(() => slackError(status, code));
    const sub = await webhookSubscription(gw, slack.url);
    const { deliveryId } = await send(gw, sub.id);
    const delivery = await waitForDelivery(gw, deliveryId);
    expect(delivery).toMatchObject({ status: 'failed', attempt_count: 1, last_status_code: status });
    expect(delivery.attempts[0]).toMatchObject({ outcome: 'disabled', response: { status, body: code } });
    expect(delivery.last_error).toContain(`Slack answered ${status} ${code}`);
    const after = await gw.api('GET', `/api/v1/webhooks/${sub.id}`);
    expect(after.body.enabled).toBe(false);
    expect(after.body.disabled_reason).toContain(`${status} ${code}`);
    expect(slack.requests).toHaveLength(1);
  });

  it('400 invalid_payload fails the delivery with Slack\'s error text and keeps the subscription', async () => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest(() => slackError(400, 'invalid_payload'));
    const sub = await webhookSubscription(gw, slack.url);
    const { deliveryId } = await send(gw, sub.id);
    const delivery = await waitForDelivery(gw, deliveryId);
    expect(delivery).toMatchObject({ status: 'failed', attempt_count: 1, last_status_code: 400 });
    expect(delivery.attempts[0].outcome).toBe('fail');
    expect(delivery.last_error).toBe("Slack rejected the message (400 invalid_payload); check the template's Block Kit output (POST /api/v1/mappings/preview)");
    expect((await gw.api('GET', `/api/v1/webhooks/${sub.id}`)).body).toMatchObject({ enabled: true, disabled_reason: null });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(slack.requests).toHaveLength(1);
  });
});

describe('slack as the ops channel for Sluice itself', () => {
  it('posts sluice.delivery.failed when another subscription\'s delivery fails', async () => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest(ok);
    const crm = await receiverForTest(() => ({ status: 422, body: 'unknown field' }));
    const ops = await createSubscription(gw, { connector: 'slack', connector_options: { webhook_url: `${slack.url}${HOOK_PATH}` }, events: ['sluice.*'] });
    const broken = await createSubscription(gw, { url: `${crm.url}/hooks/sluice`, events: ['call.ended'], retry: FAST });
    const { deliveryId } = await send(gw, broken.id);
    expect((await waitForDelivery(gw, deliveryId)).status).toBe('failed');

    await waitForDeliveries(gw, ops.id, 1);
    const message = bodyOf(slack.requests[0]);
    expect(message.blocks[0].text.text).toBe(':warning: Sluice: a call.ended delivery failed');
    expect(message.text.startsWith(`Sluice could not deliver call.ended to ${crm.url}/hooks/sluice after 1 attempt (HTTP 422`)).toBe(true);
    expect(message.blocks[1].text.text).toContain(`\`POST /api/v1/deliveries/${deliveryId}/replay\``);
  });
});

/** Waits until a subscription has `count` delivered deliveries. */
async function waitForDeliveries(gw: TestGateway, subscriptionId: string, count: number) {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const res = await gw.api('GET', `/api/v1/webhooks/${subscriptionId}/deliveries?status=delivered`);
    if (res.body.data?.length >= count) return res.body.data;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} deliveries to ${subscriptionId}: ${JSON.stringify(res.body)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('slack chat.postMessage (bot token)', () => {
  it('posts with the bearer token and the channel, and masks the token in the delivery log', async () => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest(() => api(posted));
    const sub = await botSubscription(gw, slack.url);
    expect(sub.connector_options).toEqual({ bot_token: '********', channel: 'C0123456789', api_base_url: `${slack.url}/api` });
    const { event, deliveryId } = await send(gw, sub.id, 'signal.frustration_spike');
    const delivery = await waitForDelivery(gw, deliveryId);
    expect(delivery).toMatchObject({ status: 'delivered', attempt_count: 1 });

    const [req] = slack.requests;
    expect(req.url).toBe('/api/chat.postMessage');
    expect(header(req.headers, 'authorization')).toBe(`Bearer ${BOT_TOKEN}`);
    expect(header(req.headers, 'content-type')).toBe('application/json; charset=utf-8');
    const rendered = (await mappings.render('slack/default', event, { connector: 'slack', options: {} })) as Record<string, unknown>;
    expect(bodyOf(req)).toEqual({ channel: 'C0123456789', ...rendered });

    expect(delivery.attempts[0].request.headers.authorization).toBe('********');
    expect(JSON.stringify(delivery)).not.toContain('s3cr3tB0tT0k3n');
  });

  it('retries {"ok": false, "error": "ratelimited"} and a 429, then delivers', async () => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest((_req, index) =>
      index === 0 ? api({ ok: false, error: 'ratelimited' }) : index === 1 ? api({ ok: false, error: 'ratelimited' }, 429, { 'retry-after': '1' }) : api(posted),
    );
    const sub = await botSubscription(gw, slack.url);
    const { deliveryId } = await send(gw, sub.id);
    const delivery = await waitForDelivery(gw, deliveryId);
    expect(delivery.status).toBe('delivered');
    expect(delivery.attempts.map((a: any) => [a.outcome, a.response.status, a.error])).toEqual([
      ['retry', 200, 'Slack chat.postMessage error ratelimited (HTTP 200)'],
      ['retry', 429, 'Slack rate limit (429 ratelimited); retrying after Retry-After'],
      ['success', 200, null],
    ]);
    expect(slack.requests[2].at - slack.requests[1].at).toBeGreaterThanOrEqual(950);
  });

  it('{"ok": false, "error": "not_in_channel"} disables the subscription', async () => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest(() => api({ ok: false, error: 'not_in_channel' }));
    const sub = await botSubscription(gw, slack.url);
    const { deliveryId } = await send(gw, sub.id);
    const delivery = await waitForDelivery(gw, deliveryId);
    expect(delivery).toMatchObject({ status: 'failed', attempt_count: 1 });
    expect(delivery.attempts[0].outcome).toBe('disabled');
    const after = await gw.api('GET', `/api/v1/webhooks/${sub.id}`);
    expect(after.body.enabled).toBe(false);
    expect(after.body.disabled_reason).toMatch(/^Slack chat\.postMessage error not_in_channel: the bot is not a member/);
  });

  it.each(['channel_not_found', 'not_in_channel', 'is_archived'])(
    '%s on a channel the template chose fails only that delivery; the subscription keeps delivering',
    async (code) => {
      const gw = await gatewayForTest();
      // Slack answers the error for the template's channel, and posts to the subscription's own.
      const slack = await receiverForTest((req) => (JSON.parse(req.body).channel === 'C0123456789' ? api(posted) : api({ ok: false, error: code })));
      const routed = '$merge([$$, {"channel": event = "call.ended" ? "#vip-calls" : "C0123456789"}])';
      const sub = await botSubscription(gw, slack.url, { mapping: `(${routed})` });
      const first = await send(gw, sub.id, 'call.ended');
      const delivery = await waitForDelivery(gw, first.deliveryId);
      expect(delivery).toMatchObject({ status: 'failed', attempt_count: 1 });
      expect(delivery.attempts[0].outcome).toBe('fail');
      expect(delivery.last_error).toMatch(new RegExp(`^Slack chat\\.postMessage error ${code} for channel "#vip-calls", which the template chose`));
      expect((await gw.api('GET', `/api/v1/webhooks/${sub.id}`)).body).toMatchObject({ enabled: true, disabled_reason: null });

      const next = await send(gw, sub.id, 'signal.frustration_spike');
      expect((await waitForDelivery(gw, next.deliveryId)).status).toBe('delivered');
      expect(slack.requests.map((r) => bodyOf(r).channel)).toEqual(['#vip-calls', 'C0123456789']);
    },
  );

  it('a channel error still disables the subscription when the template kept its own channel', async () => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest(() => api({ ok: false, error: 'channel_not_found' }));
    const sub = await botSubscription(gw, slack.url, { mapping: '$merge([$$, {"channel": "C0123456789"}])' });
    const delivery = await waitForDelivery(gw, (await send(gw, sub.id)).deliveryId);
    expect(delivery.attempts[0].outcome).toBe('disabled');
    expect((await gw.api('GET', `/api/v1/webhooks/${sub.id}`)).body.enabled).toBe(false);
  });

  it('{"ok": false, "error": "invalid_blocks"} fails the delivery with Slack\'s explanation', async () => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest(() => api({ ok: false, error: 'invalid_blocks', response_metadata: { messages: ['[ERROR] must be more than 0 characters [json-pointer:/blocks/1/text/text]'] } }));
    const sub = await botSubscription(gw, slack.url);
    const { deliveryId } = await send(gw, sub.id);
    const delivery = await waitForDelivery(gw, deliveryId);
    expect(delivery).toMatchObject({ status: 'failed', attempt_count: 1 });
    expect(delivery.last_error).toBe('Slack chat.postMessage error invalid_blocks: [ERROR] must be more than 0 characters [json-pointer:/blocks/1/text/text]');
    expect((await gw.api('GET', `/api/v1/webhooks/${sub.id}`)).body.enabled).toBe(true);
  });
});

describe('slack subscriptions through the API', () => {
  it.each([
    ['no credentials', {}],
    ['both a webhook URL and a bot token', { webhook_url: 'https://hooks.slack.com/services/T/B/X', bot_token: BOT_TOKEN, channel: 'C1' }],
    ['a bot token without a channel', { bot_token: BOT_TOKEN }],
  ])('refuses %s with a message that says what to give', async (_what, options) => {
    const gw = await gatewayForTest();
    const res = await gw.api('POST', '/api/v1/webhooks', { connector: 'slack', connector_options: options, events: ['call.ended'] });
    expect(res.status).toBe(422);
    expect(res.body.error.details).toEqual([{ path: '$.connector_options', message: EITHER }]);
  });

  it('lists the connector with its options schema, secret options and pacing default', async () => {
    const gw = await gatewayForTest();
    const res = await gw.api('GET', '/api/v1/connectors');
    expect(res.status).toBe(200);
    const slack = res.body.data.find((c: any) => c.name === 'slack');
    expect(slack).toMatchObject({ title: 'Slack', url: 'none', secret_options: ['webhook_url', 'bot_token'], default_mapping: 'slack/default', defaults: { rate_limit: 1 } });
    expect(Object.keys(slack.options_schema.properties)).toEqual(['webhook_url', 'bot_token', 'channel', 'api_base_url']);
  });

  it('a test send returns the attempt with Slack\'s answer and marks the message as a test', async () => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest(ok);
    const sub = await webhookSubscription(gw, slack.url);
    const res = await gw.api('POST', `/api/v1/webhooks/${sub.id}/test`, { event: 'signal.frustration_spike' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ event: 'signal.frustration_spike', status: 'delivered', attempt: { outcome: 'success', response: { status: 200, body: 'ok' } } });
    expect(slack.requests).toHaveLength(1);
    const message = bodyOf(slack.requests[0]);
    expect(message.text).toBe('[test] [HIGH] Frustration spike in conversation conv_84302 (agent sam.k)');
    expect(message.blocks.at(-1).elements).toContainEqual({ type: 'mrkdwn', text: ':test_tube: test event' });
  });
});
