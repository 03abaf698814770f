import { Ajv } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { SLACK_API_BASE_URL, postMessageUrl, slackConnector, slackErrorCode, slackMode } from '../../connectors/slack/index.ts';
import type { ConnectorContext, ResponseInfo, Verdict } from '../../src/delivery/connector.ts';
import { MappingRegistry } from '../../src/services/mapping-registry.ts';
import { ajvErrorsToDetails } from '../../src/services/subscription-input.ts';
import { fixture } from '../support/gateway.ts';
import { FIXTURE_EVENTS, type CatalogEvent, catalogExample, loadShippedMappings } from '../support/catalog.ts';

const WEBHOOK_URL = 'https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnopqrstuvwx';
const BOT = { bot_token: 'xoxb-1234-5678-abcdefghijkl', channel: 'C0123456789' };
const FIXTURES = FIXTURE_EVENTS;
const CATALOG_ONLY = ['signal.resolved', 'sluice.delivery.failed', 'sluice.webhook.disabled', 'review.received', 'transcript.available', 'lead.updated', 'call.qualified', 'audit.log.event'];

type Event = CatalogEvent;

let mappings: MappingRegistry;

beforeAll(async () => {
  mappings = await loadShippedMappings();
});

async function contextFor(event: Event, options: Record<string, unknown> = { webhook_url: WEBHOOK_URL }, headers: Record<string, string> = {}): Promise<ConnectorContext> {
  const visible = Object.fromEntries(Object.entries(options).filter(([k]) => !slackConnector.secretOptions.includes(k)));
  return {
    url: slackConnector.resolveUrl!(options),
    options,
    payload: await mappings.render(slackConnector.defaultMapping!, event, { connector: 'slack', options: visible }),
    event,
    deliveryId: 'dlv_test',
    msgId: 'msg_test',
    headers,
  };
}

async function messageFor(event: Event): Promise<any> {
  return JSON.parse(slackConnector.buildRequest(await contextFor(event)).body!);
}

const chars = (s: string) => Array.from(s).length;

/** Slack's Block Kit limits for a message (see connectors/slack/README.md). */
function expectWithinSlackLimits(message: any): void {
  expect(typeof message.text).toBe('string');
  expect(message.text.length).toBeGreaterThan(0);
  expect(chars(message.text)).toBeLessThanOrEqual(3_000);
  expect(Array.isArray(message.blocks)).toBe(true);
  expect(message.blocks.length).toBeLessThanOrEqual(50);
  for (const block of message.blocks) {
    if (block.type === 'header') {
      expect(block.text.type).toBe('plain_text');
      expect(chars(block.text.text)).toBeGreaterThan(0);
      expect(chars(block.text.text)).toBeLessThanOrEqual(150);
    } else if (block.type === 'section') {
      expect(block.text !== undefined || block.fields !== undefined).toBe(true);
      if (block.text) expect(chars(block.text.text)).toBeLessThanOrEqual(3_000);
      if (block.fields) {
        expect(block.fields.length).toBeGreaterThan(0);
        expect(block.fields.length).toBeLessThanOrEqual(10);
        for (const field of block.fields) expect(chars(field.text)).toBeLessThanOrEqual(2_000);
      }
    } else if (block.type === 'context') {
      expect(block.elements.length).toBeGreaterThan(0);
      expect(block.elements.length).toBeLessThanOrEqual(10);
    } else {
      throw new Error(`unexpected block type ${block.type}`);
    }
  }
}

const response = (status: number, body = '', headers: Record<string, string> = {}): ResponseInfo => ({ status, headers, body });

