import { classifyStatus } from '../../src/core/backoff.ts';
import type { ConnectorDefinition } from '../../src/delivery/connector.ts';

/** The generic connector: POST the mapped body as JSON to the subscription's URL, signed. */
export const webhookConnector: ConnectorDefinition = {
  name: 'webhook',
  title: 'Webhook',
  description: 'Any HTTPS endpoint: signed JSON POST with custom headers and auth.',
  optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
  secretOptions: [],
  url: 'required',
  buildRequest(ctx) {
    return {
      method: 'POST',
      url: ctx.url,
      headers: { 'content-type': 'application/json', ...ctx.headers },
      body: JSON.stringify(ctx.payload),
      sign: true,
    };
  },
  classifyResponse(response) {
    switch (classifyStatus(response.status)) {
      case 'success':
        return { outcome: 'success' };
      case 'retry':
        return { outcome: 'retry', reason: `HTTP ${response.status}` };
      case 'gone':
        return { outcome: 'disable', reason: 'destination answered 410 Gone' };
      default:
        return { outcome: 'fail', reason: `HTTP ${response.status} is not retried` };
    }
  },
};
