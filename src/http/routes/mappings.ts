import { Router } from 'express';
import { ValidationError, type ErrorDetail } from '../../errors.ts';
import type { ApiKeyService } from '../../services/api-keys.ts';
import type { MappingPreviewService } from '../../services/mapping-preview.ts';
import { requireRole } from '../auth.ts';
import { fieldsOf, mappingPreviewSchema } from '../../core/api-schemas.ts';

const PREVIEW_FIELDS = fieldsOf(mappingPreviewSchema);

export function mappingsRouter(deps: { keys: ApiKeyService; preview: MappingPreviewService }): Router {
  const router = Router();
  const read = requireRole(deps.keys, 'read');

  router.get('/mappings', read, (_req, res) => {
    res.json({ data: deps.preview.list() });
  });

  router.post('/mappings/preview', read, async (req, res) => {
    const body = req.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ValidationError('Invalid preview request.', [{ path: '$', message: 'must be a JSON object {template | mapping, event, filter?}' }]);
    const details: ErrorDetail[] = [];
    for (const key of Object.keys(body)) if (!PREVIEW_FIELDS.includes(key)) details.push({ path: `$.${key}`, message: 'is not a known field' });
    for (const key of ['template', 'mapping', 'filter', 'event_id', 'subscription_id']) {
      if (body[key] !== undefined && body[key] !== null && typeof body[key] !== 'string') details.push({ path: `$.${key}`, message: 'must be a string' });
    }
    // null is "not given", as in the type checks above and in the preview service.
    if (body.template != null && body.mapping != null) details.push({ path: '$.mapping', message: 'give either template (inline JSONata) or mapping (a template name or inline), not both' });
    if (body.event === undefined && body.event_id === undefined) details.push({ path: '$.event', message: 'is required: an event envelope {event, id, timestamp, data}, or event_id of a stored event' });
    if (details.length) throw new ValidationError('Invalid preview request.', details);
    res.json(await deps.preview.preview(body as Parameters<MappingPreviewService['preview']>[0], { withEnv: req.apiKey?.role === 'admin' }));
  });

  return router;
}
