import { Router } from 'express';
import { toPublicKey, type ApiKeyService } from '../../services/api-keys.ts';
import { requireRole } from '../auth.ts';

export function keysRouter(keys: ApiKeyService): Router {
  const router = Router();
  const admin = requireRole(keys, 'admin');

  router.post('/keys', admin, async (req, res) => {
    const { record, key } = await keys.create(req.body ?? {});
    res.status(201).json({ ...toPublicKey(record), key, _warning: 'Store this key now: it is shown only once.' });
  });

  router.get('/keys', admin, async (_req, res) => {
    res.json({ data: (await keys.list()).map(toPublicKey) });
  });

  router.patch('/keys/:id', admin, async (req, res) => {
    res.json(toPublicKey(await keys.setQuota(String(req.params.id), req.body)));
  });

  router.delete('/keys/:id', admin, async (req, res) => {
    await keys.revoke(String(req.params.id));
    res.json({ id: req.params.id, revoked: true });
  });

  return router;
}
