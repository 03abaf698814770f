import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { errors as undiciErrors } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { HttpClient, RESPONSE_EXCERPT_BYTES } from '../../src/delivery/http-client.ts';

const client = new HttpClient();
afterAll(() => client.close());

function stop(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** A destination that answers 200 and then streams forever (or until the client hangs up). */
async function endlessDestination(): Promise<{ url: string; written: () => number; hungUp: Promise<void>; close: () => Promise<void> }> {
  let written = 0;
  let hangUp!: () => void;
  const hungUp = new Promise<void>((resolve) => (hangUp = resolve));
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    const chunk = Buffer.alloc(16 * 1024, 'x');
    const pump = () => {
      while (!res.destroyed && res.write(chunk)) written += chunk.length;
      if (!res.destroyed) res.once('drain', pump);
    };
    res.on('close', hangUp);
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    written: () => written,
    hungUp,
    close: () => stop(server),
  };
}

describe('HttpClient response reading', () => {
  it('keeps a 4 KB excerpt of an endless response and hangs up after a bounded read, well before the timeout', async () => {
    const destination = await endlessDestination();
    try {
      const result = await client.send({ method: 'POST', url: destination.url, headers: { 'content-type': 'application/json' }, body: '{}', sign: false }, 60_000);
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.response.status).toBe(200);
      expect(result.response.body).toBe('x'.repeat(RESPONSE_EXCERPT_BYTES));
      // The client closed the connection itself: the destination saw it go.
      await destination.hungUp;
      // What was read is bounded (the server may have buffered more into the socket than was read).
      expect(destination.written()).toBeLessThan(64 * 1024 * 1024);
    } finally {
      await destination.close();
    }
  }, 30_000);
});

