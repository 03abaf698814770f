import { classifyStatus } from '../../src/core/backoff.ts';
import type { ConnectorContext, ConnectorDefinition, OutboundRequest, Verdict } from '../../src/delivery/connector.ts';

/** The request of every webhook-style connector: the mapped body as JSON, POSTed and signed. */
export function signedJsonPost(ctx: ConnectorContext): OutboundRequest {
  return {
    method: 'POST',
    url: ctx.url,
    headers: { 'content-type': 'application/json', ...ctx.headers },
    body: JSON.stringify(ctx.payload),
    sign: true,
  };
}

/**
 * A webhook-style verdict from the status: 2xx success; 408, 429, 5xx retry; 410 what `gone`
 * says (disable by default); anything else fails. `who` names the destination in reasons.
 */
export function classifyWebhookStatus(status: number, who?: string, gone?: Verdict): Verdict {
  const answered = who ? `${who} answered ` : '';
  switch (classifyStatus(status)) {
    case 'success':
      return { outcome: 'success' };
    case 'retry':
      return { outcome: 'retry', reason: `${answered}HTTP ${status}` };
    case 'gone':
      return gone ?? { outcome: 'disable', reason: `${who ?? 'the destination'} answered 410 Gone` };
    default:
      return { outcome: 'fail', reason: `${answered}HTTP ${status} is not retried` };
  }
}

/** The generic connector: POST the mapped body as JSON to the subscription's URL, signed. */
export const webhookConnector: ConnectorDefinition = {
  name: 'webhook',
  title: 'Webhook',
  description: 'Any HTTPS endpoint: signed JSON POST with custom headers and auth.',
  optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
  secretOptions: [],
  url: 'required',
  buildRequest: signedJsonPost,
  classifyResponse: (response) => classifyWebhookStatus(response.status),
};
