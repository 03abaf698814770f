/**
 * REST hooks, as Zapier's and n8n's trigger nodes call them: subscribe with a target URL and
 * an event, unsubscribe by id (idempotent: both platforms retry unsubscribes), look a hook up
 * (n8n's checkExists) and fetch sample data (Zapier's perform-list). A hook is an ordinary
 * subscription with `source: 'hook'`, created through the SubscriptionService, so it gets the
 * same validation, SSRF rules, signing secret and delivery engine as any other.
 */
import { Ajv } from 'ajv';
import { ConflictError, NotFoundError, TemplateError, ValidationError, type ErrorDetail } from '../errors.ts';
import type { EventCatalog } from '../catalog/event-catalog.ts';
import type { ConnectorDefinition } from '../delivery/connector.ts';
import type { EventRecord, Storage, SubscriptionRecord } from '../storage/types.ts';
import type { SubscriptionService } from './subscriptions.ts';
import { ajvErrorsToDetails } from './subscription-input.ts';
import { hookSubscribeSchema } from '../core/api-schemas.ts';

/** The connectors a trigger node may subscribe with; Zapier's is the default. */
export const HOOK_CONNECTORS = ['zapier', 'n8n'] as const;
const DEFAULT_CONNECTOR = 'zapier';
/** Zapier shows a handful of samples; three recent events are plenty to map fields from. */
export const SAMPLE_LIMIT = 3;

export interface HookServiceDeps {
  subscriptions: SubscriptionService;
  storage: Pick<Storage, 'recentEvents'>;
  catalog: Pick<EventCatalog, 'matchPattern' | 'get'>;
  connectors: ReadonlyMap<string, ConnectorDefinition>;
  /** Renders a mapping template (name or inline) for one envelope; throws TemplateError. */
  render: (mapping: string, envelope: Record<string, unknown>, subscription: Record<string, unknown>) => Promise<unknown>;
}

/** A hook as the hooks API shows it; the signing secret only once, at subscribe. */
export interface HookView {
  id: string;
  target_url: string;
  /** Set when the hook has exactly one event (Zapier's legacy shape echoes it). */
  event?: string;
  events: string[];
  connector: string;
  filter: string | null;
  mapping: string | null;
  description: string | null;
  enabled: boolean;
  disabled_reason: string | null;
  created_at: string;
  signing_secret_prefix: string;
  signing_secret?: string;
}

export interface SampleQuery {
  event?: unknown;
  connector?: unknown;
  /** A hook id: render the samples through that hook's own mapping. */
  id?: unknown;
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validateSubscribe = ajv.compile(hookSubscribeSchema);

function invalid(details: ErrorDetail[]): ValidationError {
  return new ValidationError('The hook subscription is invalid.', details);
}

export class HookService {
  readonly #deps: HookServiceDeps;

  constructor(deps: HookServiceDeps) {
    this.#deps = deps;
  }

  /** POST /hooks: creates a `source: 'hook'` subscription; its secret is returned this once. */
  async subscribe(body: unknown): Promise<HookView> {
    const input = this.#checkSubscribe(body);
    const urlKey = 'target_url' in input ? 'target_url' : 'subscription_url';
    const single = typeof input.event === 'string';
    const connector = (input.connector as string | undefined) ?? DEFAULT_CONNECTOR;
    const request: Record<string, unknown> = {
      url: input[urlKey],
      events: single ? [input.event] : input.events,
      connector,
      description: input.description ?? `REST hook (${connector})`,
    };
    if (input.filter != null) request.filter = input.filter;
    if (input.mapping != null) request.mapping = input.mapping;
    try {
      const { record, secret } = await this.#deps.subscriptions.create(request, 'hook');
      return { ...present(record), signing_secret: secret };
    } catch (err) {
      // The subscription service speaks of `url` and `events`; say it in the caller's words.
      if (!(err instanceof ValidationError)) throw err;
      const rename = (path: string | undefined) => {
        if (path === undefined) return path;
        if (path === '$.url' || path.startsWith('$.url.')) return `$.${urlKey}${path.slice('$.url'.length)}`;
        if (single && /^\$\.events\[0\]/.test(path)) return `$.event${path.slice('$.events[0]'.length)}`;
        return path;
      };
      throw new ValidationError(err.message, err.details.map((d) => ({ ...d, path: rename(d.path) })), err.code);
    }
  }

  /** GET /hooks/{id}: 404 once it is gone (n8n's checkExists then subscribes again). */
  async get(id: string): Promise<HookView> {
    return present(await this.#hook(id));
  }

  /**
   * DELETE /hooks/{id}: idempotent. An unknown or already deleted id is answered like a
   * deletion, because Zapier and n8n retry unsubscribes; a subscription made through
   * /webhooks is refused rather than deleted by a stray hook id.
   */
  async unsubscribe(id: string): Promise<{ id: string; deleted: true }> {
    const existing = await this.#deps.subscriptions.get(id).catch((err) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
    if (existing && existing.source !== 'hook') {
      throw new ConflictError('not_a_hook', `Subscription ${id} was not created through the hooks API; delete it with DELETE /api/v1/webhooks/${id}.`);
    }
    if (existing) {
      await this.#deps.subscriptions.remove(id).catch((err) => {
        if (!(err instanceof NotFoundError)) throw err; // deleted meanwhile: just as good
      });
    }
    return { id, deleted: true };
  }