/** A destination that records each request and answers as `respond` says. */
async function recordingDestination(respond: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void) {
  const seen: { method?: string; url?: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      respond(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    seen,
    close: () => stop(server),
  };
}

describe('HttpClient.send', () => {
  it('sends the method, path and query, headers and body as given, and returns status, headers and body', async () => {
    const destination = await recordingDestination((_req, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.writeHead(201, { 'x-answer': 'yes' });
      res.end('créé');
    });
    try {
      const result = await client.send({ method: 'PUT', url: `${destination.origin}/in/hook?x=1&y=2`, headers: { 'content-type': 'application/json', 'x-custom': 'v' }, body: '{"é":1}', sign: true }, 5_000);
      expect(destination.seen).toHaveLength(1);
      expect(destination.seen[0]).toMatchObject({ method: 'PUT', url: '/in/hook?x=1&y=2', body: '{"é":1}' });
      expect(destination.seen[0].headers).toMatchObject({ 'content-type': 'application/json', 'x-custom': 'v' });
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.response.status).toBe(201);
      expect(result.response.body).toBe('créé');
      expect(result.response.headers['x-answer']).toBe('yes');
      // Repeated headers are joined, as a single value.
      expect(result.response.headers['set-cookie']).toBe('a=1, b=2');
      expect(result.latencyMs).toBeGreaterThanOrEqual(0);
      expect(result.latencyMs).toBe(Math.round(result.latencyMs * 100) / 100); // rounded to 0.01 ms
    } finally {
      await destination.close();
    }
  });

  it('sends no body for a null body, and follows no redirect', async () => {
    const destination = await recordingDestination((_req, res) => {
      res.writeHead(302, { location: '/elsewhere' });
      res.end();
    });
    try {
      const result = await client.send({ method: 'GET', url: `${destination.origin}/`, headers: {}, body: null, sign: false }, 5_000);
      expect(destination.seen).toHaveLength(1);
      expect(destination.seen[0]).toMatchObject({ method: 'GET', url: '/', body: '' });
      expect(result).toMatchObject({ ok: true, response: { status: 302, headers: { location: '/elsewhere' }, body: '' } });
    } finally {
      await destination.close();
    }
  });

  it('keeps the first 4 KB of a longer body it reads to the end', async () => {
    const text = `${'a'.repeat(RESPONSE_EXCERPT_BYTES - 1)}bcd${'e'.repeat(10_000)}`;
    const destination = await recordingDestination((_req, res) => {
      res.writeHead(500);
      res.end(text);
    });
    try {
      const result = await client.send({ method: 'POST', url: `${destination.origin}/`, headers: {}, body: '{}', sign: true }, 5_000);
      expect(result).toMatchObject({ ok: true, response: { status: 500, body: `${'a'.repeat(RESPONSE_EXCERPT_BYTES - 1)}b` } });
    } finally {
      await destination.close();
    }
  });

  it('fails an unparsable URL without sending', async () => {
    expect(await client.send({ method: 'POST', url: 'not a url', headers: {}, body: '{}', sign: true }, 1_000)).toEqual({
      ok: false,
      error: 'invalid URL not a url',
      code: 'EINVALIDURL',
      latencyMs: 0,
    });
  });

  it('reports a refused connection with its code', async () => {
    const destination = await recordingDestination(() => undefined);
    const { origin } = destination;
    await destination.close();
    const result = await client.send({ method: 'POST', url: `${origin}/`, headers: {}, body: '{}', sign: true }, 5_000);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe('ECONNREFUSED');
    expect(result.error).toMatch(/^ECONNREFUSED: .*ECONNREFUSED/);
  });

  it('times out a destination that never answers, naming the timeout', async () => {
    const destination = await recordingDestination(() => undefined);
    try {
      const result = await client.send({ method: 'POST', url: `${destination.origin}/`, headers: {}, body: '{}', sign: true }, 150);
      expect(result).toMatchObject({ ok: false, code: 'ETIMEDOUT', error: 'timed out after 150 ms' });
      expect(result.latencyMs).toBeGreaterThanOrEqual(100);
    } finally {
      await destination.close();
    }
  });

  it('connects through the given connector, which can refuse with its own error', async () => {
    const refusing = new HttpClient({
      connector: (options) => {
        expect(options.timeout).toBe(1_234);
        return (_connectOptions, callback) => callback(Object.assign(new Error('refusing to connect'), { code: 'ESSRF' }), null);
      },
      connectTimeoutMs: 1_234,
    });
    try {
      const result = await refusing.send({ method: 'POST', url: 'http://127.0.0.1:9/', headers: {}, body: '{}', sign: true }, 5_000);
      expect(result).toMatchObject({ ok: false, code: 'ESSRF', error: 'ESSRF: refusing to connect' });
    } finally {
      await refusing.close();
    }
  });

  it('gives the connector a 10 s connect timeout by default, and names a connect timeout', async () => {
    let timeout: number | undefined;
    const slow = new HttpClient({
      connector: (options) => {
        timeout = options.timeout ?? undefined;
        return (_connectOptions, callback) => callback(new undiciErrors.ConnectTimeoutError(), null);
      },
    });
    try {
      expect(timeout).toBe(10_000);
      const result = await slow.send({ method: 'POST', url: 'http://127.0.0.1:9/', headers: {}, body: '{}', sign: true }, 5_000);
      expect(result).toMatchObject({ ok: false, code: 'ECONNECTTIMEOUT', error: 'connect timed out' });
    } finally {
      await slow.close();
    }
  });
});

describe('HttpClient failures, as the connector reports them', () => {
  /** A client whose every connection fails with `error`. */
  async function failWith(error: unknown) {
    const failing = new HttpClient({ connector: () => (_connectOptions, callback) => callback(error as Error, null) });
    try {
      return await failing.send({ method: 'POST', url: 'http://127.0.0.1:9/', headers: {}, body: '{}', sign: true }, 4_321);
    } finally {
      await failing.close();
    }
  }

  it('names a timeout for undici header and body timeouts and aborted or timed-out signals', async () => {
    const timedOut = { ok: false, code: 'ETIMEDOUT', error: 'timed out after 4321 ms' };
    expect(await failWith(new undiciErrors.HeadersTimeoutError())).toMatchObject(timedOut);
    expect(await failWith(new undiciErrors.BodyTimeoutError())).toMatchObject(timedOut);
    expect(await failWith(Object.assign(new Error('aborted'), { name: 'AbortError' }))).toMatchObject(timedOut);
    expect(await failWith(Object.assign(new Error('signal timed out'), { name: 'TimeoutError' }))).toMatchObject(timedOut);
  });

  it('takes the code and message of the cause first, then of the error, then its name, then ERROR', async () => {
    const inner = { code: 'EINNER', message: 'inner message' };
    expect(await failWith(Object.assign(new Error('outer'), { code: 'EOUTER', cause: inner }))).toMatchObject({ ok: false, code: 'EINNER', error: 'EINNER: inner message' });
    expect(await failWith(Object.assign(new Error('outer'), { code: 'EOUTER', cause: { message: 'inner only' } }))).toMatchObject({ code: 'EOUTER', error: 'EOUTER: inner only' });
    expect(await failWith(Object.assign(new Error('outer'), { cause: { code: 'EINNER' } }))).toMatchObject({ code: 'EINNER', error: 'EINNER: outer' });
    expect(await failWith(new TypeError('plain'))).toMatchObject({ code: 'TypeError', error: 'TypeError: plain' });
    expect(await failWith(Object.assign(new Error('nameless'), { name: undefined }))).toMatchObject({ code: 'ERROR', error: 'ERROR: nameless' });
    expect(await failWith('a bare string')).toMatchObject({ code: 'ERROR', error: 'ERROR: a bare string' });
  });
});

