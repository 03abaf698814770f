import { describe, expect, it } from 'vitest';
import { IngestService, type DeliveryPreclaim, type IngestDeps } from '../../src/services/ingest.ts';
import { ConflictError, ValidationError } from '../../src/errors.ts';
import type { Logger } from '../../src/logger.ts';
import type { ClaimedDelivery, IngestItem, IngestResult, Storage, SubscriptionRecord } from '../../src/storage/types.ts';
import type { RuntimeSubscription } from '../../src/services/subscriptions.ts';
import { thrownBy } from '../support/error-shape.ts';

/**
 * IngestService over a scripted storage (the gateway tests run it over SQLite): which deliveries
 * are stored already leased to the worker (preclaimed), what the worker is told after the commit,
 * and the slots given back when the commit stores fewer or fails.
 */

const NOW = 1_750_000_000_000;

function sub(id: string, overrides: Partial<SubscriptionRecord> = {}, schedule = [0]): RuntimeSubscription {
  return {
    record: { id, events: ['*'], enabled: true, filter: null, ordering: null, ...overrides } as SubscriptionRecord,
    auth: null, connectorOptions: {}, secretHeaders: {}, secret: 's', previousSecret: null, schedule,
  };
}

interface Setup {
  subs?: RuntimeSubscription[];
  /** Slots the worker has (reserve gives at most this many). */
  room?: number;
  saturated?: string[];
  /** Ids the storage answers as duplicates. */
  duplicates?: string[];
  fail?: Error;
  preclaim?: boolean;
  route?: IngestDeps['route'];
  validateData?: IngestDeps['validateData'];
}

function setup(options: Setup = {}) {
  const stored: IngestItem[][] = [];
  const created: { pending: string[]; preclaimed: ClaimedDelivery[]; held: number }[] = [];
  const accepted: number[] = [];
  const reserved: number[] = [];
  const released: number[] = [];
  const routed: { subscription: string; filter: string | null; key: string | null }[] = [];
  const warnings: { fields: Record<string, unknown>; message: string }[] = [];
  const storage = {
    async ingest(items: IngestItem[]): Promise<IngestResult[]> {
      stored.push(items);
      if (options.fail) throw options.fail;
      return items.map((i) => ({ event_id: i.event.id, event: i.event.event, deliveries: i.deliveries.map((d) => ({ id: d.id, subscription_id: d.subscription_id })), duplicate: (options.duplicates ?? []).includes(i.event.id) }));
    },
  } as unknown as Storage;
  const preclaim: DeliveryPreclaim = {
    reserve: (wanted) => {
      reserved.push(wanted);
      return { count: Math.min(wanted, options.room ?? 100), leaseUntil: NOW + 30_000 };
    },
    release: (count) => void released.push(count),
    isSaturated: (id) => (options.saturated ?? []).includes(id),
  };
  const deps: IngestDeps = {
    storage,
    validateData: options.validateData ?? (() => []),
    subscriptions: async () => new Map((options.subs ?? [sub('sub_a')]).map((s) => [s.record.id, s])),
    route: async (envelope, subscription, expressions) => {
      routed.push({ subscription: subscription.record.id, ...expressions });
      return options.route ? options.route(envelope, subscription, expressions) : { matches: true, key: null };
    },
    onDeliveriesCreated: (c) => void created.push(c),
    onEventsAccepted: (n) => void accepted.push(n),
    preclaim: options.preclaim === false ? undefined : preclaim,
    logger: { warn: (fields: Record<string, unknown>, message: string) => void warnings.push({ fields, message }) } as unknown as Logger,
    now: () => NOW,
  };
  return { service: new IngestService(deps), stored, created, accepted, reserved, released, routed, warnings };
}

const body = (id: string) => ({ event: 'call.ended', id, data: {} });
const statuses = (items: IngestItem[]) => items.flatMap((i) => i.deliveries.map((d) => `${d.subscription_id}:${d.status}:${d.lease_until ?? '-'}`));