describe('slack: golden requests', () => {
  it('POSTs call.ended to the incoming webhook as Block Kit, unsigned, with a text fallback and the recording link', async () => {
    const request = slackConnector.buildRequest(await contextFor(fixture('call.ended')));
    const expected = {
      text: 'Call ended: inbound, +1234567890 (3m). Customer inquired about order status',
      unfurl_links: false,
      unfurl_media: false,
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: ':telephone_receiver: Call ended: inbound, +1234567890', emoji: true } },
        { type: 'section', text: { type: 'mrkdwn', text: 'Customer inquired about order status' } },
        {
          type: 'section',
          fields: [
            { type: 'mrkdwn', text: '*Call*\ncall_abc123' },
            { type: 'mrkdwn', text: '*Direction*\ninbound' },
            { type: 'mrkdwn', text: '*Phone*\n+1234567890' },
            { type: 'mrkdwn', text: '*Status*\ncompleted' },
            { type: 'mrkdwn', text: '*Duration*\n3m' },
            { type: 'mrkdwn', text: '*Assistant*\nCustomer Support' },
            { type: 'mrkdwn', text: '*Campaign*\nMarch Outreach' },
            { type: 'mrkdwn', text: '*Cost*\n0.45 USD' },
          ],
        },
        { type: 'section', text: { type: 'mrkdwn', text: '<https://storage.example.com/recordings/call_abc123.mp3|Listen to the recording>' } },
        {
          type: 'context',
          elements: [{ type: 'mrkdwn', text: '`call.ended` · evt_01HZX3K9Q2CALLENDED0001 · <!date^1773585000^{date_short_pretty} {time}|2026-03-15T14:30:00Z>' }],
        },
      ],
    };
    expect(request).toEqual({ method: 'POST', url: WEBHOOK_URL, headers: { 'content-type': 'application/json' }, body: JSON.stringify(expected), sign: false });
  });

  it('posts signal.frustration_spike with chat.postMessage: bearer token, channel first, severity emoji and text', async () => {
    const request = slackConnector.buildRequest(await contextFor(fixture('signal.frustration_spike'), BOT));
    const expected = {
      channel: 'C0123456789',
      text: '[HIGH] Frustration spike in conversation conv_84302 (agent sam.k)',
      unfurl_links: false,
      unfurl_media: false,
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: ':red_circle: Frustration spike [HIGH]', emoji: true } },
        { type: 'section', text: { type: 'mrkdwn', text: "Frustration score *0.87* with Dana Whitfield:\n>This is the third time I'm calling about the same charge." } },
        {
          type: 'section',
          fields: [
            { type: 'mrkdwn', text: '*Severity*\n:red_circle: HIGH' },
            { type: 'mrkdwn', text: '*Conversation*\nconv_84302' },
            { type: 'mrkdwn', text: '*Agent*\nsam.k' },
            { type: 'mrkdwn', text: '*Customer*\nDana Whitfield' },
            { type: 'mrkdwn', text: '*Frustration score*\n0.87' },
          ],
        },
        {
          type: 'context',
          elements: [{ type: 'mrkdwn', text: '`signal.frustration_spike` · evt_01HZX3K9Q2FRUSTRATN0001 · <!date^1777311903^{date_short_pretty} {time}|2026-04-27T17:45:03Z>' }],
        },
      ],
    };
    expect(request).toEqual({
      method: 'POST',
      url: 'https://slack.com/api/chat.postMessage',
      headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${BOT.bot_token}` },
      body: JSON.stringify(expected),
      sign: false,
    });
  });

  it('keeps custom headers but never lets them replace its own content-type or authorization', async () => {
    const ctx = await contextFor(fixture('lead.created'), { ...BOT, api_base_url: 'http://127.0.0.1:9/api/' }, { 'X-Team': 'ops', Authorization: 'Basic bm9wZQ==', 'Content-Type': 'text/plain' });
    const request = slackConnector.buildRequest(ctx);
    expect(request.url).toBe('http://127.0.0.1:9/api/chat.postMessage');
    expect(request.headers).toEqual({ 'X-Team': 'ops', 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${BOT.bot_token}` });
  });

  it('lets a template route a message to another channel, and accepts a plain string as the text', () => {
    const base = { url: '', event: fixture('lead.created'), deliveryId: 'dlv_1', msgId: 'msg_1', headers: {} };
    const routed = slackConnector.buildRequest({ ...base, options: BOT, payload: { channel: 'C0SALES', text: 'hi' } });
    expect(JSON.parse(routed.body!)).toEqual({ channel: 'C0SALES', text: 'hi' });
    const plain = slackConnector.buildRequest({ ...base, options: { webhook_url: WEBHOOK_URL }, payload: 'New lead: Pat' });
    expect(JSON.parse(plain.body!)).toEqual({ text: 'New lead: Pat' });
    expect(() => slackConnector.buildRequest({ ...base, options: { webhook_url: WEBHOOK_URL }, payload: [1, 2] })).toThrow(/Slack message object/);
  });

  it.each([...FIXTURES.map((name) => [name, 'fixture']), ...CATALOG_ONLY.map((name) => [name, 'catalog'])])('%s (%s): a header, a context line and a text fallback, within Slack limits', async (name, source) => {
    const event = source === 'fixture' ? fixture(name) : catalogExample(name);
    const message = await messageFor(event);
    expectWithinSlackLimits(message);
    expect(message.blocks[0].type).toBe('header');
    expect(message.blocks.at(-1).type).toBe('context');
    expect(message.blocks.at(-1).elements[0].text).toContain(`\`${name}\``);
  });

  it('gives Sluice ops alerts a clear message and the way to recover', async () => {
    const failed = await messageFor(catalogExample('sluice.delivery.failed'));
    expect(failed.blocks[0].text.text).toBe(':warning: Sluice: a call.ended delivery failed');
    expect(failed.text).toBe('Sluice could not deliver call.ended to https://crm.example.com/hooks/sluice after 10 attempts (HTTP 503 Service Unavailable).');
    expect(failed.blocks[1].text.text).toContain('`POST /api/v1/deliveries/dlv_01HZX3K9Q2DELIVERY00001/replay`');
    const disabled = await messageFor(catalogExample('sluice.webhook.disabled'));
    expect(disabled.blocks[0].text.text).toBe(':no_entry: Sluice disabled a subscription');
    expect(disabled.blocks[1].text.text).toContain('No successful delivery for 5 days');
    expect(disabled.blocks[1].text.text).toContain('`PATCH /api/v1/webhooks/sub_01HZX3K9Q2SUBSCRIPT0001`');
  });

  it.each([
    ['critical', ':rotating_light:'],
    ['high', ':red_circle:'],
    ['medium', ':large_orange_circle:'],
    ['low', ':large_yellow_circle:'],
    ['info', ':information_source:'],
  ])('shows severity %s as %s and in words', async (severity, emoji) => {
    const base = fixture('signal.disclosure_missed');
    const message = await messageFor({ ...base, data: { ...base.data, severity } });
    expect(message.blocks[0].text.text).toBe(`${emoji} Disclosure missed [${severity.toUpperCase()}]`);
    expect(message.text.startsWith(`[${severity.toUpperCase()}] Disclosure missed`)).toBe(true);
    expect(message.blocks[2].fields[0].text).toBe(`*Severity*\n${emoji} ${severity.toUpperCase()}`);
  });

  it('escapes mrkdwn control characters and cuts long values cleanly at every limit', async () => {
    const base = fixture('lead.created');
    const huge = 'Roofing & <Sons> '.repeat(400);
    const message = await messageFor({
      ...base,
      test: true,
      data: { lead: { ...base.data.lead, firstname: 'P'.repeat(200), company: huge }, changes: { note: { from: null, to: '<b>'.repeat(2_000) } } },
    });
    expectWithinSlackLimits(message);
    const [header, changes, fields, context] = message.blocks;
    expect(chars(header.text.text)).toBe(150);
    expect(header.text.text.endsWith('…')).toBe(true);
    // Cut at the limit, less the few characters of an entity the cut would have split.
    expect(chars(changes.text.text)).toBeGreaterThan(2_995);
    expect(changes.text.text.endsWith('…')).toBe(true);
    expect(changes.text.text).not.toMatch(/<b>/);
    expect(changes.text.text).toMatch(/^• note: — → &lt;b&gt;/);
    // Never half an entity at the cut.
    expect(changes.text.text).not.toMatch(/&[a-z]{0,3}…$/);
    const company = fields.fields.find((f: any) => f.text.startsWith('*Company*'));
    expect(chars(company.text)).toBeGreaterThan(1_995);
    expect(company.text.endsWith('…')).toBe(true);
    expect(company.text).toContain('Roofing &amp; &lt;Sons&gt;');
    expect(company.text).not.toMatch(/&[a-z]{0,3}…$/);
    expect(message.text.startsWith('[test] New lead: ')).toBe(true);
    expect(context.elements).toEqual([expect.objectContaining({ type: 'mrkdwn' }), { type: 'mrkdwn', text: ':test_tube: test event' }]);
  });

  it('escapes field labels built from data keys, so a key cannot notify the channel', async () => {
    const data = { '<!channel>': 'x', nested: { '<@U024BE7LH> & co': 'y' } };
    const message = await messageFor({ event: 'review.received', id: 'evt_keys', timestamp: '2026-03-16T08:12:45Z', data });
    const labels = message.blocks[1].fields.map((f: any) => f.text.split('\n')[0]);
    expect(labels).toEqual(['*&lt;!channel&gt;*', '*Nested &lt;@U024BE7LH&gt; &amp; co*']);
    const signal = await messageFor({ ...fixture('signal.frustration_spike'), data: { ...fixture('signal.frustration_spike').data, '<!here>': 'now' } });
    expect(JSON.stringify(signal.blocks)).not.toMatch(/<!(here|channel)>/);
    expect(signal.blocks.flatMap((b: any) => b.fields ?? []).map((f: any) => f.text)).toContain('*&lt;!here&gt;*\nnow');
  });

  it('asks Slack not to unfurl links, so a recording link shows no preview card', async () => {
    for (const name of FIXTURES) {
      const message = await messageFor(fixture(name));
      expect(message, name).toMatchObject({ unfurl_links: false, unfurl_media: false });
    }
  });

  it('cuts a header of 150 emoji to 150 code points, the unit Slack\'s SDK counts, without splitting an emoji', async () => {
    const base = fixture('agent.status_changed');
    // 150 single-code-point emoji (300 UTF-16 units): with the ":robot_face: Agent " prefix, over 150.
    const smiles = await messageFor({ ...base, data: { ...base.data, agent: { id: 'a1', name: '😀'.repeat(150) } } });
    const header = smiles.blocks[0].text.text as string;
    expectWithinSlackLimits(smiles);
    expect(chars(header)).toBe(150);
    expect(header).toMatch(/^:[a-z_]+: Agent 😀+…$/u);
    expect(header).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/); // no lone half of a surrogate pair
    // 150 family emoji (5 code points each, joined by ZWJ) after ":large_green_circle: Agent " (27):
    // 122 code points are left before the "…", which a code-point cut would end inside a family.
    const family = '👨‍👩‍👧';
    const families = await messageFor({ ...base, data: { ...base.data, to: 'online', agent: { id: 'a1', name: family.repeat(150) } } });
    const cut = families.blocks[0].text.text as string;
    expect(chars(cut)).toBeLessThanOrEqual(150);
    expect(cut).toMatch(new RegExp(`(${family})+…$`, 'u'));
    expect(cut.replace(/^.*?Agent /u, '').replace('…', '').split(family).every((rest) => rest === '')).toBe(true);
  });

  it('lists any other event\'s fields, at most 10, and links its first https URL', async () => {
    const data: Record<string, unknown> = { review: { url: 'https://example.com/r?a=1&b=2|3' } };
    for (let i = 1; i <= 14; i++) data[`f${i}`] = i;
    const message = await messageFor({ event: 'review.received', id: 'evt_many', timestamp: '2026-03-16T08:12:45Z', data });
    expectWithinSlackLimits(message);
    expect(message.blocks[0].text.text).toBe(':bell: Review received');
    expect(message.blocks[1].fields).toHaveLength(10);
    expect(message.blocks[1].fields[0].text).toBe('*Review url*\nhttps://example.com/r?a=1&amp;b=2|3');
    expect(message.blocks[2].text.text).toBe('<https://example.com/r?a=1&amp;b=2%7C3>');
  });
});

