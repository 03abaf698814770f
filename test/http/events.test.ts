import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES_DIR, fixture, openDatabase, startGateway, waitFor, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';
import { errorPaths, expectError } from '../support/error-shape.ts';

const FIXTURE_NAMES = fs.readdirSync(FIXTURES_DIR).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, '')).sort();

/** The seed API's event names the catalog must cover (issue 2), besides the fixtures. */
const SEED_NAMES = [
  'call.received', 'call.started', 'call.ended', 'call.failed', 'call.qualified', 'evaluation.completed',
  'transcript.available', 'recording.ready', 'lead.created', 'lead.updated', 'agent.status_changed',
  'review.requested', 'review.received', 'audit.log.event',
];

let receiver: Awaited<ReturnType<typeof startReceiver>>;
/** No subscriptions: ingest alone. */
let plain: TestGateway;
/** Subscriptions on call.*, * and sluice.*, delivering to the receiver. */
let routed: TestGateway;
const subs: Record<'calls' | 'everything' | 'operational' | 'longCalls' | 'disabled', string> = { calls: '', everything: '', operational: '', longCalls: '', disabled: '' };

let seq = 0;
/** A fixture with a fresh id, so tests never collide on idempotency. */
function fresh(name: string, overrides: Record<string, unknown> = {}) {
  return { ...fixture(name), id: `evt_test_${process.pid}_${++seq}`, ...overrides };
}

/** A second connection per gateway: the gateway's own is in its storage thread. */
const connections = new Map<TestGateway, ReturnType<typeof openDatabase>>();
function db(gw: TestGateway): ReturnType<typeof openDatabase> {
  if (!connections.has(gw)) connections.set(gw, openDatabase(gw));
  return connections.get(gw)!;
}

function deliveryRows(gw: TestGateway, eventId: string): { id: string; subscription_id: string; status: string }[] {
  return db(gw).prepare('SELECT id, subscription_id, status FROM deliveries WHERE event_id = ? ORDER BY id').all(eventId) as never;
}

