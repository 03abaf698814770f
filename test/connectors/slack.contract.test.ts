/**
 * The slack connector end to end: a real gateway delivering to a local fake of Slack, both
 * an incoming webhook (plain-text `ok` and plain-text error codes) and the Web API's
 * chat.postMessage (`{"ok": true | false, ...}` JSON), over real HTTP.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MappingRegistry } from '../../src/services/mapping-registry.ts';
import { ROOMY_LIMITS } from '../support/limits.ts';
import { REPO_ROOT, type TestGateway } from '../support/gateway.ts';
import type { ReceivedRequest, Responder } from '../support/receiver.ts';
import { createSubscription, deliveryFor, eventFrom, gatewayForTest, getDelivery, header, receiverForTest, sentinelArrives, uniqueEventId, waitForDelivery } from '../delivery/delivery-helpers.ts';
import { catalogExample } from '../support/catalog.ts';

const HOOK_PATH = '/services/T0001/B0001/s3cr3tW3bh00kT0k3nAbCdEf';
const BOT_TOKEN = 'xoxb-1111-2222-s3cr3tB0tT0k3nAbCdEf';
const FAST = { schedule: ['0s', '50ms', '50ms'] };
const EITHER = 'give either "webhook_url" (an incoming webhook), or "bot_token" and "channel" (chat.postMessage, optionally "api_base_url"), not both';

let mappings: MappingRegistry;

beforeAll(async () => {
  mappings = new MappingRegistry({ dir: path.join(REPO_ROOT, 'mappings'), limits: ROOMY_LIMITS });
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
    // One slot a second; the first can be late for its slot on a loaded machine (never early), which
    // shortens the gap by that much. Unpaced, the two would arrive milliseconds apart.
    expect(slack.requests[1].at - slack.requests[0].at).toBeGreaterThanOrEqual(500);
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
    expect(delivery.status, JSON.stringify(delivery.attempts)).toBe('delivered');
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
    // Not a fixed sleep: a later delivery to the same receiver arriving is the sign that no retry was queued before it.
    await sentinelArrives(gw, slack);
    expect(slack.requests.filter((r) => r.url !== '/sentinel')).toHaveLength(1);
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

/**
 * A stand-in for slack.com/api that keeps the messages it was given: chat.postMessage answers
 * {"ok": true, "channel", "ts"} with a new ts each time (a reply keeps its thread_ts), chat.update
 * changes a kept message. `answer` can replace the answer to one request.
 */
async function fakeSlackApi(answer: (req: ReceivedRequest, index: number) => ReturnType<Responder> | undefined = () => undefined) {
  const messages = new Map<string, { channel: string; thread_ts?: string; text: string }>();
  let clock = 1_700_000_000;
  const receiver = await receiverForTest((req, index) => {
    const override = answer(req, index);
    if (override) return override;
    const body = bodyOf(req);
    if (req.url === '/api/chat.postMessage') {
      const ts = `${++clock}.000100`;
      messages.set(ts, { channel: body.channel, thread_ts: body.thread_ts, text: body.text });
      return api({ ok: true, channel: body.channel, ts, message: { type: 'message', text: body.text } });
    }
    if (req.url === '/api/chat.update') {
      const kept = messages.get(body.ts);
      if (!kept || kept.channel !== body.channel) return api({ ok: false, error: 'message_not_found' });
      kept.text = body.text;
      return api({ ok: true, channel: body.channel, ts: body.ts, text: body.text });
    }
    return api({ ok: false, error: 'unknown_method' }, 404);
  });
  return { ...receiver, messages, bodies: () => receiver.requests.map((r) => ({ method: r.url.replace('/api/', ''), ...bodyOf(r) })) };
}

function conversationEvent(name: 'signal.frustration_spike' | 'signal.resolved', conversation: string) {
  const event = name === 'signal.resolved' ? { ...catalogExample('signal.resolved'), id: uniqueEventId('resolved') } : eventFrom(name);
  return { ...event, data: { ...event.data, conversation_id: conversation } };
}

async function postEvent(gw: TestGateway, subscriptionId: string, event: { id: string }) {
  const res = await gw.api('POST', '/api/v1/events', event);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return deliveryFor(res.body, subscriptionId);
}

