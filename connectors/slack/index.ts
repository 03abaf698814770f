import type { ConnectorContext, ConnectorDefinition, OutboundRequest, ResponseInfo, Verdict } from '../../src/delivery/connector.ts';

/**
 * Slack: an incoming webhook (the URL is the credential), or a bot token posting with
 * chat.postMessage. The template (mappings/slack/default.jsonata) builds the message;
 * this module sends it and reads Slack's answer. Wire facts: connectors/slack/README.md.
 */

export const SLACK_API_BASE_URL = 'https://slack.com/api';
/** Events that close what earlier events of their ordering key opened (a thread, with a bot token). */
export const DEFAULT_RESOLVE_EVENTS: readonly string[] = Object.freeze(['signal.resolved']);

/**
 * Incoming-webhook error codes that mean this webhook will never work again. Slack answers
 * them with 403, 404 or 410 and a plain-text body holding the code.
 */
const DEAD_WEBHOOK: Readonly<Record<string, string>> = {
  no_service: 'the incoming webhook was removed or disabled, or the URL is wrong',
  no_service_id: 'the webhook URL has no valid service id',
  no_team: 'the Slack workspace no longer exists',
  team_disabled: 'the Slack workspace is disabled',
  invalid_token: "the webhook URL's token is invalid (the webhook was regenerated or revoked)",
  action_prohibited: 'a workspace admin restricted posting to this channel',
  channel_not_found: "the webhook's channel no longer exists",
  channel_is_archived: "the webhook's channel is archived",
  no_active_hooks: 'the app has no active incoming webhooks',
  posting_to_general_channel_denied: 'only admins may post to this channel',
};

/** chat.postMessage `error` codes worth another attempt. */
const API_RETRY = new Set(['ratelimited', 'rate_limited', 'fatal_error', 'internal_error', 'service_unavailable', 'request_timeout']);

/** chat.postMessage `error` codes that no retry can fix: the subscription is disabled. */
const API_DISABLE: Readonly<Record<string, string>> = {
  invalid_auth: 'the bot token is not valid',
  not_authed: 'no bot token was sent',
  token_revoked: 'the bot token was revoked',
  token_expired: 'the bot token expired',
  account_inactive: "the token's user or bot was deactivated",
  missing_scope: 'the token lacks the chat:write scope',
  no_permission: 'the token has no permission to post',
  channel_not_found: 'the channel does not exist, or the bot cannot see it (invite it to private channels)',
  is_archived: 'the channel is archived',
  not_in_channel: 'the bot is not a member of the channel (/invite it, or add the chat:write.public scope)',
};

/**
 * chat.postMessage errors about the channel itself. They disable the subscription only when the
 * channel is the subscription's own; a channel the template chose for one message fails just
 * that delivery, since the next event may go to a channel that works.
 */
const CHANNEL_ERRORS = new Set(['channel_not_found', 'not_in_channel', 'is_archived']);

export type SlackMode = 'webhook' | 'chat.postMessage';

/** Which way a subscription's options send: a bot token means chat.postMessage. */
export function slackMode(options: Record<string, unknown>): SlackMode {
  return typeof options.bot_token === 'string' ? 'chat.postMessage' : 'webhook';
}

function apiUrl(options: Record<string, unknown>, method: 'chat.postMessage' | 'chat.update'): string {
  const base = typeof options.api_base_url === 'string' ? options.api_base_url : SLACK_API_BASE_URL;
  return `${base.replace(/\/+$/, '')}/${method}`;
}

export function postMessageUrl(options: Record<string, unknown>): string {
  return apiUrl(options, 'chat.postMessage');
}

function resolveEvents(options: Record<string, unknown>): readonly string[] {
  return Array.isArray(options.resolve_events) ? (options.resolve_events as string[]) : DEFAULT_RESOLVE_EVENTS;
}

/**
 * Following an incident (bot token, ordered subscription): the first message of an ordering key
 * opens a thread (its `ts` and channel are kept for the key), later messages of the key go into
 * that thread, and a resolving event either replies in it or replaces the opening message
 * (`on_resolve: update`), then closes it: the next message of the key opens a new thread.
 */
interface Thread {
  ts: string;
  channel: string;
}