describe('HttpClient connection pool', () => {
  it('keeps to the per-origin connection cap, reusing a kept-alive connection', async () => {
    const ports: number[] = [];
    const destination = await recordingDestination((req, res) => {
      ports.push(req.socket.remotePort!);
      res.end('ok');
    });
    const capped = new HttpClient({ connectionsPerOrigin: 1 });
    const uncapped = new HttpClient();
    try {
      const request = { method: 'POST' as const, url: `${destination.origin}/`, headers: {}, body: '{}', sign: true };
      const one = await Promise.all([capped.send(request, 5_000), capped.send(request, 5_000), capped.send(request, 5_000)]);
      expect(one.map((r) => r.ok)).toEqual([true, true, true]);
      expect(new Set(ports).size).toBe(1);
      ports.length = 0;
      // Without a cap as low, concurrent requests open connections of their own.
      await Promise.all([uncapped.send(request, 5_000), uncapped.send(request, 5_000), uncapped.send(request, 5_000)]);
      expect(new Set(ports).size).toBe(3);
    } finally {
      await capped.close();
      await uncapped.close();
      await destination.close();
    }
  });
});

describe('HttpClient reading a body in pieces, timing and closing', () => {
  it('keeps exactly the first 4 KB of a body that arrives in small pieces, reading on past them', async () => {
    // 6 pieces of 1000 bytes, paced by the destination so that the client reads them one by one
    // (bytes that arrive together are read as one chunk): the excerpt ends inside the fifth.
    // The result does not depend on the pacing; only how the body is split into chunks does.
    const pieces = Array.from({ length: 6 }, (_, i) => String.fromCharCode(97 + i).repeat(1000));
    const destination = await recordingDestination((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const next = (i: number): void => {
        if (i === pieces.length) res.end();
        else res.write(pieces[i], () => setTimeout(() => next(i + 1), 15));
      };
      next(0);
    });
    try {
      const result = await client.send({ method: 'POST', url: `${destination.origin}/`, headers: {}, body: '{}', sign: true }, 5_000);
      expect(result).toMatchObject({ ok: true, response: { status: 200, body: pieces.join('').slice(0, RESPONSE_EXCERPT_BYTES) } });
    } finally {
      await destination.close();
    }
  });

  it('measures latency in milliseconds from the start of the send', async () => {
    const destination = await recordingDestination((_req, res) => res.end('ok'));
    try {
      const before = performance.now();
      const result = await client.send({ method: 'POST', url: `${destination.origin}/`, headers: {}, body: '{}', sign: true }, 5_000);
      const elapsed = performance.now() - before;
      expect(result.ok).toBe(true);
      expect(result.latencyMs).toBeGreaterThanOrEqual(0);
      expect(result.latencyMs).toBeLessThanOrEqual(Math.ceil(elapsed * 100) / 100);
    } finally {
      await destination.close();
    }
  });

  it('sends nothing once closed', async () => {
    const destination = await recordingDestination((_req, res) => res.end('ok'));
    const closing = new HttpClient();
    try {
      await closing.close();
      const result = await closing.send({ method: 'POST', url: `${destination.origin}/`, headers: {}, body: '{}', sign: true }, 5_000);
      expect(result.ok).toBe(false);
      expect(destination.seen).toHaveLength(0);
    } finally {
      await destination.close();
    }
  });
});
