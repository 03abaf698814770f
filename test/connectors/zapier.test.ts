import { beforeAll, describe, expect, it } from 'vitest';
import { zapierConnector } from '../../connectors/zapier/index.ts';
import type { ConnectorContext, ResponseInfo } from '../../src/delivery/connector.ts';
import { MappingRegistry } from '../../src/services/mapping-registry.ts';
import { fixture } from '../support/gateway.ts';
import { FIXTURE_EVENTS, loadShippedMappings } from '../support/catalog.ts';

const HOOK_URL = 'https://hooks.zapier.com/hooks/standard/1234567/abcdef0123456789/';
const FIXTURES = FIXTURE_EVENTS;

let mappings: MappingRegistry;

beforeAll(async () => {
  mappings = await loadShippedMappings();
});

async function contextFor(name: string, headers: Record<string, string> = {}): Promise<ConnectorContext> {
  const event = fixture(name);
  return {
    url: HOOK_URL,
    options: {},
    payload: await mappings.render(zapierConnector.defaultMapping!, event, { connector: 'zapier', options: {} }),
    event,
    deliveryId: 'dlv_test',
    msgId: 'msg_test',
    headers,
  };
}

const response = (status: number, body = ''): ResponseInfo => ({ status, headers: {}, body });

describe('zapier: golden requests', () => {
  it('POSTs lead.created as one flat, signed JSON object with the event id first', async () => {
    const request = zapierConnector.buildRequest(await contextFor('lead.created'));
    const expected = {
      id: 'evt_01HZX3K9Q2LEADCREATE0001',
      event: 'lead.created',
      timestamp: '2026-04-27T17:42:18Z',
      data_lead_id: 'lead_77f3',
      data_lead_email: 'pat.nguyen@example.org',
      data_lead_phone: '+16175550199',
      data_lead_firstname: 'Pat',
      data_lead_lastname: 'Nguyen',
      data_lead_company: 'Nguyen Roofing',
      data_lead_source_call_id: 'call_abc123',
      data_lead_score: 81,
    };
    expect(request).toEqual({ method: 'POST', url: HOOK_URL, headers: { 'content-type': 'application/json' }, body: JSON.stringify(expected), sign: true });
  });

  it('keeps call.ended transcript lines as line items and flattens everything else', async () => {
    const request = zapierConnector.buildRequest(await contextFor('call.ended'));
    const body = JSON.parse(request.body!);
    expect(body).toMatchObject({
      id: 'evt_01HZX3K9Q2CALLENDED0001',
      event: 'call.ended',
      data_call_id: 'call_abc123',
      data_call_duration: 180,
      data_variables_summary: 'Customer inquired about order status',
      data_cost_breakdown_voice: 0.3,
      data_transcript_timestamped: [
        { speaker: 'ai', text: 'Hello! How can I help you today?', timestamp: '00:00' },
        { speaker: 'customer', text: 'I need to check my order status', timestamp: '00:03' },
      ],
    });
    expect(body).not.toHaveProperty('data');
  });

  it('joins arrays of scalars with commas (signal.product_qualified_lead events)', async () => {
    const body = JSON.parse(zapierConnector.buildRequest(await contextFor('signal.product_qualified_lead')).body!);
    expect(body.data_events).toBe('visited_pricing_page,invited_team_member,api_key_created');
    expect(body.data_account_domain).toBe('acme.com');
  });

  it.each(FIXTURES)('%s: every value is a scalar or a line item of scalars, and id is the event id', async (name) => {
    const body = JSON.parse(zapierConnector.buildRequest(await contextFor(name)).body!);
    expect(body.id).toBe(fixture(name).id);
    expect(body.event).toBe(name);
    const scalar = (v: unknown) => v === null || ['string', 'number', 'boolean'].includes(typeof v);
    for (const [key, value] of Object.entries(body)) {
      const flat = scalar(value) || (Array.isArray(value) && value.every((item) => item && typeof item === 'object' && Object.values(item).every(scalar)));
      expect(flat, `${name}: ${key}`).toBe(true);
    }
  });

  it('adds the subscription headers (custom headers and auth)', async () => {
    const request = zapierConnector.buildRequest(await contextFor('lead.created', { 'x-team': 'ops', authorization: 'Bearer t' }));
    expect(request.headers).toEqual({ 'content-type': 'application/json', 'x-team': 'ops', authorization: 'Bearer t' });
  });

  it('is a URL connector with the zapier/default template and a pace below Zapier\'s 30/s', () => {
    expect(zapierConnector.url).toBe('required');
    expect(mappings.get(zapierConnector.defaultMapping!)).toBeDefined();
    expect(zapierConnector.subscriptionDefaults?.rate_limit).toBeLessThan(30);
    expect(zapierConnector.secretOptions).toEqual([]);
  });
});

describe('zapier: responses', () => {
  const classify = async (status: number, body = '') => {
    const ctx = await contextFor('lead.created');
    return zapierConnector.classifyResponse(response(status, body), ctx, zapierConnector.buildRequest(ctx));
  };

  it.each([200, 201, 202, 204])('%i is success', async (status) => {
    expect((await classify(status, '{"status":"success"}')).outcome).toBe('success');
  });

  it('410 deletes the subscription (the Zap unsubscribed or was deleted)', async () => {
    expect(await classify(410)).toEqual({ outcome: 'delete', reason: expect.stringMatching(/410/) });
  });

  it.each([429, 500, 502, 503, 504, 408])('%i is retried', async (status) => {
    expect(await classify(status)).toEqual({ outcome: 'retry', reason: expect.stringContaining(String(status)) });
  });

  it.each([413, 400, 401, 403, 404, 301])('%i fails the delivery without retrying', async (status) => {
    expect(await classify(status)).toEqual({ outcome: 'fail', reason: expect.stringContaining(String(status)) });
  });
});
