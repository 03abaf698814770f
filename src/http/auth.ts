import type { NextFunction, Request, Response } from 'express';
import { ForbiddenError, UnauthorizedError } from '../errors.ts';
import { closeAfterResponse } from './json-body.ts';
import type { ApiKeyService } from '../services/api-keys.ts';
import type { ApiKeyRecord, Role } from '../storage/types.ts';

declare module 'express-serve-static-core' {
  interface Request {
    apiKey?: ApiKeyRecord;
  }
}

/** Which roles may call a route that needs `role`: admin may do everything. */
const GRANTS: Record<Role, readonly Role[]> = {
  ingest: ['ingest', 'admin'],
  read: ['read', 'admin'],
  admin: ['admin'],
};

async function verifiedKey(keys: ApiKeyService, req: Request): Promise<ApiKeyRecord> {
  if (req.apiKey) return req.apiKey;
  const header = req.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  const key = match ? await keys.verify(match[1]) : undefined;
  if (!key) throw new UnauthorizedError();
  return key;
}

/**
 * Runs before the body is read: a request without a valid key is answered 401 at once, and its
 * connection closed, so anonymous clients cannot make the gateway buffer and parse bodies.
 */
export function authenticate(keys: ApiKeyService) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      req.apiKey = await verifiedKey(keys, req);
    } catch (err) {
      closeAfterResponse(res);
      throw err;
    }
    next();
  };
}

export function requireRole(keys: ApiKeyService, role: Role) {
  return async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
    const key = await verifiedKey(keys, req);
    if (!GRANTS[role].includes(key.role)) {
      throw new ForbiddenError(`This API key has the "${key.role}" role; this action needs ${role === 'admin' ? 'an "admin"' : `a "${role}" or "admin"`} key.`);
    }
    req.apiKey = key;
    next();
  };
}
