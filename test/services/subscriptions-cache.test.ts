import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../support/gateway.ts';

/** The runtime subscription cache over the gateway's real storage (a round trip to its storage thread). */
describe('SubscriptionService cache', () => {
  let gw: TestGateway;
  let loads = 0;

  beforeAll(async () => {
    gw = await startGateway();
    const storage = gw.sluice.storage;
    const list = storage.listSubscriptions.bind(storage);
    storage.listSubscriptions = () => {
      loads += 1;
      return list();
    };
  });
  afterAll(() => gw?.stop());

  it('callers arriving while it loads share one load', async () => {
    gw.sluice.subscriptions.invalidate();
    const before = loads;
    const maps = await Promise.all(Array.from({ length: 5 }, () => gw.sluice.subscriptions.runtimeAll()));
    expect(loads - before).toBe(1);
    expect(new Set(maps).size).toBe(1);
  });

  it('a load overtaken by invalidate() is not kept: the next caller loads again and sees the change', async () => {
    gw.sluice.subscriptions.invalidate();
    const stale = gw.sluice.subscriptions.runtimeAll();
    const created = await gw.api('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['call.*'] });
    expect(created.status).toBe(201);
    await stale;
    const before = loads;
    const fresh = await gw.sluice.subscriptions.runtimeAll();
    expect(loads - before).toBe(1);
    expect(fresh.has(created.body.id)).toBe(true);
  });
});
