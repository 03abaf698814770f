/**
 * The attacks of the sandbox issue, against a real gateway process: a template, a filter or a
 * preview, whoever wrote it and whatever event it meets, cannot crash the gateway, stall it,
 * or hold up another subscription's deliveries by more than the evaluation time limit.
 *
 * The gateway runs with a 1 s limit, and every latency is checked against that limit: a
 * template evaluated on the event loop would hold it for the whole runaway call (many seconds
 * for the ones below), while a loaded test machine stays well under a second.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, tempDir, waitFor } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';
import { callApi, killGateways, spawnGateway, stopGateway, watchHealth, type GatewayProcess } from '../support/gateway-process.ts';

const LIMIT_MS = 1_000;
/** A native call jsonata cannot interrupt: $distinct compares every pair (~10^9 of them). */
const NATIVE_RUNAWAY = '$distinct([1..90000])';
/**
 * 60,000 flat strings of 2 KB ($uppercase copies what $pad builds lazily): within every item and
 * size limit, but 120 MB in all, past a thread's heap.
 */
const MEMORY_BOMB = '{"x": $count([1..60000].$uppercase($pad("", 2000, "x") & $string($)))}';

let seq = 0;
const callEnded = () => ({ ...fixture('call.ended'), id: `evt_iso_${process.pid}_${++seq}` });
const auditEvent = (userAgent: string) => ({ ...fixture('call.ended'), event: 'audit.log.event', id: `evt_audit_${process.pid}_${++seq}`, data: { audit_id: 'aud_1', actor: { type: 'user', id: 'usr_1' }, action: 'assistant.updated', target: { type: 'assistant', id: 'asst_1' }, user_agent: userAgent, occurred_at: '2026-04-27T08:59:58Z' } });

