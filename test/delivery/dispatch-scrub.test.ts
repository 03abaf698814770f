import { describe, expect, it } from 'vitest';
import { webhookConnector } from '../../connectors/webhook/index.ts';
import { slackConnector } from '../../connectors/slack/index.ts';
import { generateSigningSecret } from '../../src/core/signing.ts';
import { dispatchAttempt } from '../../src/delivery/dispatch.ts';
import type { ConnectorDefinition } from '../../src/delivery/connector.ts';
import type { HttpClient, SendResult } from '../../src/delivery/http-client.ts';
import type { RuntimeSubscription } from '../../src/services/subscriptions.ts';
import type { ClaimedDelivery, SubscriptionRecord } from '../../src/storage/types.ts';

/**
 * Regression test for the scrub of transport error texts (attempt.error): a connection error
 * that quotes a credential (a proxy echoing the request line or Authorization, a resolver
 * quoting the URL) must not put it into the delivery log, last_error or the alert event.
 */

const now = Date.now();

function subscription(overrides: Partial<SubscriptionRecord>, runtime: Partial<RuntimeSubscription>): RuntimeSubscription {
  const record: SubscriptionRecord = {
    id: 'sub_scrub', url: 'https://hooks.example/in', events: ['call.ended'], description: null, enabled: true, disabled_reason: null,
    headers: {}, auth_sealed: null, filter: null, mapping: null, connector: 'webhook', connector_options: {}, connector_secrets_sealed: null,
    retry: { schedule: ['0s', '1m'] }, timeout_seconds: 2, rate_limit: null, secret_sealed: '', secret_prefix: 'whsec_',
    previous_secret_sealed: null, previous_secret_expires_at: null, source: 'api', created_at: now, updated_at: now,
    last_delivery_at: null, last_delivery_status: null, last_success_at: null, failing_since: null, deleted_at: null,
    ...overrides,
  };
  return { record, auth: null, connectorOptions: {}, secretHeaders: {}, secret: generateSigningSecret(), previousSecret: null, schedule: [0, 60_000], ...runtime };
}

const claimed: ClaimedDelivery = {
  delivery: {
    id: 'dlv_scrub', event_id: 'evt_scrub', subscription_id: 'sub_scrub', event: 'call.ended', msg_id: 'msg_scrub', status: 'delivering',
    attempts: 0, chain: 1, next_attempt_at: now, lease_until: now + 60_000, created_at: now, updated_at: now,
    last_attempt_at: null, last_status_code: null, last_error: null,
  },
  event: { id: 'evt_scrub', event: 'call.ended', timestamp: new Date(now).toISOString(), data: { call: { id: 'c1' } }, received_at: now, idempotency_key: null, test: false },
};

/** A client whose connection fails with a text built from the request it was given. */
function failingClient(describe: (url: string, headers: Record<string, string>) => string): HttpClient {
  return {
    send: async (request: { url: string; headers: Record<string, string> }): Promise<SendResult> => ({ ok: false, error: describe(request.url, request.headers), code: 'ECONNRESET', latencyMs: 1 }),
    close: async () => undefined,
  } as unknown as HttpClient;
}

async function attempt(sub: RuntimeSubscription, connector: ConnectorDefinition, client: HttpClient) {
  return dispatchAttempt({ http: client, render: async (envelope) => envelope, defaultTimeoutMs: 2_000, userAgent: 'sluice-test' }, claimed, sub, connector, now);
}

describe('secrets in transport error texts', () => {
  it('a bearer token and a secret header echoed in a connection error are masked in attempt.error and the verdict', async () => {
    const token = 'tok_SCRUB_0123456789abcdef';
    const apiKey = 'apikey_SCRUB_fedcba9876543210';
    const sub = subscription({}, { auth: { type: 'bearer', token }, secretHeaders: { 'x-api-key': apiKey } });
    const result = await attempt(sub, webhookConnector, failingClient((_url, headers) => `proxy reset the connection: authorization=${headers.authorization}; x-api-key=${headers['x-api-key']}; ${encodeURIComponent(token)}`));
    expect(result.verdict.outcome).toBe('retry');
    const logged = JSON.stringify(result);
    expect(logged).not.toContain('SCRUB');
    expect(result.attempt.error).toContain('authorization=Bearer ********');
    expect(result.attempt.error).toContain('x-api-key=********');
  });

  it('a Slack webhook URL (itself the credential) quoted by a connection error is masked', async () => {
    const webhookUrl = 'https://hooks.slack.example/services/T0SCRUB/B0SCRUB/SCRUBSECRETPATH';
    const sub = subscription({ connector: 'slack', url: '', connector_options: {} }, { connectorOptions: { webhook_url: webhookUrl } });
    const result = await attempt(sub, slackConnector, failingClient((url) => `getaddrinfo failed for ${url} (${new URL(url).pathname})`));
    const logged = JSON.stringify(result);
    expect(logged).not.toContain('SCRUBSECRETPATH');
    expect(result.attempt.error).toMatch(/getaddrinfo failed for \*{8}/);
  });
});
