import { classifyWebhookStatus, signedJsonPost } from '../webhook/index.ts';
import type { ConnectorDefinition, ResponseInfo } from '../../src/delivery/connector.ts';

/**
 * n8n's answer when no active workflow listens on a webhook path:
 * `404 {"code":404,"message":"The requested webhook \"POST <path>\" is not registered.","hint":...}`.
 * It is not the method-mismatch 404 ("This webhook is not registered for GET requests..."),
 * which is a configuration error.
 */
const NOT_REGISTERED = /^The requested webhook ".*" is not registered/;

/** n8n's error `message` (its error bodies are JSON), else the body as text. */
function n8nMessage(body: string): string {
  try {
    const message = (JSON.parse(body) as { message?: unknown } | null)?.message;
    if (typeof message === 'string') return message;
  } catch {
    // not JSON (a proxy's page, a truncated body): match the text itself
  }
  return body.trim();
}

export function isUnregisteredWebhook(response: ResponseInfo): boolean {
  return response.status === 404 && NOT_REGISTERED.test(n8nMessage(response.body));
}

/**
 * n8n: the Sluice Trigger node of the n8n-nodes-sluice package (which subscribes itself through
 * POST /api/v1/hooks with `connector: "n8n"`), or a Webhook node URL pasted by a user. The body is
 * the event envelope (or the subscription's mapping output), POSTed and signed.
 *
 * - 2xx: success.
 * - 404 "The requested webhook ... is not registered": retried. n8n answers it for a moment while
 *   a workflow is (re)activated, and for a `/webhook-test/` URL until someone clicks "Listen for
 *   test event". The subscription's retry schedule bounds how long (about 24 hours on the default
 *   curve); then the delivery fails and stays replayable.
 * - 401/403: fail, not disable. n8n answers them when the Webhook node's Basic/Header auth does
 *   not match the subscription's `auth`, when an IP allow-list rejects Sluice, and the Sluice
 *   Trigger answers 401 to a signature it cannot verify (a clock off by more than 5 minutes, a
 *   lost secret). Each is fixed on one side (PATCH the subscription's auth, fix the node) and the
 *   failed deliveries replayed; disabling would also silence every later event until someone
 *   re-enables the subscription, and a destination that keeps failing is disabled anyway after
 *   the gateway's failure window (5 days by default).
 * - 408, 429, 5xx (including 500 "No authentication data defined on node!") and network errors:
 *   retried, honouring Retry-After. 410: disables, as for any webhook. Other 4xx: fail.
 */
export const n8nConnector: ConnectorDefinition = {
  name: 'n8n',
  title: 'n8n',
  description: 'An n8n workflow: the Sluice Trigger community node (subscribes itself, verifies signatures) or a Webhook node URL with header or basic auth.',
  optionsSchema: { type: 'object', additionalProperties: false, properties: {} },
  secretOptions: [],
  url: 'required',
  buildRequest: signedJsonPost,
  classifyResponse(response) {
    if (isUnregisteredWebhook(response)) {
      return { outcome: 'retry', reason: 'n8n answered 404: no active workflow listens on this webhook URL (yet)' };
    }
    if (response.status === 401 || response.status === 403) {
      return {
        outcome: 'fail',
        reason: `n8n answered HTTP ${response.status}: the Webhook node's authentication does not match the subscription's auth, or the Sluice Trigger could not verify the signature`,
      };
    }
    return classifyWebhookStatus(response.status, 'n8n');
  },
};