describe('templates and filters cannot hurt the gateway (a real gateway process)', () => {
  let gw: GatewayProcess;
  let rx: Awaited<ReturnType<typeof startReceiver>>;
  let readKey: string;
  let healthySub: string;

  beforeAll(async () => {
    rx = await startReceiver();
    gw = await spawnGateway(tempDir(), { SLUICE_TEMPLATE_TIMEOUT_MS: String(LIMIT_MS) });
    const key = await callApi(gw, 'POST', '/api/v1/keys', { role: 'read', name: 'reader' });
    readKey = key.body.key;
    const healthy = await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${rx.url}/healthy`, events: ['call.ended'], mapping: '{"call": data.call.id}', description: 'healthy' });
    expect(healthy.status).toBe(201);
    healthySub = healthy.body.id;
  }, 60_000);

  afterAll(async () => {
    if (gw) await stopGateway(gw);
    killGateways();
    await rx?.close();
  });

  /** Sends a call.ended and waits for the healthy subscription to receive it. */
  async function healthyRoundTrip(): Promise<void> {
    const event = callEnded();
    const posted = await callApi(gw, 'POST', '/api/v1/events', event);
    expect(posted.status).toBe(202);
    await waitFor(() => rx.requests.some((r) => r.url === '/healthy' && JSON.parse(r.body).call === event.data.call.id) || undefined, 10_000, 'the healthy delivery');
  }

  /** Posts an event; returns the id of its delivery to the given subscription. */
  async function postFor(event: unknown, subscriptionId: string): Promise<string> {
    const posted = await callApi(gw, 'POST', '/api/v1/events', event);
    expect(posted.status).toBe(202);
    return posted.body.deliveries.find((d: { subscription_id: string }) => d.subscription_id === subscriptionId).id;
  }

  async function finalDelivery(deliveryId: string) {
    return waitFor(async () => {
      const d = (await callApi(gw, 'GET', `/api/v1/deliveries/${deliveryId}`)).body;
      return ['failed', 'delivered'].includes(d.status) ? d : undefined;
    }, 20_000, 'the delivery to finish');
  }

  it('a read-key preview that builds a huge string gets a 422, and the process lives on', async () => {
    const health = watchHealth(gw.url);
    const res = await callApi(gw, 'POST', '/api/v1/mappings/preview', { template: '$length($pad("", 30000000))', event: {} }, readKey);
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('template_size_exceeded');
    const bomb = await callApi(gw, 'POST', '/api/v1/mappings/preview', { template: MEMORY_BOMB, event: {} }, readKey);
    expect(bomb.status).toBe(422);
    // Out of memory, or out of time first on a loaded machine: either way only the evaluator died.
    expect(['template_memory_exceeded', 'template_timeout']).toContain(bomb.body.error.code);
    const { max, failures } = await health.stop();
    expect(failures).toBe(0);
    expect(max).toBeLessThan(LIMIT_MS);
    expect(gw.child.exitCode).toBeNull();
    await healthyRoundTrip();
  }, 60_000);

  it('a read-key preview of a catastrophic regular expression answers at once', async () => {
    const res = await callApi(gw, 'POST', '/api/v1/mappings/preview', { template: `$match("${'a'.repeat(40)}!", /^(a+)+$/)`, event: {} }, readKey);
    // RE2 semantics: no match, found in linear time. V8's backtracking engine needed 4.7 s for
    // 30 a's; for 40 it would need over an hour, far past this test's timeout.
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('template_undefined_result');
    const refused = await callApi(gw, 'POST', '/api/v1/mappings/preview', { template: '$match(data.s, /(a+)\\1/)', event: { data: { s: 'aa' } } }, readKey);
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('template_syntax_error');
    expect(refused.body.error.details[0]).toMatchObject({ line: 1, column: 16 });
  }, 30_000);

  it('a read-key preview cannot read $env; an admin one can', async () => {
    const gwEnv = await spawnGateway(tempDir(), { SLUICE_TEMPLATE_ENV: 'REGION', REGION: 'eu-west', SLUICE_TEMPLATE_TIMEOUT_MS: String(LIMIT_MS) });
    try {
      const reader = (await callApi(gwEnv, 'POST', '/api/v1/keys', { role: 'read', name: 'reader' })).body.key;
      const asReader = await callApi(gwEnv, 'POST', '/api/v1/mappings/preview', { template: '{"region": $env("REGION"), "n": 1}', event: {} }, reader);
      expect(asReader.status, JSON.stringify(asReader.body)).toBe(200);
      expect(asReader.body.output).toEqual({ n: 1 });
      const asAdmin = await callApi(gwEnv, 'POST', '/api/v1/mappings/preview', { template: '{"region": $env("REGION"), "n": 1}', event: {} });
      expect(asAdmin.body.output).toEqual({ region: 'eu-west', n: 1 });
    } finally {
      await stopGateway(gwEnv);
    }
  }, 60_000);

  it('a subscription whose template builds a huge string fails its delivery, once, with the reason', async () => {
    const bad = await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${rx.url}/pad`, events: ['call.ended'], mapping: '{"x": $pad("", 60000000)}', description: 'pad bomb' });
    expect(bad.status).toBe(201);
    const health = watchHealth(gw.url);
    const delivery = await finalDelivery(await postFor(callEnded(), bad.body.id));
    expect(delivery.status).toBe('failed');
    expect(delivery.attempts).toHaveLength(1);
    expect(delivery.attempts[0].error).toMatch(/template_size_exceeded.*longer than its limit/);
    await healthyRoundTrip();
    const { max, failures } = await health.stop();
    expect(failures).toBe(0);
    expect(max).toBeLessThan(LIMIT_MS);
    expect(rx.requests.some((r) => r.url === '/pad')).toBe(false);
    await callApi(gw, 'DELETE', `/api/v1/webhooks/${bad.body.id}`);
  }, 60_000);

  it('a template of the bounded (inline) kind meeting an event too big for it is sent to an evaluator, not run on the event loop', async () => {
    // Paths only, so it may run inline; but 200 paths over 15,000 items is 3 million steps and a
    // 36 MB result: far past the inline budget (paths × event size), so an evaluator gets it,
    // and its limits (time or memory) end it there. With a 5 s time limit, the same work on the event loop would
    // hold it for seconds (the limit stops it there too, but only at 5 s).
    const slowLimit = 5_000;
    const gwWide = await spawnGateway(tempDir(), { SLUICE_TEMPLATE_TIMEOUT_MS: String(slowLimit) });
    try {
      const mapping = `{${Array.from({ length: 200 }, (_, i) => `"a${i}": data.items.name`).join(', ')}}`;
      const sub = await callApi(gwWide, 'POST', '/api/v1/webhooks', { url: `${rx.url}/wide`, events: ['call.ended'], mapping, description: 'wide' });
      const small = await callApi(gwWide, 'POST', '/api/v1/webhooks', { url: `${rx.url}/narrow`, events: ['call.ended'], mapping: '{"call": data.call.id}', description: 'narrow' });
      expect(sub.status).toBe(201);
      expect(small.status).toBe(201);
      const big = callEnded();
      big.data = { ...big.data, items: Array.from({ length: 15_000 }, (_, i) => ({ name: `item-${String(i).padStart(6, '0')}` })) };
      const health = watchHealth(gwWide.url);
      const posted = await callApi(gwWide, 'POST', '/api/v1/events', big);
      expect(posted.status).toBe(202);
      const wideId = posted.body.deliveries.find((d: { subscription_id: string }) => d.subscription_id === sub.body.id).id;
      // The same event's other subscription is delivered meanwhile.
      await waitFor(() => rx.requests.find((r) => r.url === '/narrow' && JSON.parse(r.body).call === big.data.call.id), 10_000, 'the narrow delivery');
      const delivery = await waitFor(async () => {
        const d = (await callApi(gwWide, 'GET', `/api/v1/deliveries/${wideId}`)).body;
        return d.status === 'failed' || d.status === 'delivered' ? d : undefined;
      }, 30_000, 'the wide delivery to finish');
      const { max, failures } = await health.stop();
      expect(delivery.status).toBe('failed');
      expect(delivery.attempts[0].error).toMatch(/template_(timeout|size_exceeded|memory_exceeded)/);
      expect(failures).toBe(0);
      expect(max).toBeLessThan(LIMIT_MS);
      expect(rx.requests.some((r) => r.url === '/wide')).toBe(false);
    } finally {
      await stopGateway(gwWide);
    }
  }, 90_000);

  it('a catastrophic regular expression in a mapping runs in linear time and the delivery goes out', async () => {
    const sub = await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${rx.url}/ua`, events: ['audit.log.event'], mapping: '{"ua": $contains(data.user_agent, /^(a+)+$/)}', description: 'regex' });
    expect(sub.status).toBe(201);
    const health = watchHealth(gw.url);
    const event = auditEvent(`${'a'.repeat(29)}!`);
    expect((await callApi(gw, 'POST', '/api/v1/events', event)).status).toBe(202);
    await waitFor(() => rx.requests.find((r) => r.url === '/ua'), 10_000, 'the regex delivery');
    expect(JSON.parse(rx.requests.find((r) => r.url === '/ua')!.body)).toEqual({ ua: false });
    await healthyRoundTrip();
    const { max } = await health.stop();
    expect(max).toBeLessThan(LIMIT_MS);
  }, 60_000);

  it('a template stuck in a native call or out of memory fails its deliveries, is suspended, and says why; others are untouched', async () => {
    const ops = await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${rx.url}/ops`, events: ['sluice.delivery.failed'], description: 'ops' });
    expect(ops.status).toBe(201);
    const stuck = await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${rx.url}/stuck`, events: ['call.ended'], mapping: NATIVE_RUNAWAY, description: 'stuck' });
    const bomb = await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${rx.url}/bomb`, events: ['call.ended'], mapping: MEMORY_BOMB, description: 'bomb' });
    expect(stuck.status).toBe(201);
    expect(bomb.status).toBe(201);
    const health = watchHealth(gw.url);
    const posted: { stuck: string; bomb: string }[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await callApi(gw, 'POST', '/api/v1/events', callEnded());
      expect(res.status).toBe(202);
      const idFor = (sub: string) => res.body.deliveries.find((d: { subscription_id: string }) => d.subscription_id === sub).id;
      posted.push({ stuck: idFor(stuck.body.id), bomb: idFor(bomb.body.id) });
    }
    // Meanwhile, the healthy subscription's deliveries keep arriving.
    for (let i = 0; i < 3; i++) await healthyRoundTrip();
    const reasons: string[] = [];
    for (const ids of posted) {
      const stuckDelivery = await finalDelivery(ids.stuck);
      expect(stuckDelivery.status, JSON.stringify(stuckDelivery)).toBe('failed');
      expect(stuckDelivery.attempts).toHaveLength(1);
      reasons.push(stuckDelivery.attempts[0].error);
      const bombDelivery = await finalDelivery(ids.bomb);
      expect(bombDelivery.status, JSON.stringify(bombDelivery)).toBe('failed');
      expect(bombDelivery.attempts[0].error).toMatch(/template_(memory_exceeded|timeout|suspended)/);
    }
    expect(reasons[0]).toMatch(/template_timeout.*time limit of 1000 ms/);
    // After three limit failures the template is suspended: later deliveries fail at once, saying so.
    expect(reasons.at(-1)).toMatch(/template_suspended.*suspended until/);
    const { max, failures } = await health.stop();
    expect(failures).toBe(0);
    expect(max).toBeLessThan(LIMIT_MS);
    // The operational event tells subscribers why.
    const opsEvent = await waitFor(() => rx.requests.filter((r) => r.url === '/ops').map((r) => JSON.parse(r.body)).find((e) => e.data.subscription_id === stuck.body.id && /suspended/.test(e.data.last_error)), 10_000, 'a sluice.delivery.failed event about the suspension');
    expect(opsEvent.data.last_error).toMatch(/template_suspended/);
    expect(gw.child.exitCode).toBeNull();
  }, 120_000);

  it('a filter that runs into its limit does not match, and does not hold up ingest', async () => {
    const slow = await callApi(gw, 'POST', '/api/v1/webhooks', { url: `${rx.url}/slowfilter`, events: ['call.ended'], filter: `$count(${NATIVE_RUNAWAY}) > 0`, description: 'slow filter' });
    expect(slow.status).toBe(201);
    const health = watchHealth(gw.url);
    // 40 concurrent ingests that meet the bad filter, and unrelated ingests meanwhile.
    const flood = Promise.all(Array.from({ length: 40 }, () => callApi(gw, 'POST', '/api/v1/events', callEnded())));
    const unrelated: number[] = [];
    for (let i = 0; i < 10; i++) {
      const started = performance.now();
      const res = await callApi(gw, 'POST', '/api/v1/events', auditEvent('Mozilla/5.0'));
      unrelated.push(performance.now() - started);
      expect(res.status).toBe(202);
    }
    const results = await flood;
    expect(results.every((r) => r.status === 202)).toBe(true);
    // None of the 40 was delivered to the slow filter's subscription: a failing filter does not match.
    for (const r of results) expect(r.body.deliveries.some((d: { subscription_id: string }) => d.subscription_id === slow.body.id)).toBe(false);
    expect(Math.max(...unrelated)).toBeLessThan(LIMIT_MS);
    const { max } = await health.stop();
    expect(max).toBeLessThan(LIMIT_MS);
    await callApi(gw, 'DELETE', `/api/v1/webhooks/${slow.body.id}`);
  }, 120_000);
});
