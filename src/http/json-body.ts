import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Transform } from 'node:stream';
import type { NextFunction, Request, Response } from 'express';
import { AppError, BadRequestError, PayloadTooLargeError, ValidationError } from '../errors.ts';

/**
 * Reads a JSON request body. Unlike a read-then-parse body parser it watches the nesting depth
 * while the bytes arrive, so a `[[[[…` body is refused after its first hundred brackets rather
 * than after a megabyte has been buffered and parsed; the byte limit applies to the decoded
 * body too (a gzip bomb is cut off at the limit).
 *
 * Any Content-Type whose body is valid JSON is accepted (curl's `-d` sends form encoding); a body
 * that is not JSON is 415 when it was declared as something else, and 400 when it claimed JSON.
 */
export interface JsonBodyOptions {
  limit: number;
  maxDepth: number;
}

const DECOMPRESSORS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/** Counts `[`/`{` nesting outside strings across chunks. */
export class DepthScanner {
  #depth = 0;
  #inString = false;
  #escaped = false;

  constructor(private readonly maxDepth: number) {}

  /** False once the text so far nests deeper than the limit. */
  feed(text: string): boolean {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (c === 0x5c) this.#escaped = true;
        else if (c === 0x22) this.#inString = false;
      } else if (c === 0x22) this.#inString = true;
      else if (c === 0x5b || c === 0x7b) {
        if (++this.#depth > this.maxDepth) return false;
      } else if (c === 0x5d || c === 0x7d) this.#depth--;
    }
    return true;
  }
}

function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
}

function declaresJson(req: Request): boolean {
  const type = req.headers['content-type'];
  if (!type) return true;
  const essence = type.split(';')[0].trim().toLowerCase();
  return essence === 'application/json' || essence.endsWith('+json');
}

function charsetOf(req: Request): string {
  const match = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(req.headers['content-type'] ?? '');
  return match ? match[1].toLowerCase() : 'utf-8';
}

export function tooDeep(maxDepth: number): ValidationError {
  return new ValidationError(`The JSON body nests deeper than ${maxDepth} levels.`, [{ path: '$', message: `nests deeper than ${maxDepth} levels` }], 'json_too_deep');
}

/** Error answers sent before the body was read close the connection instead of draining it. */
export function closeAfterResponse(res: Response): void {
  if (!res.headersSent) res.setHeader('Connection', 'close');
}

export function jsonBody(options: JsonBodyOptions) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!hasBody(req)) {
      next();
      return;
    }
    const fail = (err: AppError) => {
      closeAfterResponse(res);
      next(err);
    };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > options.limit) return fail(new PayloadTooLargeError(options.limit));

    const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase().trim();
    const makeDecompressor = DECOMPRESSORS[encoding];
    if (!makeDecompressor && encoding !== 'identity') return fail(new AppError(415, 'unsupported_encoding', `Content-Encoding "${encoding}" is not supported; send identity, gzip, deflate or br.`));
    let decoder: TextDecoder;
    try {
      decoder = new TextDecoder(charsetOf(req));
    } catch {
      return fail(new AppError(415, 'unsupported_charset', `The charset "${charsetOf(req)}" is not supported; send UTF-8.`));
    }

    const scanner = new DepthScanner(options.maxDepth);
    const decompressor = makeDecompressor?.();
    const source = decompressor ? req.pipe(decompressor) : req;
    let received = 0;
    let text = '';
    let done = false;
    const stop = (err: AppError) => {
      if (done) return;
      done = true;
      if (decompressor) {
        req.unpipe(decompressor);
        decompressor.destroy();
      }
      req.pause();
      fail(err);
    };
    source.on('data', (chunk: Buffer) => {
      if (done) return;
      received += chunk.length;
      if (received > options.limit) return stop(new PayloadTooLargeError(options.limit));
      const part = decoder.decode(chunk, { stream: true });
      if (!scanner.feed(part)) return stop(tooDeep(options.maxDepth));
      text += part;
    });
    source.on('error', () => stop(new BadRequestError('invalid_body', `The request body could not be decoded as ${encoding}.`)));
    req.on('aborted', () => stop(new BadRequestError('request_aborted', 'The client aborted the request.')));
    source.on('end', () => {
      if (done) return;
      done = true;
      text += decoder.decode();
      if (text.trim() === '') {
        req.body = {};
        next();
        return;
      }
      try {
        req.body = JSON.parse(text);
      } catch (err) {
        next(
          declaresJson(req)
            ? new BadRequestError('invalid_json', `The request body is not valid JSON: ${(err as Error).message}`)
            : new AppError(415, 'unsupported_media_type', `The body is ${req.headers['content-type']}, not JSON; send a JSON body with Content-Type: application/json.`),
        );
        return;
      }
      next();
    });
  };
}
