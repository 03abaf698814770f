import { Router } from 'express';
import type { ApiKeyService } from '../../services/api-keys.ts';
import type { ConnectorDefinition } from '../../delivery/connector.ts';
import { requireRole } from '../auth.ts';

/** The connectors and their option schemas, for the dashboard's form and for scripts. */
export function connectorsRouter(deps: { keys: ApiKeyService; connectors: readonly ConnectorDefinition[] }): Router {
  const router = Router();
  router.get('/connectors', requireRole(deps.keys, 'read'), (_req, res) => {
    res.json({
      data: deps.connectors.map((c) => ({
        name: c.name,
        title: c.title,
        description: c.description,
        url: c.url,
        options_schema: c.optionsSchema,
        secret_options: c.secretOptions,
        default_mapping: c.defaultMapping ?? null,
        defaults: c.subscriptionDefaults ?? {},
      })),
    });
  });
  return router;
}