describe('slack: options', () => {
  const validate = new Ajv({ allErrors: true, strict: false }).compile(slackConnector.optionsSchema);
  const errorsFor = (options: Record<string, unknown>) => (validate(options) ? [] : ajvErrorsToDetails(validate.errors, '$.connector_options', slackConnector.optionsSchema));
  const EITHER = 'give either "webhook_url" (an incoming webhook), or "bot_token" and "channel" (chat.postMessage, optionally "api_base_url"), not both';

  it('accepts a webhook URL alone, or a bot token with a channel (and optionally an API base URL)', () => {
    expect(errorsFor({ webhook_url: WEBHOOK_URL })).toEqual([]);
    expect(errorsFor(BOT)).toEqual([]);
    expect(errorsFor({ ...BOT, api_base_url: 'http://127.0.0.1:8089/api' })).toEqual([]);
  });

  it.each([
    ['nothing', {}],
    ['both ways', { webhook_url: WEBHOOK_URL, ...BOT }],
    ['a bot token without a channel', { bot_token: BOT.bot_token }],
    ['a channel without a bot token', { channel: 'C1' }],
    ['a webhook URL with a channel', { webhook_url: WEBHOOK_URL, channel: 'C1' }],
  ])('refuses %s with one message that says what to give', (_what, options) => {
    expect(errorsFor(options)).toEqual([{ path: '$.connector_options', message: EITHER }]);
  });

  it('explains malformed values and unknown options at their own paths', () => {
    expect(errorsFor({ webhook_url: 'hooks.slack.com/services/x' })).toEqual([
      { path: '$.connector_options.webhook_url', message: 'must be the incoming webhook URL Slack gave you, https://hooks.slack.com/services/…' },
    ]);
    expect(errorsFor({ bot_token: 'not-a-token', channel: 'C1' })).toEqual([{ path: '$.connector_options.bot_token', message: 'must be a Slack bot token, xoxb-…' }]);
    expect(errorsFor({ webhook_url: WEBHOOK_URL, colour: 'red' })).toEqual([{ path: '$.connector_options.colour', message: 'is not a known field' }]);
  });

  it('treats both credentials as secrets, derives the destination from them and paces at one message a second', () => {
    expect(slackConnector.secretOptions).toEqual(['webhook_url', 'bot_token']);
    expect(slackConnector.url).toBe('none');
    expect(slackConnector.subscriptionDefaults).toEqual({ rate_limit: 1 });
    expect(slackConnector.resolveUrl!({ webhook_url: WEBHOOK_URL })).toBe(WEBHOOK_URL);
    expect(slackConnector.resolveUrl!(BOT)).toBe(`${SLACK_API_BASE_URL}/chat.postMessage`);
    expect(postMessageUrl({ ...BOT, api_base_url: 'http://127.0.0.1:1234/api///' })).toBe('http://127.0.0.1:1234/api/chat.postMessage');
    expect(slackMode(BOT)).toBe('chat.postMessage');
    expect(slackMode({ webhook_url: WEBHOOK_URL })).toBe('webhook');
  });
});