function countRows(gw: TestGateway, table: 'events' | 'deliveries'): number {
  return (db(gw).prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
}

beforeAll(async () => {
  receiver = await startReceiver();
  [plain, routed] = await Promise.all([startGateway(), startGateway()]);
  const create = async (body: Record<string, unknown>) => {
    const res = await routed.api('POST', '/api/v1/webhooks', { url: `${receiver.url}/hook`, ...body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.id as string;
  };
  subs.calls = await create({ events: ['call.*'], description: 'calls' });
  subs.everything = await create({ events: ['*'], description: 'everything' });
  subs.operational = await create({ events: ['sluice.*'], description: 'operational' });
  subs.longCalls = await create({ events: ['call.ended'], filter: 'data.call.duration > 100', description: 'long calls' });
  subs.disabled = await create({ events: ['*'], enabled: false, description: 'disabled' });
});

afterAll(async () => {
  for (const connection of connections.values()) connection.close();
  await Promise.all([plain?.stop(), routed?.stop()]);
  await receiver?.close();
});

describe('POST /api/v1/events', () => {
  it.each(FIXTURE_NAMES)('accepts the %s fixture with 202', async (name) => {
    const event = fixture(name);
    const res = await plain.api('POST', '/api/v1/events', event);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toEqual({ id: event.id, event: event.event, deliveries: [], duplicate: false });
    const stored = await plain.sluice.storage.getEvent(event.id);
    expect(stored).toMatchObject({ id: event.id, event: event.event, timestamp: event.timestamp, data: event.data, test: false });
  });

  it('generates an id and a timestamp when they are omitted', async () => {
    const { event, data } = fixture('lead.created');
    const before = Date.now();
    const res = await plain.api('POST', '/api/v1/events', { event, data });
    expect(res.status).toBe(202);
    expect(res.body.id).toMatch(/^evt_/);
    const stored = await plain.sluice.storage.getEvent(res.body.id);
    expect(Date.parse(stored!.timestamp)).toBeGreaterThanOrEqual(before - 1000);
    expect(stored!.data).toEqual(data);
  });

  it('accepts every catalog example', async () => {
    const types = (await plain.api('GET', '/api/v1/event-types')).body.data as { name: string; example: Record<string, unknown> }[];
    const operational = types.filter((t) => t.name.startsWith('sluice.'));
    for (const type of types.filter((t) => !operational.includes(t))) {
      const res = await plain.api('POST', '/api/v1/events', { ...type.example, id: `evt_example_${type.name}` });
      expect(res.status, `${type.name}: ${JSON.stringify(res.body)}`).toBe(202);
    }
  });
});

describe('fan-out at ingest (one transaction)', () => {
  it('lists the matching deliveries in the 202, and they are in the database already', async () => {
    const event = fresh('call.ended');
    const res = await routed.api('POST', '/api/v1/events', event);
    expect(res.status).toBe(202);
    expect(res.body.duplicate).toBe(false);
    const bySub = new Map(res.body.deliveries.map((d: { id: string; subscription_id: string }) => [d.subscription_id, d.id]));
    // call.* , *, and the filtered call.ended (duration 180 > 100); not sluice.* nor the disabled one.
    expect([...bySub.keys()].sort()).toEqual([subs.calls, subs.everything, subs.longCalls].sort());

    // Read the store straight after the 202, before anything else can happen.
    const rows = await Promise.all(res.body.deliveries.map((d: { id: string }) => routed.sluice.storage.getDelivery(d.id)));
    for (const [i, row] of rows.entries()) {
      expect(row, `delivery ${res.body.deliveries[i].id} stored`).toBeDefined();
      expect(row).toMatchObject({ event_id: event.id, event: 'call.ended', subscription_id: res.body.deliveries[i].subscription_id, chain: 1 });
      expect(['pending', 'delivering', 'delivered']).toContain(row.status);
    }
    expect(await routed.sluice.storage.getEvent(event.id)).toBeDefined();

    // And the worker really delivers them.
    await waitFor(() => receiver.requests.filter((r) => r.body.includes(event.id)).length >= 3, 5_000, 'three deliveries');
  });

  it('applies the filter: a short call skips the filtered subscription', async () => {
    const base = fixture('call.ended');
    const event = fresh('call.ended', { data: { ...base.data, call: { ...base.data.call, duration: 12 } } });
    const res = await routed.api('POST', '/api/v1/events', event);
    expect(res.status).toBe(202);
    expect(res.body.deliveries.map((d: { subscription_id: string }) => d.subscription_id).sort()).toEqual([subs.calls, subs.everything].sort());
    expect(deliveryRows(routed, event.id)).toHaveLength(2);
  });

  it('matches call.* only to call events, and * to everything', async () => {
    const event = fresh('lead.created');
    const res = await routed.api('POST', '/api/v1/events', event);
    expect(res.status).toBe(202);
    expect(res.body.deliveries.map((d: { subscription_id: string }) => d.subscription_id)).toEqual([subs.everything]);
    expect(deliveryRows(routed, event.id).map((d) => d.subscription_id)).toEqual([subs.everything]);
  });

  it('never matches * to sluice.* operational events, which go to sluice.* subscribers', async () => {
    const [accepted] = await routed.sluice.ingest.store([
      { event: 'sluice.delivery.failed', id: `evt_op_${process.pid}`, timestamp: new Date().toISOString(), data: { delivery_id: 'dlv_x', subscription_id: 'sub_x' } },
    ]);
    expect(accepted.deliveries.map((d) => d.subscription_id)).toEqual([subs.operational]);
    expect(deliveryRows(routed, accepted.id).map((d) => d.subscription_id)).toEqual([subs.operational]);
  });

  it('creates no delivery for a disabled subscription', async () => {
    const event = fresh('call.failed');
    const res = await routed.api('POST', '/api/v1/events', event);
    expect(res.body.deliveries.map((d: { subscription_id: string }) => d.subscription_id)).not.toContain(subs.disabled);
  });
});

describe('validation', () => {
  it('refuses an unknown event type with 422 at $.event', async () => {
    const res = await plain.api('POST', '/api/v1/events', { event: 'call.teleported', data: {} });
    expectError(res, 422);
    expect(errorPaths(res)).toEqual(['$.event']);
  });

  it('refuses sluice.* operational events from clients: only the gateway raises them', async () => {
    const types = (await plain.api('GET', '/api/v1/event-types')).body.data as { name: string; example: Record<string, unknown> }[];
    const operational = types.filter((t) => t.name.startsWith('sluice.'));
    expect(operational.length).toBeGreaterThan(0);
    for (const type of operational) {
      const res = await routed.api('POST', '/api/v1/events', { ...type.example, id: `evt_forged_${type.name}` });
      expectError(res, 422);
      expect(errorPaths(res)).toEqual(['$.event']);
      expect(await routed.sluice.storage.getEvent(`evt_forged_${type.name}`)).toBeUndefined();
    }
  });

  it('lists each schema failure with its JSON path', async () => {
    const base = fixture('call.ended');
    const { direction: _dropped, ...call } = base.data.call;
    const res = await plain.api('POST', '/api/v1/events', { ...base, id: 'evt_bad_schema', data: { ...base.data, call: { ...call, id: 42, duration: -5 } } });
    expectError(res, 422);
    const paths = errorPaths(res);
    expect(paths).toEqual(expect.arrayContaining(['$.data.call.id', '$.data.call.direction', '$.data.call.duration']));
    for (const detail of res.body.error.details) expect(detail.message).toBeTypeOf('string');
    expect(await plain.sluice.storage.getEvent('evt_bad_schema')).toBeUndefined();
  });

  it('refuses data of the wrong type at $.data', async () => {
    const res = await plain.api('POST', '/api/v1/events', { event: 'call.ended', data: 'a string' });
    expectError(res, 422);
    expect(errorPaths(res)).toEqual(['$.data']);
  });

  it('requires data', async () => {
    const res = await plain.api('POST', '/api/v1/events', { event: 'call.ended' });
    expectError(res, 422);
    expect(errorPaths(res)).toContain('$.data');
  });

  it('requires event', async () => {
    const res = await plain.api('POST', '/api/v1/events', { data: fixture('call.ended').data });
    expectError(res, 422);
    expect(errorPaths(res)).toContain('$.event');
  });

  it('refuses an unknown top-level field', async () => {
    const res = await plain.api('POST', '/api/v1/events', { ...fresh('call.ended'), colour: 'blue' });
    expectError(res, 422);
    expect(errorPaths(res)).toEqual(['$.colour']);
  });

  it.each([
    ['an id with spaces', { id: 'evt with spaces' }, '$.id'],
    ['a numeric id', { id: 7 }, '$.id'],
    ['an id of 256 characters', { id: 'e'.repeat(256) }, '$.id'],
    ['a timestamp that is not a date', { timestamp: 'yesterday-ish' }, '$.timestamp'],
    ['a numeric event', { event: 12 }, '$.event'],
  ])('refuses %s', async (_what, overrides, path) => {
    const res = await plain.api('POST', '/api/v1/events', { ...fresh('lead.created'), ...overrides });
    expectError(res, 422);
    expect(errorPaths(res)).toContain(path);
  });

  it.each([
    ['an array', [fixture('call.ended')]],
    ['a string', '"call.ended"'],
    ['a number', '42'],
    ['null', 'null'],
  ])('refuses %s as the body with 422 at $', async (_what, body) => {
    const res = await plain.api('POST', '/api/v1/events', body);
    expectError(res, 422);
    expect(errorPaths(res)).toEqual(['$']);
  });

  it('answers invalid JSON with 400 invalid_json', async () => {
    const res = await plain.api('POST', '/api/v1/events', '{"event": "call.ended", "data": {');
    expectError(res, 400, 'invalid_json');
  });

  it('answers a body over SLUICE_MAX_BODY_BYTES with 413 payload_too_large', async () => {
    const small = await startGateway({ SLUICE_MAX_BODY_BYTES: '2048' });
    try {
      const big = { ...fixture('lead.created'), data: { lead: { id: 'lead_1', notes: 'x'.repeat(4000) } } };
      const res = await small.api('POST', '/api/v1/events', big);
      expectError(res, 413, 'payload_too_large');
      expect(res.body.error.message).toContain('2048');
      const ok = await small.api('POST', '/api/v1/events', { ...fixture('lead.created'), data: { lead: { id: 'lead_1', notes: 'x'.repeat(1000) } } });
      expect(ok.status).toBe(202);
      expect(countRows(small, 'events')).toBe(1);
    } finally {
      await small.stop();
    }
  });
});

describe('idempotency', () => {
  it('answers the same id again with 200 and the first result, creating nothing', async () => {
    const event = fresh('call.ended');
    const first = await routed.api('POST', '/api/v1/events', event);
    expect(first.status).toBe(202);
    expect(first.body.deliveries.length).toBeGreaterThan(0);
    const deliveriesBefore = countRows(routed, 'deliveries');

    const again = await routed.api('POST', '/api/v1/events', event);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...first.body, duplicate: true });
    // A different body under the same id is a conflict, not a silent duplicate.
    const changed = await routed.api('POST', '/api/v1/events', { ...fresh('lead.created'), id: event.id });
    expectError(changed, 409, 'event_id_conflict');

    expect(countRows(routed, 'deliveries')).toBe(deliveriesBefore);
    expect(deliveryRows(routed, event.id)).toHaveLength(first.body.deliveries.length);
  });

  it('answers the same Idempotency-Key again with 200 and the same event id', async () => {
    const { event, data } = fixture('call.ended');
    const key = `idem-${process.pid}-${Date.now()}`;
    const first = await routed.api('POST', '/api/v1/events', { event, data }, undefined, { 'idempotency-key': key });
    expect(first.status).toBe(202);
    const eventsBefore = countRows(routed, 'events');
    const deliveriesBefore = countRows(routed, 'deliveries');

    const again = await routed.api('POST', '/api/v1/events', { event, data }, undefined, { 'idempotency-key': key });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...first.body, duplicate: true });
    expect(countRows(routed, 'events')).toBe(eventsBefore);
    expect(countRows(routed, 'deliveries')).toBe(deliveriesBefore);

    const other = await routed.api('POST', '/api/v1/events', { event, data }, undefined, { 'idempotency-key': `${key}-other` });
    expect(other.status).toBe(202);
    expect(other.body.id).not.toBe(first.body.id);
  });

  it('keeps concurrent duplicates to one event', async () => {
    const event = fresh('lead.created');
    const results = await Promise.all(Array.from({ length: 5 }, () => plain.api('POST', '/api/v1/events', event)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 202]);
    expect(new Set(results.map((r) => r.body.id))).toEqual(new Set([event.id]));
  });

  it('refuses an Idempotency-Key over 255 characters', async () => {
    const res = await plain.api('POST', '/api/v1/events', fresh('lead.created'), undefined, { 'idempotency-key': 'k'.repeat(256) });
    expectError(res, 422);
  });
});

