/**
 * The one error tree. Every failure that reaches a client is an AppError (or is
 * converted into one by the HTTP error middleware), rendered as
 * {"error": {"code", "message", "details"}}.
 */
export interface ErrorDetail {
  /** JSON path (`$.data.call.id`), field name, or template position, where the problem is. */
  path?: string;
  message: string;
  line?: number;
  column?: number;
  token?: string;
  [extra: string]: unknown;
}

export class AppError extends Error {
  /** Response headers that go with this error (Retry-After). */
  headers: Record<string, string> = {};

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }

  withHeaders(headers: Record<string, string>): this {
    this.headers = { ...this.headers, ...headers };
    return this;
  }

  toBody(): { error: { code: string; message: string; details: ErrorDetail[] } } {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

export class BadRequestError extends AppError {
  constructor(code: string, message: string, details: ErrorDetail[] = []) {
    super(400, code, message, details);
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'Missing or unknown API key. Send Authorization: Bearer <api key>.') {
    super(401, 'unauthorized', message);
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string) {
    super(403, 'forbidden', message);
  }
}

export class NotFoundError extends AppError {
  constructor(what: string, id?: string) {
    super(404, 'not_found', id ? `${what} ${id} was not found.` : `${what} was not found.`);
  }
}

export class ConflictError extends AppError {
  constructor(code: string, message: string, details: ErrorDetail[] = []) {
    super(409, code, message, details);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(limitBytes: number) {
    super(413, 'payload_too_large', `Request body exceeds the limit of ${limitBytes} bytes.`, [
      { message: `limit is ${limitBytes} bytes`, limit: limitBytes },
    ]);
  }
}

/** Input that parsed but is semantically invalid: 422 with every problem and its path. */
export class ValidationError extends AppError {
  constructor(message: string, details: ErrorDetail[], code = 'validation_failed') {
    super(422, code, message, details);
  }
}

/** A JSONata template or filter that does not compile, or fails at evaluation time. */
export class TemplateError extends AppError {
  constructor(
    message: string,
    details: ErrorDetail[],
    code = 'template_invalid',
  ) {
    super(422, code, message, details);
  }
}

/** Over a quota: 429 with Retry-After (whole seconds, rounded up). */
export class TooManyRequestsError extends AppError {
  constructor(code: string, message: string, retryAfterSeconds: number, details: ErrorDetail[] = []) {
    super(429, code, message, details);
    this.headers = { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) };
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(message: string) {
    super(503, 'unavailable', message);
  }
}

/**
 * An error as it crosses a thread boundary (the SQLite storage thread): structured clone keeps
 * neither the class nor the fields, so both sides agree on this shape and the receiving side
 * gets an instance of the same class back (the HTTP error mapping relies on `instanceof`).
 */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  status?: number;
  details?: ErrorDetail[];
  headers?: Record<string, string>;
}

const APP_ERRORS: Record<string, typeof AppError> = Object.fromEntries(
  [AppError, BadRequestError, UnauthorizedError, ForbiddenError, NotFoundError, ConflictError, PayloadTooLargeError, ValidationError, TemplateError, TooManyRequestsError, ServiceUnavailableError]
    .map((cls) => [cls.name, cls as typeof AppError]),
);

export function errorToWire(err: unknown): WireError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const e = err as Error & Partial<WireError>;
  const wire: WireError = { name: e.name, message: e.message, stack: e.stack };
  if (typeof e.code === 'string') wire.code = e.code;
  if (err instanceof AppError) Object.assign(wire, { status: err.status, details: err.details, headers: err.headers });
  return wire;
}

/**
 * The error back, as an instance of its class when it is one of the tree's (or one `other`
 * knows, such as the database driver's); else a plain Error with the same name, message and code.
 */
export function errorFromWire(wire: WireError, other?: (wire: WireError) => Error | undefined): Error {
  const cls = APP_ERRORS[wire.name];
  const err: Error = cls ? Object.create(cls.prototype) : other?.(wire) ?? new Error(wire.message);
  return Object.assign(err, wire);
}