function threadOf(ctx: ConnectorContext): Thread | undefined {
  const { ts, channel } = ctx.state ?? {};
  return ctx.orderingKey && ts && channel ? { ts, channel } : undefined;
}

const isResolving = (ctx: ConnectorContext) => resolveEvents(ctx.options).includes(ctx.event.event);

/** chat.update errors after which the resolving message is posted instead (the opening message cannot be changed). */
const UPDATE_FALLBACK: Readonly<Record<string, 'reply' | 'post'>> = { message_not_found: 'post', cant_update_message: 'reply', edit_window_closed: 'reply' };

/** A template may produce a whole message object, or just a string for `text`. */
function messageOf(payload: unknown): Record<string, unknown> {
  if (typeof payload === 'string') return { text: payload };
  if (payload && typeof payload === 'object' && !Array.isArray(payload)) return payload as Record<string, unknown>;
  const got = payload === null ? 'null' : Array.isArray(payload) ? 'an array' : typeof payload;
  throw new Error(`the template must produce a Slack message object ({"text": ..., "blocks": [...]}) or a string, not ${got}`);
}

/** The subscription's custom headers, minus those the connector sets itself (any case). */
function withOwnHeaders(custom: Record<string, string>, own: Record<string, string>): Record<string, string> {
  const ownNames = new Set(Object.keys(own));
  const kept = Object.fromEntries(Object.entries(custom).filter(([name]) => !ownNames.has(name.toLowerCase())));
  return { ...kept, ...own };
}

