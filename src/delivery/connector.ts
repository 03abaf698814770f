import type { OrderingPolicy } from '../storage/types.ts';

/**
 * A connector is declarative: it says what options it takes, which of them are secret, which
 * template shapes its body, how to build the request(s) from the mapped body, and what each
 * response means. Signing, the SSRF guard, timeouts, retries and the delivery log stay in the
 * delivery engine, shared by every connector.
 */

export interface OutboundRequest {
  /** A label for the delivery log when a delivery takes several requests (HubSpot). */
  step?: string;
  method: 'POST' | 'PUT' | 'PATCH' | 'GET' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  /** Serialized body as sent; signatures are computed over exactly these bytes. */
  body: string | null;
  /** Whether the engine adds the Sluice signature headers (vendor APIs do not want them). */
  sign: boolean;
  /** Values a multi-request delivery carries to its next step (ids found so far); never sent. */
  state?: Readonly<Record<string, string>>;
}

export interface ResponseInfo {
  status: number;
  headers: Record<string, string>;
  /** The body, capped (see delivery/http-client.ts). */
  body: string;
}

export type Verdict =
  /**
   * `state` (connectors that use key state): what to keep for the delivery's ordering key — the next
   * delivery of the key sees it in `ctx.state` — or null to forget it; left out, it stays as it is.
   */
  | { outcome: 'success'; note?: string; state?: Record<string, string> | null }
  | { outcome: 'retry'; reason: string; minDelayMs?: number }
  | { outcome: 'fail'; reason: string }
  /** Permanent, and the subscription is disabled with this reason. */
  | { outcome: 'disable'; reason: string }
  /** Permanent, and the subscription is deleted (a Zapier 410). */
  | { outcome: 'delete'; reason: string }
  /** Multi-request deliveries: send `next` within the same attempt. */
  | { outcome: 'continue'; next: OutboundRequest };

export interface ConnectorContext {
  /** The subscription's destination URL (for connectors whose URL is not itself secret). */
  url: string;
  /** Non-secret options merged with decrypted secret options. */
  options: Record<string, unknown>;
  /** The mapped body (the template's output, or the envelope). */
  payload: unknown;
  event: { id: string; event: string; timestamp: string; data: unknown };
  /** Stable per delivery: vendors' dedup keys derive from it. */
  deliveryId: string;
  msgId: string;
  /** Custom headers and auth headers configured on the subscription. */
  headers: Record<string, string>;
  /** SLUICE_PUBLIC_URL, when set: links back to the dashboard (`<publicUrl>/#/deliveries/<id>`). */
  publicUrl?: string;
  /** The delivery's ordering key (null: unordered). */
  orderingKey?: string | null;
  /**
   * Connectors that use key state, ordered deliveries only: what the last delivery of this key left
   * (a Slack thread's parent message); null when nothing is kept. Deliveries of one key run one at
   * a time, in order, so it is always the previous one's.
   */
  state?: Readonly<Record<string, string>> | null;
}

export interface ConnectorDefinition {
  name: string;
  title: string;
  description: string;
  /** JSON Schema (draft-07) of `connector_options`. */
  optionsSchema: Record<string, unknown>;
  /** Option names that are secrets: sealed at rest, masked in every response. */
  secretOptions: string[];
  /** 'required': the subscription's `url` is the destination; 'none': the connector derives it from options. */
  url: 'required' | 'none';
  /** Template used when the subscription sets no `mapping`; none = the event envelope as is. */
  defaultMapping?: string;
  /** Defaults applied to a subscription at create time when the caller gives none. */
  subscriptionDefaults?: { rate_limit?: number; ordering?: OrderingPolicy };
  /** Whether it keeps a small state per ordering key with these options (see ConnectorContext.state and the success verdict's `state`). */
  usesKeyState?(options: Record<string, unknown>): boolean;
  /**
   * For url 'none' connectors: whether the derived URL is itself a credential (a Slack incoming
   * webhook) and must be logged by origin only. Defaults to true; vendor API URLs set false.
   */
  urlIsSecret?: boolean;
  /** The destination URL, for connectors with url 'none' (used by the SSRF check too). */
  resolveUrl?(options: Record<string, unknown>): string;
  buildRequest(ctx: ConnectorContext): OutboundRequest;
  classifyResponse(response: ResponseInfo, ctx: ConnectorContext, request: OutboundRequest): Verdict;
}
