import fs from 'node:fs';
import { Router } from 'express';
import { buildOpenApiDocument, type OpenApiOptions } from '../openapi-document.ts';

const PACKAGE_VERSION = (JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** GET /api/v1/openapi.json, without auth: client generators and the /docs page read it. */
export function openapiRouter(opts: Omit<OpenApiOptions, 'version'>): Router {
  const router = Router();
  const document = buildOpenApiDocument({ version: PACKAGE_VERSION, ...opts });
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  return router;
}
