import { Router } from 'express';
import type { ApiKeyService } from '../../services/api-keys.ts';
import type { DeliveryService } from '../../services/deliveries.ts';
import { requireRole } from '../auth.ts';

export function deliveriesRouter(deps: { keys: ApiKeyService; deliveries: DeliveryService }): Router {
  const router = Router();
  const read = requireRole(deps.keys, 'read');
  const admin = requireRole(deps.keys, 'admin');
  const { deliveries } = deps;

  router.get('/webhooks/:id/deliveries', read, async (req, res) => {
    res.json(await deliveries.list(String(req.params.id), req.query));
  });
  router.get('/deliveries', read, async (req, res) => {
    res.json(await deliveries.list(undefined, req.query));
  });
  router.get('/deliveries/:id', read, async (req, res) => {
    res.json(await deliveries.get(String(req.params.id)));
  });
  router.post('/deliveries/:id/replay', admin, async (req, res) => {
    res.status(202).json(await deliveries.replay(String(req.params.id)));
  });
  router.post('/deliveries/:id/skip', admin, async (req, res) => {
    res.json(await deliveries.skip(String(req.params.id)));
  });
  router.get('/webhooks/:id/blocked-keys', read, async (req, res) => {
    res.json(await deliveries.blockedKeys(String(req.params.id)));
  });
  router.post('/webhooks/:id/replay', admin, async (req, res) => {
    res.status(202).json(await deliveries.replayBulk(String(req.params.id), req.body));
  });
  router.post('/webhooks/:id/test', admin, async (req, res) => {
    res.json(await deliveries.testSend(String(req.params.id), req.body));
  });
  return router;
}
