import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDir, waitFor, type TestGateway } from '../support/gateway.ts';
import { expectError } from '../support/error-shape.ts';
import {
  createSubscription,
  deliveryFor,
  eventFrom,
  gatewayForTest,
  header,
  postEvent,
  receiverForTest,
  sentinelArrives,
  waitForDelivery,
} from './delivery-helpers.ts';

/**
 * Mapping templates and filters end to end: a real gateway renders each delivery with the
 * subscription's template, fails it (without sending) when the template fails on the event,
 * reloads edited template files, and filters events at ingest.
 */

/** Retries available but fast: a template failure must not use them. */
const FAST = { schedule: ['0s', '50ms', '50ms'] };


/** A mappings directory of these files for this test only, removed when the test ends. */
function mappingsDirForTest(files: Record<string, string>): string {
  const dir = tempDir('sluice-mappings-');
  for (const [name, text] of Object.entries(files)) writeTemplate(dir, name, text);
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeTemplate(dir: string, name: string, text: string): void {
  const file = path.join(dir, `${name}.jsonata`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

/** A gateway serving (and watching) this mappings directory. */
function watchingGateway(dir: string, env: Record<string, string> = {}): Promise<TestGateway> {
  return gatewayForTest({ SLUICE_MAPPINGS_DIR: dir, SLUICE_WATCH_MAPPINGS: 'true', ...env });
}

/** Polls GET /api/v1/mappings until the named template satisfies `check`. */
async function waitForMapping(gw: TestGateway, name: string, check: (m: Record<string, any>) => boolean): Promise<Record<string, any>> {
  let last: unknown;
  try {
    return await waitFor(async () => {
      const res = await gw.api('GET', '/api/v1/mappings');
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      last = res.body.data.find((m: any) => m.name === name);
      return last && check(last as Record<string, any>) ? (last as Record<string, any>) : undefined;
    }, 5_000, `mapping ${name}`);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(last)}`);
  }
}

/** The JSON bodies the receiver got, in order. */
const bodies = (receiver: { requests: { body: string }[] }) => receiver.requests.map((r) => JSON.parse(r.body));

describe('a subscription with a named template', () => {
  it('delivers the mapped body, exactly', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.*'], mapping: 'call-summary', retry: FAST });
    const event = eventFrom('call.ended');
    const res = await gw.api('POST', '/api/v1/events', event);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const delivery = await waitForDelivery(gw, deliveryFor(res.body, sub.id));
    expect(delivery.status).toBe('delivered');
    expect(receiver.requests).toHaveLength(1);
    expect(header(receiver.requests[0].headers, 'content-type')).toBe('application/json');
    expect(header(receiver.requests[0].headers, 'user-agent')).toBe('Sluice-Webhooks/0.1');
    expect(JSON.parse(receiver.requests[0].body)).toEqual({
      id: event.id,
      event: 'call.ended',
      timestamp: '2026-03-15T14:30:00Z',
      call_id: 'call_abc123',
      direction: 'inbound',
      status: 'completed',
      duration_seconds: 180,
      duration: '3m',
      assistant: 'Customer Support',
      summary: 'Customer inquired about order status',
      recording_url: 'https://storage.example.com/recordings/call_abc123.mp3',
    });
    // The attempt logs the body as sent.
    expect(delivery.attempts[0].request.body).toBe(receiver.requests[0].body);
  });
});

describe('a subscription without a mapping', () => {
  it('delivers the envelope as is to a webhook', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], retry: FAST });
    const event = eventFrom('call.ended');
    const res = await gw.api('POST', '/api/v1/events', event);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect((await waitForDelivery(gw, deliveryFor(res.body, sub.id))).status).toBe('delivered');
    expect(bodies(receiver)).toEqual([event]);
  });

  it('uses the connector\'s default template when the mapping is empty', async () => {
    const gw = await gatewayForTest();
    const slack = await receiverForTest(() => ({ status: 200, body: 'ok' }));
    const sub = await createSubscription(gw, {
      connector: 'slack',
      connector_options: { webhook_url: `${slack.url}/services/T0001/B0001/abcdefghijklmnop` },
      events: ['call.ended'],
      mapping: '',
      retry: FAST,
    });
    expect((await waitForDelivery(gw, deliveryFor(await postEvent(gw), sub.id))).status).toBe('delivered');
    const [body] = bodies(slack);
    expect(body.blocks.length).toBeGreaterThan(0);
    expect(body.data).toBeUndefined();
  });
});

describe('a template that fails on an event', () => {
  it('fails the delivery after one attempt without sending, then delivers on replay once the file is fixed', async () => {
    const dir = mappingsDirForTest({ fragile: '{\n  "id": id,\n  "call": $error("boom")\n}\n' });
    const gw = await watchingGateway(dir);
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], mapping: 'fragile', retry: FAST });
    const id = deliveryFor(await postEvent(gw), sub.id);

    const failed = await waitForDelivery(gw, id);
    expect(failed).toMatchObject({ status: 'failed', attempt_count: 1, next_attempt_at: null, last_status_code: null });
    expect(failed.attempts).toHaveLength(1);
    const [attempt] = failed.attempts;
    expect(attempt).toMatchObject({ outcome: 'fail', response: null });
    expect(attempt.request.body).toBeNull();
    expect(attempt.error).toContain('template_runtime_error');
    expect(attempt.error).toContain('boom');
    // `  "call": $error("boom")`: the position points at the function name, after its "$".
    expect(attempt.error).toContain('line 3, column 12');
    expect(failed.last_error).toContain('template_runtime_error');
    // A later delivery to the same receiver, due after the whole retry schedule, has arrived:
    // nothing was, or will be, sent for the failed one.
    await sentinelArrives(gw, receiver);
    expect(receiver.requests.filter((r) => r.url === '/hook')).toHaveLength(0);
    expect((await waitForDelivery(gw, id)).attempt_count).toBe(1);

    const fixed = '{\n  "id": id,\n  "call": data.call.id,\n  "version": 2\n}\n';
    writeTemplate(dir, 'fragile', fixed);
    await waitForMapping(gw, 'fragile', (m) => m.source === fixed && !m.error);

    const replay = await gw.api('POST', `/api/v1/deliveries/${id}/replay`);
    expect(replay.status, JSON.stringify(replay.body)).toBe(202);
    const delivered = await waitForDelivery(gw, id, (d) => d.status === 'delivered');
    expect(delivered.attempts.map((a: any) => [a.chain, a.number, a.outcome])).toEqual([
      [1, 1, 'fail'],
      [2, 1, 'success'],
    ]);
    expect(bodies({ requests: receiver.requests.filter((r) => r.url === '/hook') })).toEqual([{ id: failed.event_id, call: 'call_abc123', version: 2 }]);
  });

  it('fails on an undefined result and never sends a half-built body, while other events still map', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    // call.failed has no recording: the template gives nothing for it.
    const sub = await createSubscription(gw, {
      url: `${receiver.url}/hook`,
      events: ['call.ended', 'call.failed'],
      mapping: 'data.recording.{"url": url, "seconds": duration}',
      retry: FAST,
    });
    const withoutRecording = deliveryFor(await postEvent(gw, 'call.failed'), sub.id);
    const failed = await waitForDelivery(gw, withoutRecording);
    expect(failed).toMatchObject({ status: 'failed', attempt_count: 1 });
    expect(failed.attempts[0].error).toContain('template_undefined_result');
    expect(failed.attempts[0].request.body).toBeNull();

    const withRecording = deliveryFor(await postEvent(gw, 'call.ended'), sub.id);
    expect((await waitForDelivery(gw, withRecording)).status).toBe('delivered');
    expect(bodies(receiver)).toEqual([{ url: 'https://storage.example.com/recordings/call_abc123.mp3', seconds: 180 }]);
  });

  it('stops a runaway template at its time limit and fails the delivery without sending', async () => {
    const dir = mappingsDirForTest({ runaway: '($f := function($n){ $f($n+1) }; $f(0))' });
    const gw = await gatewayForTest({ SLUICE_MAPPINGS_DIR: dir, SLUICE_TEMPLATE_TIMEOUT_MS: '100' });
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], mapping: 'runaway', retry: FAST });
    const started = Date.now();
    const failed = await waitForDelivery(gw, deliveryFor(await postEvent(gw), sub.id));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(failed).toMatchObject({ status: 'failed', attempt_count: 1 });
    expect(failed.attempts[0].error).toMatch(/template_timeout|template_depth_exceeded/);
    expect(receiver.requests).toHaveLength(0);
  });
});

describe('hot reload', () => {
  it('delivers the edited shape next, and keeps the last good version through a broken edit', async () => {
    const v1 = '{"shape": 1, "id": id}';
    const dir = mappingsDirForTest({ 'team/live': v1 });
    const gw = await watchingGateway(dir);
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], mapping: 'team/live', retry: FAST });

    const first = await postEvent(gw);
    expect((await waitForDelivery(gw, deliveryFor(first, sub.id))).status).toBe('delivered');

    const v2 = '{\n  "shape": 2,\n  "id": id,\n  "call": data.call.id\n}\n';
    writeTemplate(dir, 'team/live', v2);
    await waitForMapping(gw, 'team/live', (m) => m.source === v2 && !m.error);
    const second = await postEvent(gw);
    expect((await waitForDelivery(gw, deliveryFor(second, sub.id))).status).toBe('delivered');

    // A broken edit: "}" where a value belongs, on line 3.
    const broken = '{\n  "shape": 3,\n  "id": }\n';
    writeTemplate(dir, 'team/live', broken);
    const listed = await waitForMapping(gw, 'team/live', (m) => m.error?.line === 3);
    expect(listed).toMatchObject({
      source: v2,
      active: true,
      error: { file: 'team/live.jsonata', code: 'template_syntax_error', line: 3, column: 9, token: '}' },
    });
    const third = await postEvent(gw);
    expect((await waitForDelivery(gw, deliveryFor(third, sub.id))).status).toBe('delivered');

    expect(bodies(receiver)).toEqual([
      { shape: 1, id: first.id },
      { shape: 2, id: second.id, call: 'call_abc123' },
      { shape: 2, id: third.id, call: 'call_abc123' },
    ]);
  });
});

describe('saving a subscription', () => {
  it('refuses a mapping or filter that does not compile, with line and column', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const res = await gw.api('POST', '/api/v1/webhooks', {
      url: `${receiver.url}/hook`,
      events: ['call.ended'],
      mapping: '{\n  "a": data.call.id,\n  "b": ]\n}',
      filter: 'data.call.status = = "completed"',
    });
    expectError(res, 422);
    const byPath = new Map<string, any>(res.body.error.details.map((d: any) => [d.path, d]));
    expect(byPath.get('$.mapping')).toMatchObject({ line: 3, column: 8, token: ']' });
    expect(byPath.get('$.filter')).toMatchObject({ line: 1, column: expect.any(Number) });
    expect((await gw.api('GET', '/api/v1/webhooks')).body.data).toEqual([]);
  });

  it('refuses a patch with a broken mapping or filter and keeps the subscription as it was', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.ended'], mapping: 'call-summary', filter: 'data.call.duration > 60' });

    const badMapping = await gw.api('PATCH', `/api/v1/webhooks/${sub.id}`, { mapping: '(\n  $x := data.call.id;\n  { "x": $x \n' });
    expectError(badMapping, 422);
    expect(badMapping.body.error.details[0]).toMatchObject({ path: '$.mapping', line: expect.any(Number), column: expect.any(Number) });

    const badFilter = await gw.api('PATCH', `/api/v1/webhooks/${sub.id}`, { filter: 'data.score <' });
    expectError(badFilter, 422);
    expect(badFilter.body.error.details[0]).toMatchObject({ path: '$.filter', line: 1, column: expect.any(Number) });

    const unknownName = await gw.api('PATCH', `/api/v1/webhooks/${sub.id}`, { mapping: 'no-such-template' });
    expectError(unknownName, 422);
    expect(unknownName.body.error.details[0]).toMatchObject({ path: '$.mapping' });

    const current = await gw.api('GET', `/api/v1/webhooks/${sub.id}`);
    expect(current.body).toMatchObject({ mapping: 'call-summary', filter: 'data.call.duration > 60' });
  });
});

describe('filters at ingest', () => {
  it('creates deliveries only for the subscriptions whose filter matches', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    const create = (filter: string) => createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.*'], filter, retry: FAST });
    const completed = await create('data.call.status = "completed"');
    const failedOnly = await create('data.call.status = "failed"');
    const lowScore = await create('data.score < 60');

    const ended = await postEvent(gw, 'call.ended');
    expect(ended.deliveries.map((d) => d.subscription_id)).toEqual([completed.id]);
    const failed = await postEvent(gw, 'call.failed');
    expect(failed.deliveries.map((d) => d.subscription_id)).toEqual([failedOnly.id]);
    // No event has a score: the missing field never matches.
    expect([...ended.deliveries, ...failed.deliveries].some((d) => d.subscription_id === lowScore.id)).toBe(false);

    await waitForDelivery(gw, deliveryFor(ended, completed.id));
    await waitForDelivery(gw, deliveryFor(failed, failedOnly.id));
    expect(receiver.requests).toHaveLength(2);
  });

  it('treats a filter that fails on an event as no match, and keeps ingesting', async () => {
    const gw = await gatewayForTest();
    const receiver = await receiverForTest();
    // A failed call matches; on any other call $number("completed") is a runtime error.
    const sub = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.*'], filter: '$exists(data.error) ? true : $number(data.call.status) > 0', retry: FAST });
    const plain = await createSubscription(gw, { url: `${receiver.url}/hook`, events: ['call.*'], retry: FAST });

    const ended = await postEvent(gw, 'call.ended');
    expect(ended.deliveries.map((d) => d.subscription_id)).toEqual([plain.id]);
    await waitForDelivery(gw, deliveryFor(ended, plain.id));

    // The gateway is still up and the same filter runs on the next event.
    const failed = await postEvent(gw, 'call.failed');
    expect(failed.deliveries.map((d) => d.subscription_id).sort()).toEqual([sub.id, plain.id].sort());
    const health = await fetch(`${gw.url}/healthz`);
    expect(health.status).toBe(200);
  });
});

describe('template bindings', () => {
  it('renders $subscription and allow-listed $env variables, and nothing else from the environment', async () => {
    const saved = { region: process.env.SLUICE_TEST_REGION, master: process.env.SLUICE_MASTER_KEY };
    process.env.SLUICE_TEST_REGION = 'eu-west-1';
    process.env.SLUICE_MASTER_KEY = 'a-master-key-that-must-never-leave';
    onTestFinished(() => {
      for (const [name, value] of [['SLUICE_TEST_REGION', saved.region], ['SLUICE_MASTER_KEY', saved.master]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    });
    const gw = await gatewayForTest({ SLUICE_TEMPLATE_ENV: 'SLUICE_TEST_REGION' });
    const receiver = await receiverForTest();
    const sub = await createSubscription(gw, {
      url: `${receiver.url}/hook`,
      events: ['call.ended'],
      description: 'EU CRM',
      auth: { type: 'bearer', token: 'bearer-token-never-in-templates' },
      mapping: '{"region": $env("SLUICE_TEST_REGION"), "master": $env("SLUICE_MASTER_KEY"), "path": $env("PATH"), "sub": $subscription}',
      retry: FAST,
    });
    const delivery = await waitForDelivery(gw, deliveryFor(await postEvent(gw), sub.id));
    expect(delivery.status).toBe('delivered');
    expect(bodies(receiver)).toEqual([
      { region: 'eu-west-1', sub: { id: sub.id, description: 'EU CRM', connector: 'webhook', options: {} } },
    ]);
    expect(receiver.requests[0].body).not.toContain('bearer-token-never-in-templates');
  });
});