describe('IngestService', () => {
  it('stores deliveries due now already leased, as far as the worker has room, and tells it about them after the commit', async () => {
    const t = setup({ subs: [sub('sub_a'), sub('sub_b'), sub('sub_c')], room: 2 });
    const [event] = await t.service.accept([body('evt_1')]);
    expect(t.reserved).toEqual([3]);
    expect(statuses(t.stored[0])).toEqual([`sub_a:delivering:${NOW + 30_000}`, `sub_b:delivering:${NOW + 30_000}`, 'sub_c:pending:-']);
    expect(t.created).toHaveLength(1);
    expect(t.created[0].preclaimed.map((p) => p.delivery.subscription_id)).toEqual(['sub_a', 'sub_b']);
    expect(t.created[0].preclaimed[0].event).toMatchObject({ id: 'evt_1', received_at: NOW });
    expect(t.created[0].pending).toEqual([event.deliveries[2].id]);
    expect(t.created[0].held).toBe(0);
    expect(t.released).toEqual([]);
    expect(t.accepted).toEqual([1]);
  });

  it('leaves pending what is not due, ordered or for a saturated destination (held), and reserves only for the rest', async () => {
    const t = setup({ subs: [sub('sub_later', {}, [60_000]), sub('sub_ordered', { ordering: { key: '*' } } as Partial<SubscriptionRecord>), sub('sub_busy'), sub('sub_now')], saturated: ['sub_busy'] });
    await t.service.accept([body('evt_2')]);
    expect(t.reserved).toEqual([1]);
    expect(statuses(t.stored[0])).toEqual(['sub_later:pending:-', 'sub_ordered:pending:-', 'sub_busy:pending:-', `sub_now:delivering:${NOW + 30_000}`]);
    expect(t.created[0].held).toBe(1);
    expect(t.created[0].pending).toHaveLength(2);
    expect(t.created[0].preclaimed).toHaveLength(1);
  });

  it('reserves for every event of a batch, and preclaims in order until the slots run out', async () => {
    const t = setup({ subs: [sub('sub_a'), sub('sub_b')], room: 3 });
    await t.service.accept([body('evt_3'), body('evt_4')]);
    expect(t.reserved).toEqual([4]);
    expect(statuses(t.stored[0]).map((s) => s.split(':')[1])).toEqual(['delivering', 'delivering', 'delivering', 'pending']);
    expect(t.released).toEqual([]);
  });

  it('reserves nothing when nothing is due, and a batch with no delivery tells the worker nothing', async () => {
    const t = setup({ subs: [sub('sub_later', {}, [60_000])] });
    await t.service.accept([body('evt_5')]);
    expect(t.reserved).toEqual([]);
    expect(t.created).toEqual([{ pending: [expect.any(String)], preclaimed: [], held: 0 }]);
    const none = setup({ subs: [] });
    await none.service.accept([body('evt_6')]);
    expect(none.created).toEqual([]);
    expect(none.accepted).toEqual([1]);
  });

  it('a duplicate preclaims nothing: its slots are given back, and it is not counted as accepted', async () => {
    const t = setup({ subs: [sub('sub_a'), sub('sub_b')], duplicates: ['evt_dup'] });
    await t.service.accept([body('evt_dup'), body('evt_new')]);
    expect(t.reserved).toEqual([4]);
    expect(t.created[0].preclaimed.map((p) => p.event.id)).toEqual(['evt_new', 'evt_new']);
    expect(t.released).toEqual([2]);
    expect(t.accepted).toEqual([1]);
    const only = setup({ duplicates: ['evt_dup'] });
    await only.service.accept([body('evt_dup')]);
    expect(only.accepted).toEqual([]);
    expect(only.created).toEqual([]);
    expect(only.released).toEqual([1]);
  });

  it('a failed commit gives every reserved slot back and tells the worker nothing', async () => {
    const t = setup({ subs: [sub('sub_a'), sub('sub_b')], fail: new Error('disk I/O error') });
    await expect(t.service.accept([body('evt_7')])).rejects.toThrow('disk I/O error');
    expect(t.released).toEqual([2]);
    expect(t.created).toEqual([]);
    expect(t.accepted).toEqual([]);
    const nothingReserved = setup({ subs: [sub('sub_later', {}, [60_000])], fail: new Error('disk I/O error') });
    await expect(nothingReserved.service.accept([body('evt_8')])).rejects.toThrow('disk I/O error');
    expect(nothingReserved.released).toEqual([]);
  });

  it('store without notify preclaims nothing and tells nobody', async () => {
    const t = setup();
    const [envelope] = [{ event: 'sluice.test', id: 'evt_9', timestamp: new Date(NOW).toISOString(), data: {} }];
    await t.service.store([envelope], { notify: false });
    expect(t.reserved).toEqual([]);
    expect(statuses(t.stored[0])).toEqual([]);
    await t.service.store([{ ...envelope, event: 'call.ended', id: 'evt_10' }], { notify: false });
    expect(statuses(t.stored[1])).toEqual(['sub_a:pending:-']);
    expect(t.created).toEqual([]);
    await t.service.store([{ ...envelope, event: 'call.ended', id: 'evt_11' }], { notify: true });
    expect(t.created).toHaveLength(1);
  });

  it('an Idempotency-Key goes with a single event only', async () => {
    const t = setup();
    await t.service.accept([body('evt_12')], { idempotencyKey: 'k1' });
    await t.service.accept([body('evt_13'), body('evt_14')], { idempotencyKey: 'k2' });
    expect(t.stored.flat().map((i) => i.event.idempotency_key)).toEqual(['k1', null, null]);
  });

  it('says whether one event or some of a batch are invalid', async () => {
    const t = setup();
    await expect(t.service.accept([{ event: 'call.ended' }])).rejects.toMatchObject({ message: 'The event is invalid.', code: 'invalid_event' });
    await expect(t.service.accept([body('evt_15'), { event: 'call.ended' }])).rejects.toMatchObject({ message: 'Some events are invalid; none were accepted.' });
    await expect(t.service.accept([body('evt_15'), { event: 'call.ended' }])).rejects.toBeInstanceOf(ValidationError);
  });

  it('places an id conflict of a batch at its item, and passes other conflicts on as they are', async () => {
    const conflict = new ConflictError('event_id_conflict', 'taken', [{ path: '$.id', message: 'was already used for a different event', id: 'evt_b' }]);
    const t = setup({ fail: conflict });
    const err = await thrownBy(t.service.accept([body('evt_a'), body('evt_b')], { rootPath: (i) => `$[${i}]` }));
    expect(err).toBeInstanceOf(ConflictError);
    expect(err).toMatchObject({ code: 'event_id_conflict', message: 'taken', details: [{ path: '$[1].id', message: 'was already used for a different event', id: 'evt_b' }] });
    expect(await thrownBy(t.service.accept([body('evt_a')]))).toBe(conflict);
    const keyConflict = new ConflictError('idempotency_key_conflict', 'key', [{ path: 'header:Idempotency-Key', message: 'x' }]);
    const k = setup({ fail: keyConflict });
    expect(await thrownBy(k.service.accept([body('evt_a')], { rootPath: (i) => `$[${i}]` }))).toBe(keyConflict);
  });

  it('without a preclaim, every new delivery is pending', async () => {
    const t = setup({ subs: [sub('sub_a')], preclaim: false });
    await t.service.accept([body('evt_16')]);
    expect(statuses(t.stored[0])).toEqual(['sub_a:pending:-']);
    expect(t.created[0]).toMatchObject({ preclaimed: [], held: 0 });
    expect(t.created[0].pending).toHaveLength(1);
  });
});

