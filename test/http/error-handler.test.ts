import express from 'express';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { errorHandler } from '../../src/http/error-handler.ts';
import { createLogger } from '../../src/logger.ts';

/** The one place errors become responses: its 500 path, with a real express app and logger. */
describe('errorHandler', () => {
  it('answers an unexpected error with a 500 in the JSON error shape, without its message, and logs it', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { lines.push(chunk.toString()); done(); } });
    const app = express();
    app.get('/boom', () => {
      throw new Error('db password hunter2 in a driver message');
    });
    app.use(errorHandler(createLogger('info', sink)));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/boom`);
      expect(res.status).toBe(500);
      const body = await res.json();
      expect(body).toEqual({ error: { code: 'internal_error', message: 'Something went wrong on our side; the error has been logged.', details: [] } });
      expect(JSON.stringify(body)).not.toContain('hunter2');
      const logged = lines.map((line) => JSON.parse(line)).find((entry) => entry.msg === 'request failed');
      expect(logged).toMatchObject({ level: 50, method: 'GET', path: '/boom' });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
