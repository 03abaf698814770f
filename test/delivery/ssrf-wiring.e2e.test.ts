import type { LookupAddress } from 'node:dns';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Resolver } from '../../src/delivery/ssrf-lookup.ts';
import { expectError } from '../support/error-shape.ts';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { connectionCounter, createSubscription, deliveryFor, postEvent, receiverForTest, waitForDelivery } from './delivery-helpers.ts';

/**
 * The SSRF guard in the gateway's OWN wiring (src/app.ts): a fake resolver is injected into the
 * real gateway (createSluice's `resolve` option), so a name can be rebound to loopback between
 * the moment the destination is saved and the moment the worker connects. No second client is
 * built here: the delivery goes through the gateway's worker, HTTP client and connector.
 */

/** A resolver whose table the test changes while the gateway runs (DNS rebinding on cue). */
function rebindingResolver(initial: Record<string, string>) {
  const table = { ...initial };
  const asked: string[] = [];
  const resolve: Resolver = async (hostname) => {
    asked.push(hostname);
    const address = table[hostname];
    if (!address) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return [{ address, family: address.includes(':') ? 6 : 4 } satisfies LookupAddress];
  };
  return { resolve, table, asked };
}

/** A connection counter closed when the test ends. */
async function counterForTest() {
  const counter = await connectionCounter();
  onTestFinished(() => counter.close());
  return counter;
}

async function gateway(env: Record<string, string>, resolve: Resolver): Promise<TestGateway> {
  const gw = await startGateway(env, { resolve });
  onTestFinished(() => gw.stop());
  return gw;
}

describe('the SSRF guard as the gateway wires it (SLUICE_ALLOW_INSECURE_URLS=false)', { timeout: 30_000 }, () => {
  it('a name that resolved to a public address when saved, then rebinds to loopback, is refused at connect time: no connection, failed at once, reason recorded', async () => {
    const counter = await counterForTest();
    const dns = rebindingResolver({ 'rebind.test': '93.184.216.34' });
    const gw = await gateway({ SLUICE_ALLOW_INSECURE_URLS: 'false' }, dns.resolve);
    const sub = await createSubscription(gw, { url: `https://rebind.test:${counter.port}/hook`, events: ['call.ended'], retry: { schedule: ['0s', '50ms', '50ms'] } });
    // The create-time check asked the injected resolver (and found a public address).
    expect(dns.asked).toContain('rebind.test');

    dns.table['rebind.test'] = '127.0.0.1';
    const id = deliveryFor(await postEvent(gw), sub.id);
    const delivery = await waitForDelivery(gw, id, (d) => d.attempts.length >= 1);
    expect(delivery.attempts[0].error).toMatch(/refusing to connect to rebind\.test \(127\.0\.0\.1\): loopback/);
    expect(delivery.attempts[0].response).toBeNull();
    // An SSRF refusal is final: not retried.
    const final = await waitForDelivery(gw, id);
    expect(final.status).toBe('failed');
    expect(final.attempts).toHaveLength(1);
    expect(counter.connections).toBe(0);
  });

  it('a name resolving to a private address is refused when saved, through the same resolver', async () => {
    const dns = rebindingResolver({ 'internal.test': '10.0.0.5', 'metadata.test': '169.254.169.254' });
    const gw = await gateway({ SLUICE_ALLOW_INSECURE_URLS: 'false' }, dns.resolve);
    for (const host of ['internal.test', 'metadata.test']) {
      const res = await gw.api('POST', '/api/v1/webhooks', { url: `https://${host}/hook`, events: ['call.ended'] });
      expectError(res, 422, 'destination_forbidden');
      expect(res.body.error.details[0]).toMatchObject({ path: '$.url', host });
    }
  });
});

describe('the same wiring with insecure URLs allowed', { timeout: 30_000 }, () => {
  it('connects through the injected resolver (so the refusal above is the guard, not a resolver failure)', async () => {
    const receiver = await receiverForTest(() => ({ status: 204 }));
    const dns = rebindingResolver({ 'rebind.test': '127.0.0.1' });
    const gw = await gateway({}, dns.resolve);
    const sub = await createSubscription(gw, { url: `http://rebind.test:${receiver.port}/hook`, events: ['call.ended'] });
    const delivery = await waitForDelivery(gw, deliveryFor(await postEvent(gw), sub.id));
    expect(delivery.status).toBe('delivered');
    expect(receiver.requests).toHaveLength(1);
    expect(receiver.requests[0].headers.host).toBe(`rebind.test:${receiver.port}`);
  });

  it('still refuses a name that rebinds to the cloud metadata address at connect time', async () => {
    const counter = await counterForTest();
    const dns = rebindingResolver({ 'meta.test': '127.0.0.1' });
    const gw = await gateway({}, dns.resolve);
    const sub = await createSubscription(gw, { url: `http://meta.test:${counter.port}/hook`, events: ['call.ended'] });
    dns.table['meta.test'] = '169.254.169.254';
    const delivery = await waitForDelivery(gw, deliveryFor(await postEvent(gw), sub.id));
    expect(delivery.status).toBe('failed');
    expect(delivery.attempts[0].error).toMatch(/refusing to connect to meta\.test \(169\.254\.169\.254\)/);
    expect(counter.connections).toBe(0);
  });
});
