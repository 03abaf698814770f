import type { NextFunction, Request, Response } from 'express';
import { AppError, BadRequestError, NotFoundError, PayloadTooLargeError } from '../errors.ts';
import type { Logger } from '../logger.ts';

/** The one place errors become HTTP responses, all in the one JSON error shape. */
export function errorHandler(logger: Logger, maxBodyBytes: number) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const appError = toAppError(err, maxBodyBytes);
    if (appError.status >= 500) logger.error({ err, method: req.method, path: req.path }, 'request failed');
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(appError.status).json(appError.toBody());
  };
}

function toAppError(err: unknown, maxBodyBytes: number): AppError {
  if (err instanceof AppError) return err;
  const e = err as { type?: string; status?: number; message?: string };
  // body-parser's errors carry a `type`; translate them rather than leaking a 500.
  switch (e?.type) {
    case 'entity.too.large':
      return new PayloadTooLargeError(maxBodyBytes);
    case 'entity.parse.failed':
      return new BadRequestError('invalid_json', `The request body is not valid JSON: ${e.message}`);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError(415, 'unsupported_encoding', e.message ?? 'Unsupported body encoding.');
    case 'request.aborted':
      return new BadRequestError('request_aborted', 'The client aborted the request.');
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new BadRequestError('invalid_body', e.message ?? 'Invalid request body.');
  }
  if (e?.status && e.status >= 400 && e.status < 500) return new AppError(e.status, 'bad_request', e.message ?? 'Bad request.');
  if (e instanceof URIError) return new BadRequestError('invalid_path', 'The request path is not valid percent-encoding.');
  return new AppError(500, 'internal_error', 'Something went wrong on our side; the error has been logged.');
}

export function notFoundHandler(req: Request): never {
  throw new NotFoundError(`Route ${req.method} ${req.path}`);
}
