import { Router } from 'express';
import type { ApiKeyService } from '../../services/api-keys.ts';
import type { HookService } from '../../services/hooks.ts';
import { requireRole } from '../auth.ts';

/**
 * REST hooks for Zapier and n8n trigger nodes (admin keys): subscribe, look up, unsubscribe
 * (idempotent) and sample data. See services/hooks.ts.
 */
export function hooksRouter(deps: { keys: ApiKeyService; hooks: HookService }): Router {
  const router = Router();
  const admin = requireRole(deps.keys, 'admin');
  const { hooks } = deps;

  // Before /hooks/:id, which would otherwise take "sample" for an id.
  router.get('/hooks/sample', admin, async (req, res) => {
    res.json(await hooks.sample(req.query));
  });

  router.post('/hooks', admin, async (req, res) => {
    res.status(201).json(await hooks.subscribe(req.body));
  });

  router.get('/hooks/:id', admin, async (req, res) => {
    res.json(await hooks.get(String(req.params.id)));
  });

  router.delete('/hooks/:id', admin, async (req, res) => {
    res.json(await hooks.unsubscribe(String(req.params.id)));
  });

  return router;
}
