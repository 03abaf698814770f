import express, { type Express, type Router } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.ts';
import { errorHandler, notFoundHandler } from './error-handler.ts';
import { ValidationError } from '../errors.ts';

export interface HttpAppDeps {
  logger: Logger;
  maxBodyBytes: number;
  isReady: () => boolean;
  metrics: Registry;
  /** Routers mounted under /api/v1. */
  apiRouters: Router[];
  /** Mounted at / after the API (the dashboard). */
  rootRouters?: Router[];
}

/**
 * Storing, filtering and templating an event all recurse over it: a body nested thousands of
 * levels deep would overflow the stack there. Real payloads stay far below this.
 */
export const MAX_JSON_DEPTH = 100;

/** Iterative, so the check itself cannot overflow the stack. */
function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: [object, number][] = value !== null && typeof value === 'object' ? [[value, 1]] : [];
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    if (depth > limit) return true;
    for (const child of Object.values(node)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

/** The express application: parsing, health, metrics, the API routers and the one error handler. */
export function createHttpApp(deps: HttpAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const ready = deps.isReady();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'starting' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.contentType).send(await deps.metrics.metrics());
  });

  // Any body is parsed as JSON whatever its Content-Type: a client that forgets the header still
  // gets its event accepted or a precise error, never a silent empty body.
  app.use('/api/v1', express.json({ limit: deps.maxBodyBytes, type: () => true, strict: false }));
  app.use('/api/v1', (req, _res, next) => {
    if (nestsDeeperThan(req.body, MAX_JSON_DEPTH)) {
      throw new ValidationError(`The JSON body nests deeper than ${MAX_JSON_DEPTH} levels.`, [{ path: '$', message: `nests deeper than ${MAX_JSON_DEPTH} levels` }], 'json_too_deep');
    }
    next();
  });
  for (const router of deps.apiRouters) app.use('/api/v1', router);
  app.use('/api/v1', notFoundHandler);
  for (const router of deps.rootRouters ?? []) app.use(router);
  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger, deps.maxBodyBytes));
  return app;
}
