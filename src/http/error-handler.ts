import type { NextFunction, Request, Response } from 'express';
import { AppError, BadRequestError, NotFoundError } from '../errors.ts';
import type { Logger } from '../logger.ts';

/** The one place errors become HTTP responses, all in the one JSON error shape. */
export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const appError = toAppError(err);
    if (appError.status >= 500) logger.error({ err, method: req.method, path: req.path }, 'request failed');
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(appError.status).set(appError.headers).json(appError.toBody());
  };
}

function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { status?: number; message?: string };
  if (e?.status && e.status >= 400 && e.status < 500) return new AppError(e.status, 'bad_request', e.message ?? 'Bad request.');
  if (e instanceof URIError) return new BadRequestError('invalid_path', 'The request path is not valid percent-encoding.');
  return new AppError(500, 'internal_error', 'Something went wrong on our side; the error has been logged.');
}

export function notFoundHandler(req: Request): never {
  throw new NotFoundError(`Route ${req.method} ${req.baseUrl}${req.path}`);
}