  /**
   * GET /hooks/sample?event=: the newest real events of that type (a wildcard covers its
   * types), shaped exactly as a delivery would carry them: through the hook's mapping when
   * `id` names one, else the connector's default template. With no stored event, the
   * catalog example stands in, as a one-element array.
   */
  async sample(query: SampleQuery): Promise<unknown[]> {
    const pattern = singleQueryValue(query.event, 'query.event');
    if (pattern === undefined) throw invalid([{ path: 'query.event', message: 'is required: an event type from GET /api/v1/event-types, or a wildcard such as call.*' }]);
    const names = this.#deps.catalog.matchPattern(pattern);
    if (names.length === 0) throw invalid([{ path: 'query.event', message: `"${pattern}" is not an event type in the catalog (see GET /api/v1/event-types)` }]);

    const { mapping, view } = await this.#sampleShape(query);
    const recent = (await Promise.all(names.map((name) => this.#deps.storage.recentEvents(name, SAMPLE_LIMIT))))
      .flat()
      .sort((a, b) => b.received_at - a.received_at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
      .slice(0, SAMPLE_LIMIT);
    const samples: unknown[] = [];
    for (const event of recent) {
      try {
        samples.push(await this.#shape(envelopeOf(event), mapping, view));
      } catch (err) {
        // An event the template cannot render would fail its delivery too; it is no sample.
        if (!(err instanceof TemplateError)) throw err;
      }
    }
    if (samples.length > 0) return samples;
    const example = this.#deps.catalog.get(names[0])!.example;
    return [await this.#shape({ event: example.event, id: example.id, timestamp: example.timestamp, data: example.data }, mapping, view)];
  }

  async #hook(id: string): Promise<SubscriptionRecord> {
    const record = await this.#deps.subscriptions.get(id);
    if (record.source !== 'hook') throw new NotFoundError('Hook', id);
    return record;
  }

  /** The template and `$subscription` a sample is rendered with. */
  async #sampleShape(query: SampleQuery): Promise<{ mapping: string | null; view: Record<string, unknown> }> {
    const id = singleQueryValue(query.id, 'query.id');
    if (id !== undefined) {
      const hook = await this.#hook(id);
      const connector = this.#deps.connectors.get(hook.connector);
      return {
        mapping: hook.mapping ?? connector?.defaultMapping ?? null,
        view: { id: hook.id, description: hook.description, connector: hook.connector, options: hook.connector_options },
      };
    }
    const name = singleQueryValue(query.connector, 'query.connector') ?? DEFAULT_CONNECTOR;
    const connector = this.#deps.connectors.get(name);
    if (!connector) throw invalid([{ path: 'query.connector', message: `unknown connector; one of ${[...this.#deps.connectors.keys()].join(', ')}` }]);
    return { mapping: connector.defaultMapping ?? null, view: { connector: name, options: {} } };
  }

  async #shape(envelope: Record<string, unknown>, mapping: string | null, view: Record<string, unknown>): Promise<unknown> {
    return mapping ? this.#deps.render(mapping, envelope, view) : envelope;
  }

  #checkSubscribe(body: unknown): Record<string, unknown> {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalid([{ path: '$', message: 'must be a JSON object {target_url, event}' }]);
    const details = validateSubscribe(body) ? [] : ajvErrorsToDetails(validateSubscribe.errors);
    const input = body as Record<string, unknown>;
    if (!('target_url' in input) && !('subscription_url' in input)) details.push({ path: '$.target_url', message: 'is required: the URL to deliver events to' });
    if ('target_url' in input && 'subscription_url' in input && input.target_url !== input.subscription_url) {
      details.push({ path: '$.subscription_url', message: 'differs from target_url; send one URL (subscription_url is a legacy alias of target_url)' });
    }
    if (!('event' in input) && !('events' in input)) details.push({ path: '$.event', message: 'is required: an event type such as call.ended (or events: [...])' });
    if ('event' in input && 'events' in input) details.push({ path: '$.events', message: 'give event or events, not both' });
    const connector = input.connector;
    if (typeof connector === 'string' && !(HOOK_CONNECTORS as readonly string[]).includes(connector)) {
      details.push({ path: '$.connector', message: `must be one of ${HOOK_CONNECTORS.join(', ')}; other connectors are configured through POST /api/v1/webhooks` });
    }
    if (details.length) throw invalid(details);
    return input;
  }
}

function present(record: SubscriptionRecord): HookView {
  return {
    id: record.id,
    target_url: record.url,
    ...(record.events.length === 1 ? { event: record.events[0] } : {}),
    events: record.events,
    connector: record.connector,
    filter: record.filter,
    mapping: record.mapping,
    description: record.description,
    enabled: record.enabled,
    disabled_reason: record.disabled_reason,
    created_at: new Date(record.created_at).toISOString(),
    signing_secret_prefix: record.secret_prefix,
  };
}

/** The envelope a delivery renders from (see delivery/dispatch.ts); stored test events are never samples. */
function envelopeOf(event: EventRecord): Record<string, unknown> {
  return { event: event.event, id: event.id, timestamp: event.timestamp, data: event.data };
}

/** A query parameter given at most once, as a non-empty string. */
function singleQueryValue(value: unknown, path: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw invalid([{ path, message: 'must be given once, as a string' }]);
  return value;
}