describe('slack: what each response means', () => {
  const webhook = { url: WEBHOOK_URL, options: { webhook_url: WEBHOOK_URL }, payload: {}, event: fixture('call.ended'), deliveryId: 'd', msgId: 'm', headers: {} };
  const api = { ...webhook, url: `${SLACK_API_BASE_URL}/chat.postMessage`, options: BOT };
  const request = { method: 'POST' as const, url: WEBHOOK_URL, headers: {}, body: '{}', sign: false };
  const apiRequest = (channel: string) => ({ ...request, url: api.url, body: JSON.stringify({ channel, text: 'hi' }) });
  const viaWebhook = (r: ResponseInfo): Verdict => slackConnector.classifyResponse(r, webhook, request);
  const viaApi = (r: ResponseInfo, channel = BOT.channel): Verdict => slackConnector.classifyResponse(r, api, apiRequest(channel));

  it('incoming webhook: 200 ok is delivered', () => {
    expect(viaWebhook(response(200, 'ok'))).toEqual({ outcome: 'success' });
  });

  it('incoming webhook: 429 is retried no sooner than a second (the engine honours a longer Retry-After)', () => {
    expect(viaWebhook(response(429, '{"ok":false,"error":"rate_limited"}', { 'retry-after': '30' }))).toEqual({
      outcome: 'retry',
      reason: 'Slack rate limit (429 rate_limited); retrying after Retry-After',
      minDelayMs: 1_000,
    });
  });

  it.each([500, 502, 503, 504, 408])('incoming webhook: %i is retried', (status) => {
    expect(viaWebhook(response(status, 'rollup_error'))).toEqual({ outcome: 'retry', reason: `Slack answered ${status} rollup_error` });
  });

  it.each([
    [404, 'no_service', 'the incoming webhook was removed or disabled, or the URL is wrong'],
    [404, 'channel_not_found', "the webhook's channel no longer exists"],
    [410, 'channel_is_archived', "the webhook's channel is archived"],
    [403, 'invalid_token', "the webhook URL's token is invalid (the webhook was regenerated or revoked)"],
    [403, 'action_prohibited', 'a workspace admin restricted posting to this channel'],
    [403, 'team_disabled', 'the Slack workspace is disabled'],
  ])('incoming webhook: %i %s disables the subscription, with Slack\'s error in the reason', (status, code, why) => {
    expect(viaWebhook(response(status, code))).toEqual({
      outcome: 'disable',
      reason: `Slack answered ${status} ${code}: ${why}. Create a new incoming webhook and set connector_options.webhook_url.`,
    });
  });

  it.each(['invalid_payload', 'invalid_blocks', 'no_text', 'user_not_found'])('incoming webhook: 400 %s fails the delivery with Slack\'s error text', (code) => {
    expect(viaWebhook(response(400, code))).toEqual({
      outcome: 'fail',
      reason: `Slack rejected the message (400 ${code}); check the template's Block Kit output (POST /api/v1/mappings/preview)`,
    });
  });

  it('incoming webhook: an unknown 403 or 404 fails the delivery without disabling anything', () => {
    expect(viaWebhook(response(404, '<html>Not Found</html>'))).toEqual({ outcome: 'fail', reason: 'Slack answered 404 <html>Not Found</html>' });
    expect(viaWebhook(response(403, ''))).toEqual({ outcome: 'fail', reason: 'Slack answered 403' });
  });

  it('chat.postMessage: ok true is delivered (the message ts is noted)', () => {
    expect(viaApi(response(200, '{"ok":true,"channel":"C0123456789","ts":"1503435956.000247","message":{}}'))).toEqual({ outcome: 'success', note: 'ts 1503435956.000247' });
  });

  it.each(['ratelimited', 'fatal_error', 'internal_error'])('chat.postMessage: 200 ok false %s is retried', (code) => {
    expect(viaApi(response(200, JSON.stringify({ ok: false, error: code })))).toEqual({ outcome: 'retry', reason: `Slack chat.postMessage error ${code} (HTTP 200)` });
  });

  it.each(['invalid_auth', 'token_revoked', 'account_inactive', 'channel_not_found', 'is_archived', 'not_in_channel', 'missing_scope'])(
    'chat.postMessage: 200 ok false %s disables the subscription',
    (code) => {
      const verdict = viaApi(response(200, JSON.stringify({ ok: false, error: code })));
      expect(verdict.outcome).toBe('disable');
      expect((verdict as { reason: string }).reason).toMatch(new RegExp(`^Slack chat.postMessage error ${code}: .+`));
    },
  );

  it.each(['channel_not_found', 'is_archived', 'not_in_channel'])('chat.postMessage: %s for a channel the template chose fails only that delivery', (code) => {
    const verdict = viaApi(response(200, JSON.stringify({ ok: false, error: code })), '#somewhere-else');
    expect(verdict.outcome).toBe('fail');
    expect((verdict as { reason: string }).reason).toMatch(new RegExp(`^Slack chat.postMessage error ${code} for channel "#somewhere-else", which the template chose`));
    // Errors about the token are the subscription's whatever the channel.
    expect(viaApi(response(200, '{"ok":false,"error":"invalid_auth"}'), '#somewhere-else').outcome).toBe('disable');
  });

  it('chat.postMessage: other errors fail the delivery, with Slack\'s explanation when it gives one', () => {
    expect(viaApi(response(200, '{"ok":false,"error":"msg_too_long"}'))).toEqual({ outcome: 'fail', reason: 'Slack chat.postMessage error msg_too_long' });
    const invalidBlocks = { ok: false, error: 'invalid_blocks', response_metadata: { messages: ['[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]'] } };
    expect(viaApi(response(200, JSON.stringify(invalidBlocks)))).toEqual({
      outcome: 'fail',
      reason: 'Slack chat.postMessage error invalid_blocks: [ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]',
    });
  });

  it('chat.postMessage: 429 and 5xx are retried; a 200 without {"ok": true} fails', () => {
    expect(viaApi(response(429, '{"ok":false,"error":"ratelimited"}', { 'retry-after': '3' }))).toEqual({
      outcome: 'retry',
      reason: 'Slack rate limit (429 ratelimited); retrying after Retry-After',
      minDelayMs: 1_000,
    });
    expect(viaApi(response(503, ''))).toEqual({ outcome: 'retry', reason: 'Slack answered 503' });
    expect(viaApi(response(200, 'ok'))).toEqual({ outcome: 'fail', reason: 'Slack answered 200 without {"ok": true}: ok' });
  });

  it('reads error codes from plain-text and JSON bodies', () => {
    expect(slackErrorCode('invalid_payload\n')).toBe('invalid_payload');
    expect(slackErrorCode('{"ok":false,"error":"not_in_channel"}')).toBe('not_in_channel');
    expect(slackErrorCode('   ')).toBeUndefined();
  });
});

