import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../support/gateway.ts';

/** Regression: vendor assets are looked up by own property only; inherited names are 404s, not 500s. */
describe('GET /assets/vendor/:file', { timeout: 30_000 }, () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw?.stop());

  it('serves a vendored module', async () => {
    const res = await fetch(`${gw.url}/assets/vendor/preact.module.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/javascript/);
    expect((await res.text()).length).toBeGreaterThan(1000);
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'])('answers 404 (not 500) for the inherited name %s', async (name) => {
    const res = await fetch(`${gw.url}/assets/vendor/${name}`);
    expect(res.status).toBe(404);
    const body = await res.json();
    expect(body.error.code).toBe('not_found');
  });
});
