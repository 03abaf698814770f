import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.ts';
import { errorHandler, notFoundHandler } from './error-handler.ts';
import { createHash, timingSafeEqual } from 'node:crypto';
import { AppError, UnauthorizedError } from '../errors.ts';
import { jsonBody } from './json-body.ts';

export interface HttpAppDeps {
  logger: Logger;
  maxBodyBytes: number;
  isReady: () => boolean;
  metrics: Registry;
  /** SLUICE_METRICS_TOKEN: when set, /metrics needs it as a bearer token. */
  metricsToken?: string;
  /** Runs before any /api/v1 body is read: refuses requests without a valid API key. */
  authenticate: RequestHandler;
  /** Routers mounted under /api/v1. */
  apiRouters: Router[];
  /** Routers mounted under /api/v1 before authentication (the OpenAPI document). */
  publicApiRouters?: Router[];
  /** Mounted at / after the API (the dashboard). */
  rootRouters?: Router[];
}

/**
 * Storing, filtering and templating an event all recurse over it: a body nested thousands of
 * levels deep would overflow the stack there. Real payloads stay far below this.
 */
export const MAX_JSON_DEPTH = 100;

/** Constant-time comparison of a bearer token (hashed first, so lengths do not leak either). */
function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1] ?? '';
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(token));
}

/** 405 with `Allow` when the path exists under another method; the caller falls through to 404 otherwise. */
function methodNotAllowed(routers: Router[]) {
  type RouteLayer = { route?: { methods: Record<string, boolean> }; match(path: string): boolean };
  return (req: Request, res: Response, next: NextFunction): void => {
    const allowed = new Set<string>();
    for (const router of routers) {
      for (const layer of router.stack as unknown as RouteLayer[]) {
        if (layer.route && layer.match(req.path)) for (const method of Object.keys(layer.route.methods)) allowed.add(method.toUpperCase());
      }
    }
    if (allowed.size === 0) return next();
    if (allowed.has('GET')) allowed.add('HEAD');
    res.setHeader('Allow', [...allowed].join(', '));
    throw new AppError(405, 'method_not_allowed', `${req.method} is not allowed on ${req.baseUrl}${req.path}; use ${[...allowed].join(', ')}.`);
  };
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
  app.get('/metrics', async (req, res) => {
    if (deps.metricsToken && !bearerMatches(req.headers.authorization, deps.metricsToken)) {
      throw new UnauthorizedError('GET /metrics needs Authorization: Bearer <SLUICE_METRICS_TOKEN>.');
    }
    res.type(deps.metrics.contentType).send(await deps.metrics.metrics());
  });

  for (const router of deps.publicApiRouters ?? []) app.use('/api/v1', router);
  // Every other API route needs a key: check it before reading a single byte of the body.
  app.use('/api/v1', deps.authenticate);
  app.use('/api/v1', jsonBody({ limit: deps.maxBodyBytes, maxDepth: MAX_JSON_DEPTH }));
  for (const router of deps.apiRouters) app.use('/api/v1', router);
  app.use('/api/v1', methodNotAllowed([...(deps.publicApiRouters ?? []), ...deps.apiRouters]), notFoundHandler);
  for (const router of deps.rootRouters ?? []) app.use(router);
  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
