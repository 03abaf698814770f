import { Router } from 'express';
import { BadRequestError, TooManyRequestsError, ValidationError } from '../../errors.ts';
import type { ApiKeyService } from '../../services/api-keys.ts';
import type { AcceptedEvent, IngestService } from '../../services/ingest.ts';
import type { EventTypeInfo } from '../../catalog/event-catalog.ts';
import type { EventErasureService } from '../../services/erasure.ts';
import type { QuotaVerdict } from '../../services/ingest-quota.ts';
import type { ApiKeyRecord } from '../../storage/types.ts';
import { requireRole } from '../auth.ts';

const present = (a: AcceptedEvent) => ({ id: a.id, event: a.event, deliveries: a.deliveries, duplicate: a.duplicate });

export interface EventsRouterDeps {
  keys: ApiKeyService;
  ingest: IngestService;
  eventTypes: () => EventTypeInfo[];
  maxBatchEvents: number;
  /** The key's ingest quota: takes `events` from its bucket. */
  quota: (key: ApiKeyRecord, events: number) => QuotaVerdict;
  erasure: EventErasureService;
}

export function eventsRouter(deps: EventsRouterDeps): Router {
  const router = Router();
  const ingestRole = requireRole(deps.keys, 'ingest');

  /** Refuses the request (429) when the key's quota cannot take `events` now; each event counts. */
  const checkQuota = (key: ApiKeyRecord, events: number): void => {
    const verdict = deps.quota(key, events);
    if (verdict.allowed) return;
    const limit = `${verdict.rate} events per second, bursts of ${verdict.burst}`;
    if (verdict.retryAfterMs === Infinity) {
      throw new ValidationError(`This batch holds more events than this API key may send at once (${limit}); send batches of at most ${verdict.burst}.`, [
        { path: '$.events', message: `has ${events} events; this key's burst is ${verdict.burst}` },
      ], 'batch_exceeds_quota');
    }
    throw new TooManyRequestsError('rate_limited', `This API key is over its ingest quota (${limit}); retry after the Retry-After seconds.`, verdict.retryAfterMs / 1000, [
      { message: `quota ${limit}`, rate_limit: verdict.rate, rate_burst: verdict.burst },
    ]);
  };

  router.post('/events', ingestRole, async (req, res) => {
    const header = req.get('idempotency-key');
    if (header !== undefined && (header.length < 1 || header.length > 255)) {
      throw new ValidationError('Invalid Idempotency-Key header.', [{ path: 'header:Idempotency-Key', message: 'must be 1-255 characters' }]);
    }
    checkQuota(req.apiKey!, 1);
    // Idempotency keys belong to the API key that sent them: another client's key never collides.
    const [accepted] = await deps.ingest.accept([req.body], { idempotencyKey: header === undefined ? undefined : `${req.apiKey!.id}:${header}` });
    // A repeat (same id or Idempotency-Key, same body) gets the first answer with 200: nothing new
    // was stored. The same id or key with another body is 409.
    res.status(accepted.duplicate ? 200 : 202).json(present(accepted));
  });

  router.post('/events/batch', ingestRole, async (req, res) => {
    const body = req.body as unknown;
    const events = Array.isArray(body) ? body : (body as { events?: unknown })?.events;
    if (!Array.isArray(events)) throw new BadRequestError('invalid_batch', 'Send a JSON array of events, or {"events": [...]}.');
    if (events.length === 0) throw new ValidationError('The batch is empty.', [{ path: '$.events', message: 'must hold at least one event' }]);
    if (events.length > deps.maxBatchEvents) {
      throw new ValidationError(`A batch holds at most ${deps.maxBatchEvents} events.`, [{ path: '$.events', message: `has ${events.length} events; the limit is ${deps.maxBatchEvents}` }], 'batch_too_large');
    }
    checkQuota(req.apiKey!, events.length);
    const rootPath = (i: number) => (Array.isArray(body) ? `$[${i}]` : `$.events[${i}]`);
    const accepted = await deps.ingest.accept(events, { rootPath });
    res.status(accepted.every((a) => a.duplicate) ? 200 : 202).json({ data: accepted.map(present) });
  });

  router.delete('/events/:id', requireRole(deps.keys, 'admin'), async (req, res) => {
    res.json(await deps.erasure.erase(String(req.params.id)));
  });

  router.get('/event-types', requireRole(deps.keys, 'read'), (_req, res) => {
    res.json({ data: deps.eventTypes() });
  });

  return router;
}
