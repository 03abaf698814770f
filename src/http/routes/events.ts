import { Router } from 'express';
import { BadRequestError, ValidationError } from '../../errors.ts';
import type { ApiKeyService } from '../../services/api-keys.ts';
import type { AcceptedEvent, IngestService } from '../../services/ingest.ts';
import type { EventTypeInfo } from '../../catalog/event-catalog.ts';
import { requireRole } from '../auth.ts';

const present = (a: AcceptedEvent) => ({ id: a.id, event: a.event, deliveries: a.deliveries, duplicate: a.duplicate });

export function eventsRouter(deps: { keys: ApiKeyService; ingest: IngestService; eventTypes: () => EventTypeInfo[]; maxBatchEvents: number }): Router {
  const router = Router();
  const ingestRole = requireRole(deps.keys, 'ingest');

  router.post('/events', ingestRole, async (req, res) => {
    const header = req.get('idempotency-key');
    if (header !== undefined && (header.length < 1 || header.length > 255)) {
      throw new ValidationError('Invalid Idempotency-Key header.', [{ path: 'header:Idempotency-Key', message: 'must be 1-255 characters' }]);
    }
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
    const rootPath = (i: number) => (Array.isArray(body) ? `$[${i}]` : `$.events[${i}]`);
    const accepted = await deps.ingest.accept(events, { rootPath });
    res.status(accepted.every((a) => a.duplicate) ? 200 : 202).json({ data: accepted.map(present) });
  });

  router.get('/event-types', requireRole(deps.keys, 'read'), (_req, res) => {
    res.json({ data: deps.eventTypes() });
  });

  return router;
}
