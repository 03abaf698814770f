import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, fixture, startGateway, tempDir, type TestGateway } from '../support/gateway.ts';
import { errorPaths, expectError } from '../support/error-shape.ts';
import { startReceiver } from '../support/receiver.ts';

/** GET /api/v1/mappings and POST /api/v1/mappings/preview over a real gateway. */

/** A template whose third line has a stray "]" at column 8. */
const BROKEN_TEMPLATE = '{\n  "a": data.call.id,\n  "b": ]\n}\n';

let gw: TestGateway;
let mappingsDir: string;
const keys = { read: '', ingest: '' };
/** The id of a call.ended event stored by the gateway. */
let storedEventId = '';

beforeAll(async () => {
  mappingsDir = tempDir('sluice-mappings-');
  fs.cpSync(path.join(REPO_ROOT, 'mappings'), mappingsDir, { recursive: true });
  fs.writeFileSync(path.join(mappingsDir, 'broken.jsonata'), BROKEN_TEMPLATE);
  gw = await startGateway({ SLUICE_MAPPINGS_DIR: mappingsDir, SLUICE_TEMPLATE_TIMEOUT_MS: '100' });
  for (const role of ['read', 'ingest'] as const) {
    const res = await gw.api('POST', '/api/v1/keys', { role });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    keys[role] = res.body.key;
  }
  storedEventId = `evt_preview_${process.pid}_${Date.now().toString(36)}`;
  const stored = { ...fixture('call.ended'), id: storedEventId };
  stored.data.call.id = 'call_stored_1';
  const res = await gw.api('POST', '/api/v1/events', stored, keys.ingest);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
});

afterAll(async () => {
  await gw?.stop();
  if (mappingsDir) fs.rmSync(mappingsDir, { recursive: true, force: true });
});

const preview = (body: unknown, key = keys.read) => gw.api('POST', '/api/v1/mappings/preview', body, key);

describe('GET /api/v1/mappings', () => {
  it('lists every template by name, nested ones included, with its source and examples', async () => {
    const res = await gw.api('GET', '/api/v1/mappings', undefined, keys.read);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const byName = new Map<string, any>(res.body.data.map((m: any) => [m.name, m]));
    expect([...byName.keys()]).toEqual(expect.arrayContaining(['call-summary', 'signal-alert', 'include-recording', 'slack/default', 'pagerduty/default', 'broken']));

    const summary = byName.get('call-summary');
    expect(summary.source).toBe(fs.readFileSync(path.join(mappingsDir, 'call-summary.jsonata'), 'utf8'));
    expect(summary.examples).toEqual(JSON.parse(fs.readFileSync(path.join(mappingsDir, 'call-summary.examples.json'), 'utf8')));
    expect(summary).toMatchObject({ active: true });
    expect(summary.error).toBeUndefined();
    expect(summary.loaded_at).toMatch(/^\d{4}-\d{2}-\d{2}T/);

    const slack = byName.get('slack/default');
    expect(slack.source).toBe(fs.readFileSync(path.join(mappingsDir, 'slack/default.jsonata'), 'utf8'));
    expect(slack.examples.length).toBeGreaterThan(0);
    expect(slack.active).toBe(true);
  });

  it('shows a template that fails to compile with its file, line, column and token', async () => {
    const res = await gw.api('GET', '/api/v1/mappings', undefined, keys.read);
    const broken = res.body.data.find((m: any) => m.name === 'broken');
    expect(broken).toMatchObject({
      source: BROKEN_TEMPLATE,
      examples: [],
      active: false,
      loaded_at: null,
      error: { file: 'broken.jsonata', code: 'template_syntax_error', line: 3, column: 8, token: ']' },
    });
    expect(broken.error.message).toContain('line 3, column 8');
  });

  it('is refused to an ingest key and to a request without a key', async () => {
    expectError(await gw.api('GET', '/api/v1/mappings', undefined, keys.ingest), 403);
    expectError(await gw.api('GET', '/api/v1/mappings', undefined, null), 401);
  });
});