describe('POST /api/v1/events/batch', () => {
  it('accepts an array with per-item results', async () => {
    const batch = [fresh('call.ended'), fresh('lead.created'), fresh('agent.status_changed')];
    const res = await routed.api('POST', '/api/v1/events/batch', batch);
    expect(res.status).toBe(202);
    expect(res.body.data).toHaveLength(3);
    res.body.data.forEach((item: any, i: number) => {
      expect(item).toMatchObject({ id: batch[i].id, event: batch[i].event, duplicate: false });
    });
    expect(res.body.data[0].deliveries.length).toBe(3);
    expect(res.body.data[1].deliveries.map((d: { subscription_id: string }) => d.subscription_id)).toEqual([subs.everything]);
    for (const item of res.body.data) {
      for (const d of item.deliveries) expect(await routed.sluice.storage.getDelivery(d.id)).toBeDefined();
    }
  });

  it('accepts {events: [...]}', async () => {
    const batch = [fresh('evaluation.completed'), fresh('signal.frustration_spike')];
    const res = await plain.api('POST', '/api/v1/events/batch', { events: batch });
    expect(res.status).toBe(202);
    expect(res.body.data.map((r: { id: string }) => r.id)).toEqual(batch.map((e) => e.id));
  });

  it('reports duplicates per item, within the batch and against earlier events', async () => {
    const earlier = fresh('lead.created');
    expect((await plain.api('POST', '/api/v1/events', earlier)).status).toBe(202);
    const repeated = fresh('call.failed');
    const res = await plain.api('POST', '/api/v1/events/batch', [earlier, repeated, repeated]);
    expect(res.status).toBe(202);
    expect(res.body.data.map((r: { duplicate: boolean }) => r.duplicate)).toEqual([true, false, true]);
    const allDuplicates = await plain.api('POST', '/api/v1/events/batch', [earlier, repeated]);
    expect(allDuplicates.status).toBe(200);
  });

  it('refuses the whole batch when one item is invalid, with the item path', async () => {
    const good = fresh('lead.created');
    const bad = fresh('call.ended', { data: { ...fixture('call.ended').data, call: { ...fixture('call.ended').data.call, id: 5 } } });
    const eventsBefore = countRows(routed, 'events');
    const deliveriesBefore = countRows(routed, 'deliveries');
    const res = await routed.api('POST', '/api/v1/events/batch', [good, bad, fresh('call.failed')]);
    expectError(res, 422);
    expect(errorPaths(res)).toEqual(['$[1].data.call.id']);
    expect(await routed.sluice.storage.getEvent(good.id)).toBeUndefined();
    expect(countRows(routed, 'events')).toBe(eventsBefore);
    expect(countRows(routed, 'deliveries')).toBe(deliveriesBefore);

    const wrapped = await routed.api('POST', '/api/v1/events/batch', { events: [good, { event: 'nope.never', data: {} }] });
    expectError(wrapped, 422);
    expect(errorPaths(wrapped)).toEqual(['$.events[1].event']);
    expect(await routed.sluice.storage.getEvent(good.id)).toBeUndefined();
  });

  it('refuses more than SLUICE_MAX_BATCH_EVENTS (1000 by default) with batch_too_large', async () => {
    const batch = Array.from({ length: 1001 }, () => ({ event: 'lead.created', data: { lead: { id: 'l' } } }));
    const eventsBefore = countRows(plain, 'events');
    const res = await plain.api('POST', '/api/v1/events/batch', batch);
    expectError(res, 422, 'batch_too_large');
    expect(countRows(plain, 'events')).toBe(eventsBefore);
  });

  it('accepts exactly SLUICE_MAX_BATCH_EVENTS', async () => {
    const limited = await startGateway({ SLUICE_MAX_BATCH_EVENTS: '3' });
    try {
      const item = () => ({ event: 'lead.created', data: { lead: { id: 'l' } } });
      expect((await limited.api('POST', '/api/v1/events/batch', [item(), item(), item()])).status).toBe(202);
      expectError(await limited.api('POST', '/api/v1/events/batch', [item(), item(), item(), item()]), 422, 'batch_too_large');
      expect(countRows(limited, 'events')).toBe(3);
    } finally {
      await limited.stop();
    }
  });

  it.each([
    ['an empty array', [], 422],
    ['an object without events', { items: [] }, 400],
    ['events that is not an array', { events: 'all of them' }, 400],
    ['a string', '"batch"', 400],
  ])('refuses %s', async (_what, body, status) => {
    const res = await plain.api('POST', '/api/v1/events/batch', body);
    expectError(res, status);
  });
});

describe('GET /api/v1/event-types', () => {
  it('lists the catalog with names, descriptions, schemas and examples', async () => {
    const keyRes = await plain.api('POST', '/api/v1/keys', { role: 'read' });
    const res = await plain.api('GET', '/api/v1/event-types', undefined, keyRes.body.key);
    expect(res.status).toBe(200);
    const types = res.body.data as { name: string; description: string; schema: Record<string, unknown>; example: { event: string; data: unknown } }[];
    const names = types.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining([...FIXTURE_NAMES, ...SEED_NAMES]));
    expect(names).toEqual([...names].sort());
    for (const type of types) {
      expect(type.description.length, type.name).toBeGreaterThan(0);
      expect(type.schema.type, type.name).toBe('object');
      expect(type.example.event).toBe(type.name);
      expect(type.example.data).toBeTypeOf('object');
    }
  });
});
