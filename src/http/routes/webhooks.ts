import { Router } from 'express';
import type { ApiKeyService } from '../../services/api-keys.ts';
import type { SubscriptionService } from '../../services/subscriptions.ts';
import type { SubscriptionRecord } from '../../storage/types.ts';
import { requireRole } from '../auth.ts';

export const SECRET_WARNING = 'Store this signing secret now: it is shown only once. Receivers verify webhook-signature (Standard Webhooks) or X-Webhook-Signature with it.';

export function webhooksRouter(deps: { keys: ApiKeyService; subscriptions: SubscriptionService }): Router {
  const router = Router();
  const read = requireRole(deps.keys, 'read');
  const admin = requireRole(deps.keys, 'admin');
  const subs = deps.subscriptions;

  const withStats = async (sub: SubscriptionRecord) => ({ ...subs.present(sub), stats_24h: await subs.stats24h(sub.id) });

  router.get('/webhooks', read, async (_req, res) => {
    res.json({ data: await Promise.all((await subs.list()).map(withStats)) });
  });

  router.get('/webhooks/:id', read, async (req, res) => {
    res.json(await withStats(await subs.get(String(req.params.id))));
  });

  router.post('/webhooks', admin, async (req, res) => {
    const { record, secret } = await subs.create(req.body);
    res.status(201).json({ ...subs.present(record), signing_secret: secret, _warning: SECRET_WARNING });
  });

  router.patch('/webhooks/:id', admin, async (req, res) => {
    res.json(subs.present(await subs.update(String(req.params.id), req.body)));
  });

  router.delete('/webhooks/:id', admin, async (req, res) => {
    await subs.remove(String(req.params.id));
    res.json({ id: req.params.id, deleted: true });
  });

  router.post('/webhooks/:id/rotate-secret', admin, async (req, res) => {
    const { record, secret } = await subs.rotateSecret(String(req.params.id));
    res.json({ ...subs.present(record), signing_secret: secret, _warning: SECRET_WARNING });
  });

  return router;
}