describe('POST /api/v1/mappings/preview', () => {
  it('renders a named template on an event given in the request', async () => {
    const res = await preview({ mapping: 'call-summary', event: fixture('call.ended') });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      mapping: 'call-summary',
      output: {
        id: 'evt_01HZX3K9Q2CALLENDED0001',
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
      },
    });
  });

  it('renders a nested template name', async () => {
    const res = await preview({ mapping: 'slack/default', event: fixture('call.ended') });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.mapping).toBe('slack/default');
    expect(res.body.output.blocks.length).toBeGreaterThan(0);
    expect(res.body.output.text).toContain('inbound');
  });

  it('renders an inline template', async () => {
    const res = await preview({ template: '{"call": data.call.id, "minutes": data.call.duration / 60}', event: fixture('call.ended') });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ mapping: 'inline', output: { call: 'call_abc123', minutes: 3 } });
  });

  it('renders an inline template on a stored event, by its id', async () => {
    const res = await preview({ template: '{"id": id, "event": event, "call": data.call.id}', event_id: storedEventId });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.output).toEqual({ id: storedEventId, event: 'call.ended', call: 'call_stored_1' });
  });

  it('answers 404 for a stored event that does not exist, naming it', async () => {
    const res = await preview({ template: 'id', event_id: 'evt_does_not_exist' });
    expectError(res, 404);
    expect(res.body.error.message).toBe('Event evt_does_not_exist was not found.');
  });

  it('shows a stored test send as the receiver got it, marked "test": true; other stored events are not', async () => {
    const receiver = await startReceiver();
    try {
      const sub = await gw.api('POST', '/api/v1/webhooks', { url: `${receiver.url}/hook`, events: ['call.ended'] });
      expect(sub.status, JSON.stringify(sub.body)).toBe(201);
      const sent = await gw.api('POST', `/api/v1/webhooks/${sub.body.id}/test`, { event: 'call.ended' });
      expect(sent.status, JSON.stringify(sent.body)).toBe(200);
      const received = JSON.parse(receiver.requests[0].body);
      expect(received.test).toBe(true);

      const res = await preview({ event_id: sent.body.event_id });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.output).toEqual(received);
      expect((await preview({ template: '$exists(test)', event_id: storedEventId })).body.output).toBe(false);
    } finally {
      await receiver.close();
    }
  });

  it('returns the envelope as is when neither template nor mapping is given', async () => {
    const event = fixture('signal.frustration_spike');
    const res = await preview({ event });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ mapping: null, output: event });
  });

  it('binds $subscription when a subscription id is given', async () => {
    const created = await gw.api('POST', '/api/v1/webhooks', {
      url: 'http://127.0.0.1:9/hook',
      events: ['call.ended'],
      description: 'CRM sync',
      retry: { schedule: ['1h'] },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const res = await preview({ template: '{"sub": $subscription.id, "about": $subscription.description}', event: fixture('call.ended'), subscription_id: created.body.id });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.output).toEqual({ sub: created.body.id, about: 'CRM sync' });
  });

  it("previews what a subscription sends: its connector's default template when it sets no mapping", async () => {
    const created = await gw.api('POST', '/api/v1/webhooks', {
      events: ['call.ended'],
      connector: 'slack',
      connector_options: { webhook_url: 'http://127.0.0.1:9/services/T0/B0/x' },
      retry: { schedule: ['1h'] },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const event = fixture('call.ended');
    const res = await preview({ event, subscription_id: created.body.id });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const direct = await preview({ event, mapping: 'slack/default', subscription_id: created.body.id });
    expect(res.body).toEqual({ mapping: 'slack/default', output: direct.body.output });
    expect(res.body.output).toHaveProperty('blocks');
  });

  it("previews a subscription's own mapping when the request names none", async () => {
    const created = await gw.api('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['call.ended'], mapping: 'call-summary', retry: { schedule: ['1h'] } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const res = await preview({ event: fixture('call.ended'), subscription_id: created.body.id });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.mapping).toBe('call-summary');
    expect(res.body.output.call_id).toBe(fixture('call.ended').data.call.id);
  });

  describe('with a filter', () => {
    it('says the filter matches', async () => {
      const res = await preview({ mapping: 'call-summary', event: fixture('call.ended'), filter: 'data.call.status = "completed"' });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.filter).toEqual({ source: 'data.call.status = "completed"', matches: true });
      expect(res.body.output.call_id).toBe('call_abc123');
    });

    it('says the filter does not match', async () => {
      const res = await preview({ event: fixture('call.ended'), filter: 'data.call.duration < 60' });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.filter).toEqual({ source: 'data.call.duration < 60', matches: false });
    });

    it('does not match on a missing field', async () => {
      const res = await preview({ event: fixture('call.ended'), filter: 'data.score < 60' });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.filter.matches).toBe(false);
    });

    it('matches membership with in', async () => {
      const res = await preview({ event: fixture('signal.frustration_spike'), filter: 'data.severity in ["high", "critical"]' });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.filter.matches).toBe(true);
    });

    it('refuses a filter that does not compile, with its position', async () => {
      const res = await preview({ event: fixture('call.ended'), filter: 'data.call.status = ' });
      expectError(res, 422, 'filter_syntax_error');
      expect(res.body.error.details[0]).toMatchObject({ line: 1 });
      expect(res.body.error.details[0].column).toBeTypeOf('number');
    });
  });

  describe('template errors', () => {
    it('reports a syntax error in a multi-line template with line, column and token', async () => {
      const res = await preview({ template: BROKEN_TEMPLATE, event: fixture('call.ended') });
      expectError(res, 422, 'template_syntax_error');
      expect(res.body.error.details[0]).toMatchObject({ line: 3, column: 8, token: ']' });
      expect(res.body.error.message).toContain('line 3, column 8');
    });

    it('reports a runtime error with its position', async () => {
      const res = await preview({ template: '{\n  "id": id,\n  "n": $number(data.call.status)\n}', event: fixture('call.ended') });
      expectError(res, 422, 'template_runtime_error');
      expect(res.body.error.details[0]).toMatchObject({ line: 3, column: expect.any(Number) });
      expect(res.body.error.details[0].message).toContain('Unable to cast value to a number');
    });

    it('refuses an undefined result', async () => {
      expectError(await preview({ template: 'data.nothing.here', event: fixture('call.ended') }), 422, 'template_undefined_result');
    });

    it('refuses a template name that does not exist', async () => {
      const res = await preview({ mapping: 'no-such-template', event: fixture('call.ended') });
      expectError(res, 422, 'mapping_not_found');
      expect(res.body.error.message).toContain('no-such-template');
    });

    it('refuses a template that never loaded, saying why', async () => {
      const res = await preview({ mapping: 'broken', event: fixture('call.ended') });
      expectError(res, 422, 'template_unavailable');
      expect(res.body.error.details[0]).toMatchObject({ file: 'broken.jsonata', line: 3, column: 8 });
    });

    it('stops a runaway template within a second', async () => {
      const started = performance.now();
      const res = await preview({ template: '($f := function($n){ $f($n+1) }; $f(0))', event: fixture('call.ended') });
      const elapsed = performance.now() - started;
      expectError(res, 422);
      expect(['template_timeout', 'template_depth_exceeded']).toContain(res.body.error.code);
      expect(elapsed).toBeLessThan(1_000);
    });

    it('stops runaway non-tail recursion within a second', async () => {
      const started = performance.now();
      const res = await preview({ template: '($f := function($n){ 1 + $f($n+1) }; $f(0))', event: fixture('call.ended') });
      const elapsed = performance.now() - started;
      expectError(res, 422);
      expect(['template_timeout', 'template_depth_exceeded']).toContain(res.body.error.code);
      expect(elapsed).toBeLessThan(1_000);
    });
  });

  describe('request validation', () => {
    it('names every unknown field and wrong type by its path', async () => {
      const res = await preview({ template: 42, mapping: 'call-summary', filter: ['x'], event: fixture('call.ended'), extra: true, color: 'red' });
      expectError(res, 422, 'validation_failed');
      expect(errorPaths(res)).toEqual(expect.arrayContaining(['$.extra', '$.color', '$.template', '$.filter', '$.mapping']));
    });

    it('takes a null template as no template', async () => {
      const res = await preview({ template: null, mapping: 'call-summary', event: fixture('call.ended') });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.mapping).toBe('call-summary');
    });

    it('requires an event or an event id', async () => {
      const res = await preview({ mapping: 'call-summary' });
      expectError(res, 422);
      expect(errorPaths(res)).toEqual(['$.event']);
    });

    it('requires the event to be an object', async () => {
      const res = await preview({ mapping: 'call-summary', event: 'call.ended' });
      expectError(res, 422);
      expect(errorPaths(res)).toEqual(['$.event']);
      expect(res.body.error.details[0].message).toBe('must be an event envelope object {event, id, timestamp, data}');
    });

    it('requires a JSON object body', async () => {
      const res = await preview([1, 2]);
      expectError(res, 422);
      expect(errorPaths(res)).toEqual(['$']);
    });

    it('is open to a read key, refused to an ingest key', async () => {
      expect((await preview({ template: 'id', event: fixture('call.ended') }, keys.read)).status).toBe(200);
      expectError(await preview({ template: 'id', event: fixture('call.ended') }, keys.ingest), 403);
    });
  });
});
