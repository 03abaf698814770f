import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { HttpClient, RESPONSE_EXCERPT_BYTES } from '../../src/delivery/http-client.ts';

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
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('HttpClient response reading', () => {
  const client = new HttpClient();
  afterAll(() => client.close());

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
