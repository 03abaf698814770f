import { classifyStatus } from '../../src/core/backoff.ts';
import type { ConnectorDefinition } from '../../src/delivery/connector.ts';

/** Zapier throttles a REST hook above 30 requests/s; pacing below that avoids the 429s. */
const ZAPIER_RATE_LIMIT_PER_SECOND = 25;

/**
 * Zapier: a REST-hook trigger (a Zap subscribed itself through POST /api/v1/hooks) or a
 * Catch Hook URL pasted by a user. The body is the flat object of mappings/zapier/default,
 * POSTed, signed, to the subscription's URL (the hook's target_url). A 410 means the Zap
 * unsubscribed or was deleted: the subscription is deleted, as Zapier asks.
 */
export const zapierConnector: ConnectorDefinition = {
  name: 'zapier',
  title: 'Zapier',
  description: 'Zapier REST hooks or Catch Hook URLs: flat JSON with a stable id; 410 Gone deletes the subscription.',
  optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
  secretOptions: [],
  url: 'required',
  defaultMapping: 'zapier/default',
  subscriptionDefaults: { rate_limit: ZAPIER_RATE_LIMIT_PER_SECOND },
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
        // 429 (over 30/s or 10,000 per 5 minutes per hook), 5xx and 408; Retry-After is honoured by the engine.
        return { outcome: 'retry', reason: `Zapier answered HTTP ${response.status}` };
      case 'gone':
        return { outcome: 'delete', reason: 'Zapier answered 410 Gone: the Zap unsubscribed or was deleted' };
      default:
        // 413 (over Zapier's 10 MB), 400, 404 and the rest: this event will not go through as is.
        return { outcome: 'fail', reason: `Zapier answered HTTP ${response.status}; not retried` };
    }
  },
};
