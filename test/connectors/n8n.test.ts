import { describe, expect, it } from 'vitest';
import { isUnregisteredWebhook, n8nConnector } from '../../connectors/n8n-webhook/index.ts';
import type { ConnectorContext, ResponseInfo } from '../../src/delivery/connector.ts';
import { fixture } from '../support/gateway.ts';

const WEBHOOK_URL = 'https://n8n.example.com/webhook/0b8c2f4e-4b8e-9c1d-5a7f3e2d1c0b/webhook';

function contextFor(name: string, headers: Record<string, string> = {}): ConnectorContext {
  const event = fixture(name);
  return {
    url: WEBHOOK_URL,
    options: {},
    // No default mapping: the envelope as the delivery engine builds it.
    payload: { event: event.event, id: event.id, timestamp: event.timestamp, data: event.data },
    event,
    deliveryId: 'dlv_test',
    msgId: 'msg_test',
    headers,
  };
}

const response = (status: number, body = '', headers: Record<string, string> = {}): ResponseInfo => ({ status, headers, body });
const classify = (r: ResponseInfo) => {
  const ctx = contextFor('call.ended');
  return n8nConnector.classifyResponse(r, ctx, n8nConnector.buildRequest(ctx));
};

/** n8n's bodies, as its webhook server sends them (n8n-io/n8n issues #3492, #12751, #35550). */
const NOT_REGISTERED = JSON.stringify({
  code: 404,
  message: 'The requested webhook "POST 0b8c2f4e-4b8e-9c1d-5a7f3e2d1c0b/webhook" is not registered.',
  hint: "Click the 'Execute workflow' button on the canvas, then try again. (In test mode, the webhook only works for one call after you click this button)",
});
const WRONG_METHOD = JSON.stringify({ code: 404, message: 'This webhook is not registered for POST requests. Did you mean to make a GET request?' });

describe('n8n: golden request', () => {
  it('POSTs the event envelope as signed JSON to the webhook URL, with the subscription’s auth header', () => {
    const event = fixture('call.ended');
    const request = n8nConnector.buildRequest(contextFor('call.ended', { 'X-N8N-Auth': 'token-123' }));
    expect(request).toEqual({
      method: 'POST',
      url: WEBHOOK_URL,
      headers: { 'content-type': 'application/json', 'X-N8N-Auth': 'token-123' },
      body: JSON.stringify({ event: 'call.ended', id: event.id, timestamp: event.timestamp, data: event.data }),
      sign: true,
    });
  });

  it('has no options and no default template (the trigger emits the envelope as is)', () => {
    expect(n8nConnector).toMatchObject({ name: 'n8n', url: 'required', secretOptions: [] });
    expect(n8nConnector.defaultMapping).toBeUndefined();
    expect(n8nConnector.optionsSchema).toEqual({ type: 'object', additionalProperties: false, properties: {} });
  });
});

describe('n8n: responses', () => {
  it.each([200, 201, 204])('%i is a success', (status) => {
    expect(classify(response(status, '{"message":"Workflow was started"}'))).toEqual({ outcome: 'success' });
  });

  it('retries 404 "not registered" (a workflow being activated, a test URL not listening)', () => {
    expect(isUnregisteredWebhook(response(404, NOT_REGISTERED))).toBe(true);
    expect(classify(response(404, NOT_REGISTERED))).toMatchObject({ outcome: 'retry', reason: expect.stringMatching(/no active workflow/) });
    // Older n8n versions, and a path without a method, say it the same way.
    const bare = JSON.stringify({ code: 404, message: 'The requested webhook "rechnungen-pruefen" is not registered.' });
    expect(classify(response(404, bare)).outcome).toBe('retry');
  });

  it('fails a 404 that is not n8n’s "not registered" (wrong method, some other server)', () => {
    expect(classify(response(404, WRONG_METHOD))).toMatchObject({ outcome: 'fail' });
    expect(classify(response(404, '<html>Not Found</html>'))).toMatchObject({ outcome: 'fail' });
  });

  it('fails (does not disable) 401 and 403: auth or signature to fix on one side, then replay', () => {
    expect(classify(response(401, 'Authorization is required!', { 'www-authenticate': 'Basic realm="Webhook"' }))).toMatchObject({ outcome: 'fail', reason: expect.stringMatching(/401/) });
    expect(classify(response(403, 'Authorization data is wrong!'))).toMatchObject({ outcome: 'fail', reason: expect.stringMatching(/authentication does not match/) });
    expect(classify(response(401, JSON.stringify({ error: { code: 'invalid_signature', message: 'no webhook-signature matches the signing secret' } }))).outcome).toBe('fail');
  });

  it.each([408, 429, 500, 502, 503])('retries %i', (status) => {
    expect(classify(response(status, status === 500 ? 'No authentication data defined on node!' : ''))).toMatchObject({ outcome: 'retry' });
  });

  it('disables on 410 Gone and fails other 4xx', () => {
    expect(classify(response(410))).toMatchObject({ outcome: 'disable' });
    expect(classify(response(400, 'bad'))).toMatchObject({ outcome: 'fail' });
    expect(classify(response(413, 'request entity too large'))).toMatchObject({ outcome: 'fail' });
  });
});
