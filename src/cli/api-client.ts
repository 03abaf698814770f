import { CliError, EXIT } from './exit-codes.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8080';
const TIMEOUT_MS = 30_000;

/** An API error answer, kept whole so callers can show its details. */
export class ApiError extends CliError {
  constructor(readonly status: number, readonly body: { error?: { code?: string; message?: string; details?: { path?: string; message: string }[] } }) {
    const e = body.error ?? {};
    const details = (e.details ?? []).map((d) => `\n  ${d.path ? d.path + ': ' : ''}${d.message}`).join('');
    super(EXIT.refused, `${status} ${e.code ?? 'error'}: ${e.message ?? 'the gateway refused the request'}${details}`);
  }
}

/** The HTTP API as the CLI uses it: JSON in and out, errors as CliErrors with exit codes. */
export class GatewayClient {
  constructor(readonly baseUrl: string, readonly apiKey: string) {}

  async request<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: { authorization: `Bearer ${this.apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(EXIT.unreachable, `cannot reach the gateway at ${this.baseUrl} (${cause?.code ?? cause?.message ?? (err as Error).message}); set SLUICE_URL or --url`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new CliError(EXIT.refused, `${res.status}: the answer from ${this.baseUrl} is not JSON — is SLUICE_URL a Sluice gateway?`);
    }
    if (!res.ok) throw new ApiError(res.status, (parsed ?? {}) as ApiError['body']);
    return parsed as T;
  }
}

export interface ConnectionOptions {
  url?: string;
}

/** SLUICE_URL (or --url) and SLUICE_API_KEY: the key only from the environment, never argv (ps shows argv). */
export function clientFromEnv(opts: ConnectionOptions, env: NodeJS.ProcessEnv = process.env): GatewayClient {
  const url = opts.url ?? env.SLUICE_URL ?? DEFAULT_URL;
  try {
    new URL(url);
  } catch {
    throw new CliError(EXIT.usage, `SLUICE_URL / --url is not a URL: ${url}`);
  }
  const key = env.SLUICE_API_KEY;
  if (!key) throw new CliError(EXIT.usage, 'set SLUICE_API_KEY to an API key of the gateway (an admin key for apply, export and replay)');
  return new GatewayClient(url, key);
}