describe('slack following an incident (ordered subscription)', () => {
  const ORDERED = { ordering: { key: 'data.conversation_id' }, rate_limit: null };

  it('with a bot token: the first message of a key opens a thread, the next ones and the resolve reply in it, then the key starts afresh', async () => {
    const gw = await gatewayForTest();
    // The opening message meets a 500 first: the resolve accepted meanwhile still waits for it.
    const slack = await fakeSlackApi((_req, index) => (index === 0 ? api({ ok: false, error: 'internal_error' }, 500) : undefined));
    const sub = await botSubscription(gw, slack.url, ORDERED);
    const opened = await postEvent(gw, sub.id, conversationEvent('signal.frustration_spike', 'conv_7'));
    await waitForDelivery(gw, opened, (d) => d.attempts.length === 1);
    const again = await postEvent(gw, sub.id, conversationEvent('signal.frustration_spike', 'conv_7'));
    const elsewhere = await postEvent(gw, sub.id, conversationEvent('signal.frustration_spike', 'conv_8'));
    const resolved = await postEvent(gw, sub.id, conversationEvent('signal.resolved', 'conv_7'));
    for (const id of [opened, again, elsewhere, resolved]) expect(await waitForDelivery(gw, id)).toMatchObject({ status: 'delivered' });
    const parent = JSON.parse((await getDelivery(gw, opened)).attempts.at(-1).response.body).ts;
    const conv7 = slack.bodies().filter((b) => b.text.includes('conv_7'));
    expect(conv7.map((b) => [b.method, b.thread_ts ?? null])).toEqual([
      ['chat.postMessage', null],
      ['chat.postMessage', null],
      ['chat.postMessage', parent],
      ['chat.postMessage', parent],
    ]);
    expect(conv7.at(-1)!.text).toMatch(/^Resolved/);
    expect(conv7.every((b) => b.channel === 'C0123456789')).toBe(true);
    // Another key opened its own thread.
    expect(slack.bodies().find((b) => b.text.includes('conv_8'))!.thread_ts).toBeUndefined();
    // Resolved: the next signal of conv_7 opens a new thread.
    const reopened = await postEvent(gw, sub.id, conversationEvent('signal.frustration_spike', 'conv_7'));
    await waitForDelivery(gw, reopened);
    expect(slack.bodies().at(-1)!.thread_ts).toBeUndefined();
  });

  it('with on_resolve "update": the resolving event replaces the message that opened the key', async () => {
    const gw = await gatewayForTest();
    const slack = await fakeSlackApi();
    const sub = await botSubscription(gw, slack.url, { ...ORDERED, connector_options: { bot_token: BOT_TOKEN, channel: 'C0123456789', api_base_url: `${slack.url}/api`, on_resolve: 'update' } });
    const opened = await postEvent(gw, sub.id, conversationEvent('signal.frustration_spike', 'conv_9'));
    await waitForDelivery(gw, opened);
    const resolved = await postEvent(gw, sub.id, conversationEvent('signal.resolved', 'conv_9'));
    const delivery = await waitForDelivery(gw, resolved);
    expect(delivery.status).toBe('delivered');
    const [, update] = slack.bodies();
    expect(update).toMatchObject({ method: 'chat.update', channel: 'C0123456789', ts: '1700000001.000100' });
    expect(Object.keys(update).sort()).toEqual(['blocks', 'channel', 'method', 'text', 'ts']);
    expect(slack.messages.get('1700000001.000100')!.text).toMatch(/^Resolved/);
    expect(slack.requests[1].url).toBe('/api/chat.update');
  });

  it('with on_resolve "update" and the opening message gone: posts the resolve instead, both requests in the log', async () => {
    const gw = await gatewayForTest();
    const slack = await fakeSlackApi();
    const sub = await botSubscription(gw, slack.url, { ...ORDERED, connector_options: { bot_token: BOT_TOKEN, channel: 'C0123456789', api_base_url: `${slack.url}/api`, on_resolve: 'update' } });
    await waitForDelivery(gw, await postEvent(gw, sub.id, conversationEvent('signal.frustration_spike', 'conv_10')));
    slack.messages.clear();
    const delivery = await waitForDelivery(gw, await postEvent(gw, sub.id, conversationEvent('signal.resolved', 'conv_10')));
    expect(delivery.status).toBe('delivered');
    expect(delivery.attempts[0].steps.map((step: any) => [step.name, step.response_status])).toEqual([['chat.update', 200], ['chat.postMessage', 200]]);
    expect(slack.bodies().at(-1)).toMatchObject({ method: 'chat.postMessage', channel: 'C0123456789' });
    expect(slack.bodies().at(-1)!.thread_ts).toBeUndefined();
  });

  it('with an incoming webhook: the resolved message is posted, after the message it resolves', async () => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest((_req, index) => (index === 0 ? slackError(500, 'rollup_error') : ok()));
    const sub = await webhookSubscription(gw, slack.url, ORDERED);
    const opened = await postEvent(gw, sub.id, conversationEvent('signal.frustration_spike', 'conv_11'));
    await waitForDelivery(gw, opened, (d) => d.attempts.length === 1);
    const resolved = await postEvent(gw, sub.id, conversationEvent('signal.resolved', 'conv_11'));
    await waitForDelivery(gw, resolved);
    expect(slack.requests.map((r) => bodyOf(r).text.replace(/:.*$/, ''))).toEqual([
      expect.stringMatching(/Frustration spike/),
      expect.stringMatching(/Frustration spike/),
      expect.stringMatching(/^Resolved/),
    ]);
    expect(slack.requests.every((r) => bodyOf(r).thread_ts === undefined)).toBe(true);
  });

  it('without ordering, a bot subscription posts every message on its own, as before', async () => {
    const gw = await gatewayForTest();
    const slack = await fakeSlackApi();
    const sub = await botSubscription(gw, slack.url, { rate_limit: null });
    await waitForDelivery(gw, await postEvent(gw, sub.id, conversationEvent('signal.frustration_spike', 'conv_12')));
    await waitForDelivery(gw, await postEvent(gw, sub.id, conversationEvent('signal.resolved', 'conv_12')));
    expect(slack.bodies().map((b) => b.thread_ts)).toEqual([undefined, undefined]);
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
    expect(Object.keys(slack.options_schema.properties)).toEqual(['webhook_url', 'bot_token', 'channel', 'api_base_url', 'resolve_events', 'on_resolve']);
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