describe('slack: following an incident on an ordered key (bot token)', () => {
  const thread = { ts: '1700000001.000100', channel: 'C0THREAD01' };
  const ordered = async (event: Event, state: Record<string, string> | null, options: Record<string, unknown> = BOT): Promise<ConnectorContext> => ({ ...(await contextFor(event, options)), orderingKey: 'conv_84302', state });
  const posted = (body: Record<string, unknown>) => response(200, JSON.stringify({ ok: true, ...body }));

  it('uses key state with a bot token only', () => {
    expect(slackConnector.usesKeyState!(BOT)).toBe(true);
    expect(slackConnector.usesKeyState!({ webhook_url: WEBHOOK_URL })).toBe(false);
  });

  it('a first message of a key is posted as usual and keeps its ts and channel for the key', async () => {
    const ctx = await ordered(fixture('signal.frustration_spike'), null);
    const request = slackConnector.buildRequest(ctx);
    expect(JSON.parse(request.body!)).not.toHaveProperty('thread_ts');
    expect(slackConnector.classifyResponse(posted({ channel: 'C0123456789', ts: '1.5' }), ctx, request)).toEqual({ outcome: 'success', note: 'ts 1.5', state: { ts: '1.5', channel: 'C0123456789' } });
  });

  it('a later message of the key goes into the thread, in its channel, and keeps it open', async () => {
    const ctx = await ordered(fixture('signal.frustration_spike'), thread);
    const request = slackConnector.buildRequest(ctx);
    expect(JSON.parse(request.body!)).toMatchObject({ channel: 'C0THREAD01', thread_ts: '1700000001.000100' });
    expect(slackConnector.classifyResponse(posted({ channel: 'C0THREAD01', ts: '1.6' }), ctx, request)).toEqual({ outcome: 'success', note: 'ts 1.6' });
  });

  it('a resolving event replies in the thread and closes it, or with on_resolve "update" replaces the opening message', async () => {
    const reply = await ordered(catalogExample('signal.resolved'), thread);
    const replyRequest = slackConnector.buildRequest(reply);
    expect(JSON.parse(replyRequest.body!)).toMatchObject({ channel: 'C0THREAD01', thread_ts: thread.ts });
    expect(slackConnector.classifyResponse(posted({ channel: 'C0THREAD01', ts: '1.7' }), reply, replyRequest)).toMatchObject({ outcome: 'success', state: null });

    const update = await ordered(catalogExample('signal.resolved'), thread, { ...BOT, on_resolve: 'update' });
    const updateRequest = slackConnector.buildRequest(update);
    expect(updateRequest).toMatchObject({ step: 'chat.update', url: `${SLACK_API_BASE_URL}/chat.update`, headers: { authorization: `Bearer ${BOT.bot_token}` } });
    const body = JSON.parse(updateRequest.body!);
    expect(Object.keys(body).sort()).toEqual(['blocks', 'channel', 'text', 'ts']);
    expect(body).toMatchObject({ channel: 'C0THREAD01', ts: thread.ts });
    expect(slackConnector.classifyResponse(posted({ channel: 'C0THREAD01', ts: thread.ts }), update, updateRequest)).toMatchObject({ outcome: 'success', state: null });
    // The opening message cannot be changed: the resolve is posted instead.
    const notEditable = slackConnector.classifyResponse(response(200, JSON.stringify({ ok: false, error: 'edit_window_closed' })), update, updateRequest) as Extract<Verdict, { outcome: 'continue' }>;
    expect(notEditable.outcome).toBe('continue');
    expect(JSON.parse(notEditable.next.body!)).toMatchObject({ channel: 'C0THREAD01', thread_ts: thread.ts });
    const gone = slackConnector.classifyResponse(response(200, JSON.stringify({ ok: false, error: 'message_not_found' })), update, updateRequest) as Extract<Verdict, { outcome: 'continue' }>;
    expect(JSON.parse(gone.next.body!)).not.toHaveProperty('thread_ts');
  });

  it('a resolving event with no thread open is posted on its own and keeps nothing', async () => {
    const ctx = await ordered(catalogExample('signal.resolved'), null);
    const request = slackConnector.buildRequest(ctx);
    expect(JSON.parse(request.body!)).not.toHaveProperty('thread_ts');
    expect(slackConnector.classifyResponse(posted({ channel: 'C0123456789', ts: '1.8' }), ctx, request)).toEqual({ outcome: 'success', note: 'ts 1.8' });
  });
});