/** Slack's error code: `{"ok":false,"error":"…"}` from the Web API, plain text from webhooks. */
export function slackErrorCode(body: string): string | undefined {
  const text = body.trim();
  if (!text) return undefined;
  const parsed = parseJson(text);
  if (parsed && typeof parsed === 'object') {
    const error = (parsed as { error?: unknown }).error;
    return typeof error === 'string' ? error : undefined;
  }
  return text.split('\n')[0].slice(0, 200);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const isServerTrouble = (status: number) => status === 408 || (status >= 500 && status <= 599);

function classifyWebhook(response: ResponseInfo): Verdict {
  const { status } = response;
  const code = slackErrorCode(response.body);
  const said = code ? ` ${code}` : '';
  if (status >= 200 && status <= 299) return { outcome: 'success' };
  if (status === 429) return { outcome: 'retry', reason: `Slack rate limit (429${said}); retrying after Retry-After`, minDelayMs: 1_000 };
  if (isServerTrouble(status)) return { outcome: 'retry', reason: `Slack answered ${status}${said}` };
  const dead = code !== undefined && Object.hasOwn(DEAD_WEBHOOK, code) ? DEAD_WEBHOOK[code] : undefined;
  if (status === 410 || ((status === 403 || status === 404) && dead)) {
    return {
      outcome: 'disable',
      reason: `Slack answered ${status}${said}: ${dead ?? 'the webhook is gone'}. Create a new incoming webhook and set connector_options.webhook_url.`,
    };
  }
  if (status === 400) {
    return { outcome: 'fail', reason: `Slack rejected the message (400${said}); check the template's Block Kit output (POST /api/v1/mappings/preview)` };
  }
  return { outcome: 'fail', reason: `Slack answered ${status}${said}` };
}

/** The channel a chat.postMessage request was sent to, as the connector built its body. */
function requestedChannel(request: OutboundRequest): unknown {
  const body = typeof request.body === 'string' ? parseJson(request.body) : undefined;
  return body && typeof body === 'object' ? (body as { channel?: unknown }).channel : undefined;
}

function classifyApiError(code: string, status: number, parsed: unknown, ctx: ConnectorContext, request: OutboundRequest): Verdict {
  if (API_RETRY.has(code)) return { outcome: 'retry', reason: `Slack chat.postMessage error ${code} (HTTP ${status})` };
  const channel = requestedChannel(request);
  if (CHANNEL_ERRORS.has(code) && channel !== ctx.options.channel) {
    return {
      outcome: 'fail',
      reason: `Slack chat.postMessage error ${code} for channel ${JSON.stringify(channel)}, which the template chose: ${API_DISABLE[code]}. Only this delivery fails; the subscription's channel is untouched.`,
    };
  }
  if (Object.hasOwn(API_DISABLE, code)) {
    return { outcome: 'disable', reason: `Slack chat.postMessage error ${code}: ${API_DISABLE[code]}` };
  }
  // invalid_blocks and friends explain themselves in response_metadata.messages.
  const messages = (parsed as { response_metadata?: { messages?: unknown } } | undefined)?.response_metadata?.messages;
  const detail = Array.isArray(messages) && messages.length ? `: ${messages.filter((m) => typeof m === 'string').join('; ')}` : '';
  return { outcome: 'fail', reason: `Slack chat.postMessage error ${code}${detail}`.slice(0, 1_000) };
}

/** A chat.postMessage request for a message: in the key's thread when there is one (and the template chose none). */
function postRequest(ctx: ConnectorContext, message: Record<string, unknown>, thread: Thread | undefined, step?: string): OutboundRequest {
  const body: Record<string, unknown> = { channel: ctx.options.channel, ...message };
  if (thread && body.thread_ts === undefined) Object.assign(body, { channel: thread.channel, thread_ts: thread.ts });
  return {
    ...(step ? { step } : {}),
    method: 'POST',
    url: postMessageUrl(ctx.options),
    headers: withOwnHeaders(ctx.headers, { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${String(ctx.options.bot_token)}` }),
    // A template may route a message elsewhere by setting its own "channel".
    body: JSON.stringify(body),
    sign: false,
  };
}

/** What the key keeps after a message went out: the thread it opened, or nothing once resolved. */
function threadState(ctx: ConnectorContext, request: OutboundRequest, posted: { ts?: unknown; channel?: unknown }): Pick<Extract<Verdict, { outcome: 'success' }>, 'state'> {
  if (!ctx.orderingKey) return {};
  if (isResolving(ctx)) return threadOf(ctx) ? { state: null } : {};
  const sent = typeof request.body === 'string' ? (parseJson(request.body) as { thread_ts?: unknown } | undefined) : undefined;
  // A message that went into a thread keeps it; a top-level one opens the key's thread.
  if (sent?.thread_ts !== undefined || typeof posted.ts !== 'string' || typeof posted.channel !== 'string') return {};
  return { state: { ts: posted.ts, channel: posted.channel } };
}

function classifyApi(response: ResponseInfo, ctx: ConnectorContext, request: OutboundRequest): Verdict {
  const { status } = response;
  const parsed = parseJson(response.body);
  const code = slackErrorCode(response.body);
  if (status === 429) return { outcome: 'retry', reason: `Slack rate limit (429${code ? ` ${code}` : ''}); retrying after Retry-After`, minDelayMs: 1_000 };
  if (isServerTrouble(status)) return { outcome: 'retry', reason: `Slack answered ${status}${code ? ` ${code}` : ''}` };
  const body = parsed && typeof parsed === 'object' ? (parsed as { ok?: unknown; ts?: unknown; channel?: unknown }) : undefined;
  if (status >= 200 && status <= 299 && body?.ok === true) {
    return { outcome: 'success', ...(typeof body.ts === 'string' ? { note: `ts ${body.ts}` } : {}), ...threadState(ctx, request, body) };
  }
  // The opening message cannot be replaced: say it in the thread, or as a new message.
  const thread = threadOf(ctx);
  if (request.step === 'chat.update' && code && thread && Object.hasOwn(UPDATE_FALLBACK, code)) {
    return { outcome: 'continue', next: postRequest(ctx, messageOf(ctx.payload), UPDATE_FALLBACK[code] === 'reply' ? thread : undefined, 'chat.postMessage') };
  }
  // Application errors come as 200 with {"ok": false, "error": "…"}.
  if (body && code) return classifyApiError(code, status, parsed, ctx, request);
  return { outcome: 'fail', reason: `Slack answered ${status} without {"ok": true}: ${response.body.trim().slice(0, 200) || '(empty body)'}` };
}

export const slackConnector: ConnectorDefinition = {
  name: 'slack',
  title: 'Slack',
  description: 'Block Kit messages to a Slack channel, through an incoming webhook or a bot token (chat.postMessage).',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      webhook_url: {
        type: 'string',
        title: 'Incoming webhook URL',
        description: 'The URL Slack gives when you add an incoming webhook, https://hooks.slack.com/services/T…/B…/…; a secret.',
        pattern: '^https?://[^\\s]+$',
        maxLength: 2048,
        errorMessage: 'must be the incoming webhook URL Slack gave you, https://hooks.slack.com/services/…',
      },
      bot_token: {
        type: 'string',
        title: 'Bot token',
        description: 'A bot token (xoxb-…) with the chat:write scope, to post with chat.postMessage instead of a webhook; a secret.',
        pattern: '^xox[a-z]-[^\\s]+$',
        maxLength: 4096,
        errorMessage: 'must be a Slack bot token, xoxb-…',
      },
      channel: {
        type: 'string',
        title: 'Channel',
        description: 'With bot_token: the channel ID (C0123456789, preferred: it survives renames) or name (#alerts).',
        minLength: 1,
        maxLength: 200,
        pattern: '^[^\\s]+$',
      },
      api_base_url: {
        type: 'string',
        title: 'Web API base URL',
        description: 'With bot_token: where chat.postMessage lives; change only for tests or a proxy.',
        default: SLACK_API_BASE_URL,
        pattern: '^https?://[^\\s]+$',
        maxLength: 2048,
      },
      resolve_events: {
        type: 'array',
        title: 'Resolving events',
        description: 'With bot_token and an ordered subscription: event types that close the thread the first message of their ordering key opened.',
        default: [...DEFAULT_RESOLVE_EVENTS],
        maxItems: 100,
        uniqueItems: true,
        items: { type: 'string', minLength: 1, maxLength: 200 },
      },
      on_resolve: {
        type: 'string',
        title: 'On a resolving event',
        description: 'With bot_token and an ordered subscription: "reply" posts it in the thread of the message that opened its key; "update" replaces that message with it.',
        enum: ['reply', 'update'],
        default: 'reply',
      },
    },
    allOf: [
      {
        errorMessage: 'give either "webhook_url" (an incoming webhook), or "bot_token" and "channel" (chat.postMessage, optionally "api_base_url"), not both',
        oneOf: [
          {
            title: 'Incoming webhook',
            required: ['webhook_url'],
            not: { anyOf: [{ required: ['bot_token'] }, { required: ['channel'] }, { required: ['api_base_url'] }] },
          },
          {
            title: 'Bot token (chat.postMessage)',
            required: ['bot_token', 'channel'],
            not: { required: ['webhook_url'] },
          },
        ],
      },
    ],
  },
  secretOptions: ['webhook_url', 'bot_token'],
  url: 'none',
  defaultMapping: 'slack/default',
  // Slack asks for no more than one message per second per webhook or channel.
  subscriptionDefaults: { rate_limit: 1 },
  resolveUrl(options) {
    return slackMode(options) === 'chat.postMessage' ? postMessageUrl(options) : String(options.webhook_url);
  },
  usesKeyState: (options) => slackMode(options) === 'chat.postMessage',
  buildRequest(ctx): OutboundRequest {
    const message = messageOf(ctx.payload);
    if (slackMode(ctx.options) === 'chat.postMessage') {
      const thread = threadOf(ctx);
      if (thread && isResolving(ctx) && ctx.options.on_resolve === 'update') {
        // chat.update takes the message's content, not posting options (unfurl_*, thread_ts…).
        const content = Object.fromEntries(Object.entries(message).filter(([field]) => ['text', 'blocks', 'attachments'].includes(field)));
        return {
          step: 'chat.update',
          method: 'POST',
          url: apiUrl(ctx.options, 'chat.update'),
          headers: withOwnHeaders(ctx.headers, { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${String(ctx.options.bot_token)}` }),
          body: JSON.stringify({ channel: thread.channel, ts: thread.ts, ...content }),
          sign: false,
        };
      }
      return postRequest(ctx, message, thread);
    }
    return {
      method: 'POST',
      url: String(ctx.options.webhook_url),
      headers: withOwnHeaders(ctx.headers, { 'content-type': 'application/json' }),
      body: JSON.stringify(message),
      sign: false,
    };
  },
  classifyResponse(response, ctx, request) {
    return slackMode(ctx.options) === 'chat.postMessage' ? classifyApi(response, ctx, request) : classifyWebhook(response);
  },
};
