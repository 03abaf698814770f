import { NotFoundError, ValidationError } from '../errors.ts';
import { compileTemplate, type ExpressionKind, type TemplateBindings } from '../core/mapping.ts';
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
      /** The gateway's evaluation pool: a preview runs where a runaway template cannot hurt. */
      evaluate: (request: { kind: ExpressionKind; source: string; event: unknown; bindings: TemplateBindings }) => Promise<unknown>;
      /** A connector's default template (the one it sends when a subscription sets no mapping). */
      defaultMapping: (connector: string) => string | undefined;
    },
  ) {}

  list() {
    return this.deps.mappings.list();
  }

  /**
   * `withEnv`: whether `$env()` may return the allow-listed variables. Only admin keys see them;
   * for read keys it returns nothing, so a preview cannot read what only deliveries may send.
   */
  async preview(req: PreviewRequest, opts: { withEnv: boolean }): Promise<{ output: unknown; mapping: string | null; filter?: { source: string; matches: boolean } }> {
    const { mappings, evaluate } = this.deps;
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
    const bindings = opts.withEnv ? mappings.bindings(subscription) : { ...mappings.bindings(subscription), env: {} };
    let output: unknown = event;
    let mapping: string | null = null;
    if (req.template !== undefined && req.template !== null) {
      // Compiled here first for its syntax errors (with positions), not cached: the editor sends a new variant on every keystroke.
      output = await evaluate({ kind: 'template', source: compileTemplate(req.template).source, event, bindings });
      mapping = 'inline';
    } else if (req.mapping || subscriptionMapping) {
      mapping = req.mapping || subscriptionMapping!;
      output = await evaluate({ kind: 'template', source: mappings.resolve(mapping).source, event, bindings });
    }
    const result: { output: unknown; mapping: string | null; filter?: { source: string; matches: boolean } } = { output, mapping };
    if (req.filter) result.filter = { source: req.filter, matches: (await evaluate({ kind: 'filter', source: mappings.filter(req.filter).source, event, bindings })) === true };
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