describe('IngestService: the envelope, who subscribes, and the deliveries it makes', () => {
  it('records which fields were posted (the idempotency hash covers only those) and fills in the rest', async () => {
    const t = setup({ subs: [] });
    await t.service.accept([{ event: 'call.ended', data: { n: 1 } }]);
    await t.service.accept([{ event: 'call.ended', id: 'evt_posted', timestamp: '2026-01-02T03:04:05.000Z', data: { n: 2 } }]);
    await t.service.accept([{ event: 'call.ended', id: 'evt_id_only', data: {} }, { event: 'call.ended', timestamp: '2026-01-02T03:04:05.000Z', data: {} }]);
    const [generated, posted, idOnly, timestampOnly] = t.stored.flat();
    expect([generated, posted, idOnly, timestampOnly].map((i) => i.posted)).toEqual([
      { id: false, timestamp: false }, { id: true, timestamp: true }, { id: true, timestamp: false }, { id: false, timestamp: true },
    ]);
    expect(generated.event.id).toMatch(/^evt_[0-9a-z]+/);
    expect(generated.event.timestamp).toBe(new Date(NOW).toISOString());
    expect(posted.event).toMatchObject({ id: 'evt_posted', timestamp: '2026-01-02T03:04:05.000Z', data: { n: 2 }, received_at: NOW, test: false });
  });

  it('names each problem of an envelope at its path, with what is expected', async () => {
    const t = setup({ validateData: (name) => (name === 'lead.unknown' ? 'unknown_event' : name === 'lead.bad' ? [{ path: '$.data.email', message: 'must be a string' }] : []) });
    const problems = async (body: unknown) => (await thrownBy<ValidationError>(t.service.accept([body], { rootPath: () => '$[0]' }))).details;
    expect(await problems([1])).toEqual([{ path: '$[0]', message: 'must be a JSON object {event, id?, timestamp?, data}' }]);
    for (const body of [null, 5, 'call.ended', true]) expect(await problems(body), JSON.stringify(body)).toEqual([{ path: '$[0]', message: 'must be a JSON object {event, id?, timestamp?, data}' }]);
    // An event name that is not a string is refused as such (not read as a name).
    expect(await problems({ event: 7, data: {} })).toEqual([{ path: '$[0].event', message: 'is required: the event type, e.g. "call.ended"' }]);
    expect(await problems({ event: '', id: ' x', timestamp: 'soon', extra: 1 })).toEqual([
      { path: '$[0].extra', message: 'is not a known field (expected event, id, timestamp, data)' },
      { path: '$[0].event', message: 'is required: the event type, e.g. "call.ended"' },
      { path: '$[0].id', message: 'must be 1-255 characters of letters, digits, _ . : -' },
      { path: '$[0].timestamp', message: 'must be an ISO-8601 date-time' },
      { path: '$[0].data', message: 'is required' },
    ]);
    expect(await problems({ event: 'call.ended', id: 7, timestamp: 7, data: null })).toEqual([
      { path: '$[0].id', message: 'must be 1-255 characters of letters, digits, _ . : -' },
      { path: '$[0].timestamp', message: 'must be an ISO-8601 date-time' },
    ]);
    expect(await problems({ event: 'call.ended', id: 'a'.repeat(256), data: {} })).toEqual([{ path: '$[0].id', message: 'must be 1-255 characters of letters, digits, _ . : -' }]);
    expect(await problems({ event: 'sluice.delivery.failed', data: {} })).toEqual([{ path: '$[0].event', message: '"sluice.delivery.failed" is reserved for the gateway\'s own operational events' }]);
    expect(await problems({ event: 'lead.unknown', data: {} })).toEqual([{ path: '$[0].event', message: '"lead.unknown" is not an event type in the catalog (see GET /api/v1/event-types)' }]);
    expect(await problems({ event: 'lead.bad', data: {} })).toEqual([{ path: '$[0].data.email', message: 'must be a string' }]);
    // The longest id allowed, and the characters allowed after the first, are accepted.
    await t.service.accept([{ event: 'call.ended', id: `a${'b'.repeat(254)}`, data: {} }, { event: 'call.ended', id: 'A9_.:-z', data: {} }]);
    expect(t.stored.flat().map((i) => i.event.id)).toEqual([`a${'b'.repeat(254)}`, 'A9_.:-z']);
  });

  it('delivers to each enabled subscription with any matching pattern; operational events never to a bare "*"', async () => {
    const t = setup({
      subs: [
        sub('sub_any', { events: ['lead.*', 'call.ended'] }),
        sub('sub_leads', { events: ['lead.*'] }),
        sub('sub_off', { events: ['*'], enabled: false }),
        sub('sub_all', { events: ['*'] }),
        sub('sub_ops', { events: ['sluice.*'] }),
        sub('sub_failed', { events: ['*', 'sluice.delivery.failed'] }),
      ],
    });
    await t.service.accept([body('evt_m1')]);
    expect(t.stored[0][0].deliveries.map((d) => d.subscription_id)).toEqual(['sub_any', 'sub_all', 'sub_failed']);
    await t.service.store([{ event: 'sluice.delivery.failed', id: 'evt_m2', timestamp: new Date(NOW).toISOString(), data: {} }]);
    expect(t.stored[1][0].deliveries.map((d) => d.subscription_id)).toEqual(['sub_ops', 'sub_failed']);
  });

  it('makes each delivery with its own dlv_ id and msg_ webhook-id, due after the schedule\'s first delay', async () => {
    const t = setup({ subs: [sub('sub_now'), sub('sub_later', {}, [5_000])], preclaim: false });
    await t.service.accept([body('evt_d1')]);
    const [now, later] = t.stored[0][0].deliveries;
    expect(now).toMatchObject({ event_id: 'evt_d1', subscription_id: 'sub_now', event: 'call.ended', status: 'pending', attempts: 0, chain: 1, next_attempt_at: NOW, created_at: NOW, updated_at: NOW, lease_until: null, last_attempt_at: null, last_status_code: null, last_error: null, ordering_key: null, sequence: null });
    expect(later.next_attempt_at).toBe(NOW + 5_000);
    for (const d of [now, later]) {
      expect(d.id).toMatch(/^dlv_[0-9a-z]+/);
      expect(d.msg_id).toMatch(/^msg_[0-9a-z]+/);
    }
    expect(new Set([now.id, later.id, now.msg_id, later.msg_id]).size).toBe(4);
  });

  it('a test send goes to its one subscription, even disabled or not subscribed, now, unfiltered and unordered', async () => {
    const target = sub('sub_target', { events: ['lead.*'], enabled: false, filter: 'data.never = true', ordering: { key: 'data.k', on_failure: 'block' } } as Partial<SubscriptionRecord>, [60_000]);
    const t = setup({ subs: [sub('sub_other'), target], preclaim: false });
    await t.service.store([{ event: 'call.ended', id: 'evt_t1', timestamp: new Date(NOW).toISOString(), data: { k: 'x' } }], { onlySubscription: 'sub_target', test: true });
    const [item] = t.stored[0];
    expect(item.event.test).toBe(true);
    expect(item.deliveries.map((d) => [d.subscription_id, d.next_attempt_at, d.ordering_key])).toEqual([['sub_target', NOW, null]]);
    expect(t.routed).toEqual([]);
    const all = setup({ subs: [sub('sub_target', { ordering: { key: '*' } } as Partial<SubscriptionRecord>)], preclaim: false });
    await all.service.store([{ event: 'call.ended', id: 'evt_t2', timestamp: new Date(NOW).toISOString(), data: {} }], { onlySubscription: 'sub_target' });
    expect(all.stored[0][0].deliveries[0].ordering_key).toBeNull();
  });

  it('reads a plain ordering key itself; a filter or any other key is routed through the evaluator', async () => {
    const route: IngestDeps['route'] = async (envelope, _sub, expressions) => ({ matches: (envelope.data as { keep?: boolean }).keep !== false, key: expressions.key ? 'routed-key' : null });
    const t = setup({
      preclaim: false,
      route,
      subs: [
        sub('sub_plain', { ordering: { key: 'data.conversation_id', on_failure: 'block' } } as Partial<SubscriptionRecord>),
        sub('sub_plain_filtered', { filter: 'data.keep', ordering: { key: 'data.conversation_id', on_failure: 'block' } } as Partial<SubscriptionRecord>),
        sub('sub_expression', { ordering: { key: '$uppercase(data.conversation_id)', on_failure: 'block' } } as Partial<SubscriptionRecord>),
        sub('sub_filter_all', { filter: 'data.keep', ordering: { key: '*' } } as Partial<SubscriptionRecord>),
        sub('sub_filter_only', { filter: 'data.keep' }),
      ],
    });
    await t.service.accept([{ event: 'call.ended', id: 'evt_k1', data: { conversation_id: 'conv-1', keep: true } }]);
    expect(t.stored[0][0].deliveries.map((d) => [d.subscription_id, d.ordering_key])).toEqual([
      ['sub_plain', 'conv-1'], ['sub_plain_filtered', 'routed-key'], ['sub_expression', 'routed-key'], ['sub_filter_all', '*'], ['sub_filter_only', null],
    ]);
    expect(t.routed).toEqual([
      { subscription: 'sub_plain_filtered', filter: 'data.keep', key: 'data.conversation_id' },
      { subscription: 'sub_expression', filter: null, key: '$uppercase(data.conversation_id)' },
      { subscription: 'sub_filter_all', filter: 'data.keep', key: null },
      { subscription: 'sub_filter_only', filter: 'data.keep', key: null },
    ]);
    // Keys and filters that worked: nothing to say in the log.
    expect(t.warnings).toEqual([]);
    // A filter that does not match drops the subscription; the plain key still orders the one without a filter.
    await t.service.accept([{ event: 'call.ended', id: 'evt_k2', data: { conversation_id: 'conv-2', keep: false } }]);
    expect(t.stored[1][0].deliveries.map((d) => [d.subscription_id, d.ordering_key])).toEqual([['sub_plain', 'conv-2']]);
    // The same expressions again: the plain path is remembered, and still read from each event.
    await t.service.accept([{ event: 'call.ended', id: 'evt_k3', data: { conversation_id: 'conv-3', keep: false } }]);
    expect(t.stored[2][0].deliveries.map((d) => d.ordering_key)).toEqual(['conv-3']);
  });

  it('a key that fails leaves the delivery unordered, a filter that fails drops it; both say why in the log', async () => {
    const route: IngestDeps['route'] = async (_envelope, subscription) => {
      if (subscription.record.id === 'sub_broken_filter') throw new Error('filter blew up');
      return { matches: true, key: null, key_error: 'key blew up' };
    };
    const t = setup({
      preclaim: false,
      route,
      subs: [
        sub('sub_broken_key', { ordering: { key: '$error("no")', on_failure: 'block' } } as Partial<SubscriptionRecord>),
        sub('sub_broken_filter', { filter: '$error("no")' }),
        sub('sub_fine'),
      ],
    });
    await t.service.accept([body('evt_w1')]);
    expect(t.stored[0][0].deliveries.map((d) => [d.subscription_id, d.ordering_key])).toEqual([['sub_broken_key', null], ['sub_fine', null]]);
    expect(t.warnings).toEqual([
      { fields: { subscription_id: 'sub_broken_key', event_id: 'evt_w1', err: 'key blew up' }, message: 'ordering key failed; event delivered unordered to this subscription' },
      { fields: { subscription_id: 'sub_broken_filter', event_id: 'evt_w1', err: 'filter blew up' }, message: 'filter failed; event not delivered to this subscription' },
    ]);
  });
});
