import type { NextFunction, Request, Response } from 'express';
import { ForbiddenError, UnauthorizedError } from '../errors.ts';
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

export function requireRole(keys: ApiKeyService, role: Role) {
  return async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) throw new UnauthorizedError();
    const key = await keys.verify(match[1]);
    if (!key) throw new UnauthorizedError();
    if (!GRANTS[role].includes(key.role)) {
      throw new ForbiddenError(`This API key has the "${key.role}" role; this action needs ${role === 'admin' ? 'an "admin"' : `a "${role}" or "admin"`} key.`);
    }
    req.apiKey = key;
    next();
  };
}
