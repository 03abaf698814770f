import { describe, expect, it } from 'vitest';
import { IngestService, type DeliveryPreclaim, type IngestDeps } from '../../src/services/ingest.ts';
import { ConflictError, ValidationError } from '../../src/errors.ts';
import type { Logger } from '../../src/logger.ts';
import type { ClaimedDelivery, IngestItem, IngestResult, Storage, SubscriptionRecord } from '../../src/storage/types.ts';
import type { RuntimeSubscription } from '../../src/services/subscriptions.ts';

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
}

function setup(options: Setup = {}) {
  const stored: IngestItem[][] = [];
  const created: { pending: string[]; preclaimed: ClaimedDelivery[]; held: number }[] = [];
  const accepted: number[] = [];
  const reserved: number[] = [];
  const released: number[] = [];
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
    validateData: () => [],
    subscriptions: async () => new Map((options.subs ?? [sub('sub_a')]).map((s) => [s.record.id, s])),
    route: async () => ({ matches: true, key: null }),
    onDeliveriesCreated: (c) => void created.push(c),
    onEventsAccepted: (n) => void accepted.push(n),
    preclaim: options.preclaim === false ? undefined : preclaim,
    logger: { warn: () => undefined } as unknown as Logger,
    now: () => NOW,
  };
  return { service: new IngestService(deps), stored, created, accepted, reserved, released };
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
    const err = await t.service.accept([body('evt_a'), body('evt_b')], { rootPath: (i) => `$[${i}]` }).catch((e) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect(err).toMatchObject({ code: 'event_id_conflict', message: 'taken', details: [{ path: '$[1].id', message: 'was already used for a different event', id: 'evt_b' }] });
    expect(await t.service.accept([body('evt_a')]).catch((e) => e)).toBe(conflict);
    const keyConflict = new ConflictError('idempotency_key_conflict', 'key', [{ path: 'header:Idempotency-Key', message: 'x' }]);
    const k = setup({ fail: keyConflict });
    expect(await k.service.accept([body('evt_a')], { rootPath: (i) => `$[${i}]` }).catch((e) => e)).toBe(keyConflict);
  });

  it('without a preclaim, every new delivery is pending', async () => {
    const t = setup({ subs: [sub('sub_a')], preclaim: false });
    await t.service.accept([body('evt_16')]);
    expect(statuses(t.stored[0])).toEqual(['sub_a:pending:-']);
    expect(t.created[0]).toMatchObject({ preclaimed: [], held: 0 });
    expect(t.created[0].pending).toHaveLength(1);
  });
});
