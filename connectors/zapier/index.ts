import { classifyWebhookStatus, signedJsonPost } from '../webhook/index.ts';
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
  buildRequest: signedJsonPost,
  // 429 (over 30/s or 10,000 per 5 minutes per hook), 5xx and 408 retried, Retry-After honoured by
  // the engine; 413 (over Zapier's 10 MB), 400, 404 and the rest fail: the event will not go through as is.
  classifyResponse: (response) =>
    classifyWebhookStatus(response.status, 'Zapier', { outcome: 'delete', reason: 'Zapier answered 410 Gone: the Zap unsubscribed or was deleted' }),
};
