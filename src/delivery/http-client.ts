import { Agent, errors as undiciErrors, type buildConnector, type Dispatcher } from 'undici';
import type { OutboundRequest, ResponseInfo } from './connector.ts';

/** Response bodies are kept up to this many bytes in the delivery log. */
export const RESPONSE_EXCERPT_BYTES = 4096;
/** Beyond this we stop reading and drop the connection rather than drain a huge body. */
const MAX_DRAIN_BYTES = 256 * 1024;

export type SendResult =
  | { ok: true; response: ResponseInfo; latencyMs: number }
  | { ok: false; error: string; code: string; latencyMs: number };

export interface HttpClientOptions {
  /** Builds the connector from its options: the SSRF guard checks every address it connects to. */
  connector?: (options: buildConnector.BuildOptions) => buildConnector.connector;
  connectTimeoutMs?: number;
  /** Per-origin connection cap; keep-alive pools are per origin. */
  connectionsPerOrigin?: number;
}

/**
 * The one outbound HTTP client: undici keep-alive pools per origin, no redirects followed,
 * connect and total timeouts, capped response reading. It never throws: failures are results.
 */
export class HttpClient {
  readonly #agent: Agent;

  constructor(options: HttpClientOptions = {}) {
    this.#agent = new Agent({
      connect: options.connector ? options.connector({ timeout: options.connectTimeoutMs ?? 10_000 }) : { timeout: options.connectTimeoutMs ?? 10_000 },
      connections: options.connectionsPerOrigin ?? 64,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 120_000,
      pipelining: 1,
    });
  }

  async send(request: OutboundRequest, timeoutMs: number): Promise<SendResult> {
    const started = performance.now();
    const signal = AbortSignal.timeout(timeoutMs);
    const latency = () => Math.round((performance.now() - started) * 100) / 100;
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return { ok: false, error: `invalid URL ${request.url}`, code: 'EINVALIDURL', latencyMs: 0 };
    }
    try {
      const res = await this.#agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: request.method,
        headers: request.headers,
        body: request.body ?? undefined,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const body = await readCapped(res.body);
      return { ok: true, response: { status: res.statusCode, headers: flattenHeaders(res.headers), body }, latencyMs: latency() };
    } catch (err) {
      return { ok: false, ...describeError(err, timeoutMs), latencyMs: latency() };
    }
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => undefined);
  }
}

async function readCapped(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let kept = 0;
  let seen = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    seen += chunk.length;
    if (kept < RESPONSE_EXCERPT_BYTES) {
      const part = chunk.subarray(0, RESPONSE_EXCERPT_BYTES - kept);
      chunks.push(part);
      kept += part.length;
    }
    if (seen > MAX_DRAIN_BYTES) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

function describeError(err: unknown, timeoutMs: number): { error: string; code: string } {
  const e = err as { code?: string; message?: string; name?: string; cause?: { code?: string; message?: string } };
  const code = e.cause?.code ?? e.code ?? e.name ?? 'ERROR';
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return { error: `timed out after ${timeoutMs} ms`, code: 'ETIMEDOUT' };
  }
  if (err instanceof undiciErrors.ConnectTimeoutError) return { error: 'connect timed out', code: 'ECONNECTTIMEOUT' };
  const message = e.cause?.message ?? e.message ?? String(err);
  return { error: `${code}: ${message}`, code };
}
