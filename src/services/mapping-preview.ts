import { NotFoundError, ValidationError } from '../errors.ts';
import { compileTemplate, evaluateFilter, evaluateTemplate, type EvaluationLimits } from '../core/mapping.ts';
import type { MappingRegistry } from './mapping-registry.ts';
import type { Storage } from '../storage/types.ts';
import type { SubscriptionService } from './subscriptions.ts';

export interface PreviewRequest {
  template?: string;
  mapping?: string;
  event?: unknown;
  event_id?: string;
  filter?: string;
  subscription_id?: string;
}

/**
 * Try a template (and a filter) on an event without delivering anything: what the dashboard's
 * editor and an ops engineer's curl use before a change goes live.
 */
export class MappingPreviewService {
  constructor(
    private readonly deps: {
      mappings: MappingRegistry;
      storage: Storage;
      subscriptions: SubscriptionService;
      limits: Partial<EvaluationLimits>;
      /** A connector's default template (the one it sends when a subscription sets no mapping). */
      defaultMapping: (connector: string) => string | undefined;
    },
  ) {}

  list() {
    return this.deps.mappings.list();
  }

  async preview(req: PreviewRequest): Promise<{ output: unknown; mapping: string | null; filter?: { source: string; matches: boolean } }> {
    const { mappings } = this.deps;
    const event = await this.#event(req);
    let subscription: Record<string, unknown> | undefined;
    /** Without a template in the request: what this subscription's deliveries are rendered with. */
    let subscriptionMapping: string | null = null;
    if (req.subscription_id) {
      const sub = await this.deps.subscriptions.get(req.subscription_id);
      subscription = { id: sub.id, description: sub.description, connector: sub.connector, options: sub.connector_options };
      // As dispatch does: an empty mapping is no mapping, and the connector's default applies.
      subscriptionMapping = sub.mapping || this.deps.defaultMapping(sub.connector) || null;
    }
    const bindings = mappings.bindings(subscription);
    let output: unknown = event;
    let mapping: string | null = null;
    if (req.template !== undefined && req.template !== null) {
      // Compiled fresh, not cached: the editor sends a new variant on every keystroke.
      output = await evaluateTemplate(compileTemplate(req.template, { limits: this.deps.limits }), event, bindings, this.deps.limits);
      mapping = 'inline';
    } else if (req.mapping || subscriptionMapping) {
      mapping = req.mapping || subscriptionMapping!;
      output = await evaluateTemplate(mappings.resolve(mapping), event, bindings, this.deps.limits);
    }
    const result: { output: unknown; mapping: string | null; filter?: { source: string; matches: boolean } } = { output, mapping };
    if (req.filter) result.filter = { source: req.filter, matches: await evaluateFilter(mappings.filter(req.filter), event, bindings, this.deps.limits) };
    return result;
  }

  async #event(req: PreviewRequest): Promise<unknown> {
    if (req.event_id) {
      const stored = await this.deps.storage.getEvent(req.event_id);
      if (!stored) throw new NotFoundError('Event', req.event_id);
      return { event: stored.event, id: stored.id, timestamp: stored.timestamp, data: stored.data, ...(stored.test ? { test: true } : {}) };
    }
    if (!req.event || typeof req.event !== 'object' || Array.isArray(req.event)) {
      throw new ValidationError('Invalid preview request.', [{ path: '$.event', message: 'must be an event envelope object {event, id, timestamp, data}' }]);
    }
    return req.event;
  }
}
