import { describe, expect, it } from 'vitest';
import { DeliveryService, presentDelivery, type DeliveryServiceDeps } from '../../src/services/deliveries.ts';
import type { DeliveryRecord, DeliveryStatus, OrderingBlocker } from '../../src/storage/types.ts';

const T = Date.UTC(2026, 11, 5, 12, 0, 0);

function record(status: DeliveryStatus, overrides: Partial<DeliveryRecord> = {}): DeliveryRecord {
  return {
    id: 'dlv_1', event_id: 'evt_1', subscription_id: 'sub_1', event: 'call.ended', msg_id: 'msg_1',
    status, attempts: 1, chain: 1, next_attempt_at: T + 30_000, lease_until: null, created_at: T, updated_at: T + 1,
    last_attempt_at: T, last_status_code: 500, last_error: 'HTTP 500', ordering_key: 'conv_1', ...overrides,
  };
}
const blocker = (status: DeliveryStatus, blocks_key = false): OrderingBlocker => ({ delivery_id: 'dlv_0', status, blocks_key });

describe('presentDelivery: how the delivery log shows a delivery', () => {
  it('shows pending, paused and waiting (for its key) all as pending, with paused said apart, and the next attempt only while it is due', () => {
    const shown = (status: DeliveryStatus) => presentDelivery(record(status));
    expect(shown('pending')).toMatchObject({ status: 'pending', paused: false, next_attempt_at: new Date(T + 30_000).toISOString() });
    expect(shown('paused')).toMatchObject({ status: 'pending', paused: true, next_attempt_at: new Date(T + 30_000).toISOString() });
    expect(shown('waiting')).toMatchObject({ status: 'pending', paused: false, next_attempt_at: null });
    for (const status of ['delivering', 'delivered', 'failed', 'cancelled'] as const) {
      expect(shown(status)).toMatchObject({ status, paused: false, next_attempt_at: null, waiting_for: null });
    }
  });

  it('says what a waiting ordered delivery waits for, in words, with the blocker\'s status as the API shows it', () => {
    const waitingFor = (status: DeliveryStatus, b: OrderingBlocker) => presentDelivery(record(status), b).waiting_for;
    expect(waitingFor('waiting', blocker('delivering'))).toEqual({ delivery_id: 'dlv_0', status: 'delivering', reason: 'the delivery of the same key in flight' });
    expect(waitingFor('waiting', blocker('failed', true))).toEqual({
      delivery_id: 'dlv_0', status: 'failed', reason: 'a failed delivery of the same key that blocks it (on_failure: block): replay or skip it',
    });
    expect(waitingFor('paused', blocker('paused'))).toEqual({ delivery_id: 'dlv_0', status: 'pending', reason: 'an earlier delivery of the same key, paused with its subscription' });
    expect(waitingFor('pending', blocker('waiting'))).toEqual({ delivery_id: 'dlv_0', status: 'pending', reason: 'an earlier delivery of the same key, not finished yet' });
    expect(waitingFor('waiting', blocker('pending'))).toEqual({ delivery_id: 'dlv_0', status: 'pending', reason: 'an earlier delivery of the same key, not finished yet' });
    // Only a delivery that waits is shown waiting for something.
    expect(waitingFor('delivered', blocker('delivering'))).toBeNull();
    expect(waitingFor('waiting', undefined as unknown as OrderingBlocker)).toBeNull();
  });

  it('shows the ordering fields of an unordered delivery as null and false', () => {
    expect(presentDelivery(record('pending', { ordering_key: undefined, blocks_key: undefined, replay_of: undefined, last_latency_ms: undefined }))).toMatchObject({
      ordering_key: null, blocks_key: false, replay_of: null, last_latency_ms: null, waiting_for: null,
    });
    expect(presentDelivery(record('failed', { blocks_key: true })).blocks_key).toBe(true);
  });
});

describe('DeliveryService.testSend: what it says when no sample fits', () => {
  it('names the whole request ($) when the subscription matches no catalog type, and stores nothing', async () => {
    const stored: unknown[] = [];
    const deps = {
      subscriptions: { get: async () => ({ events: ['gone.*'] }) },
      sampleEvent: () => undefined,
      ingest: { store: async (events: unknown[]) => { stored.push(...events); return []; } },
    } as unknown as DeliveryServiceDeps;
    const err = await new DeliveryService(deps).testSend('sub_1', {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 422, code: 'validation_failed', message: 'No sample event matches.', details: [{ path: '$', message: 'the subscription matches no catalog event type' }] });
    expect(stored).toEqual([]);
  });
});

describe('DeliveryService.replayBulk: a large selection, in transactions of 500', () => {
  it('replays each id once, chunk by chunk, lets other work run between two chunks, and tells the worker only of what was queued', async () => {
    const ids = Array.from({ length: 1000 }, (_, i) => `dlv_${String(i).padStart(4, '0')}`);
    const log: string[] = [];
    const replayed: string[][] = [];
    const told: string[][] = [];
    const deps = {
      subscriptions: { get: async () => ({ id: 'sub_1' }) },
      storage: {
        findDeliveriesForReplay: async () => ids,
        replayDeliveries: async (chunk: string[]) => {
          replayed.push(chunk);
          log.push(`replay ${chunk.length}`);
          // Other work (an ingest, an API call) that arrives while the first chunk commits.
          if (replayed.length === 1) setImmediate(() => log.push('other work'));
          // The second chunk's deliveries were all on the wire meanwhile: nothing is queued.
          return replayed.length === 1 ? chunk.map((id) => ({ id, queued: id })) : [];
        },
      },
      onReplayed: (queued: string[]) => void told.push(queued),
      replayLimit: 1000,
    } as unknown as DeliveryServiceDeps;
    const answer = await new DeliveryService(deps).replayBulk('sub_1', { status: 'failed' });
    expect(replayed).toEqual([ids.slice(0, 500), ids.slice(500)]);
    expect(log).toEqual(['replay 500', 'other work', 'replay 500']);
    expect(told).toEqual([ids.slice(0, 500)]);
    expect(answer).toEqual({ replayed: 500, delivery_ids: ids.slice(0, 500), replayed_as_new: {}, next_cursor: 'dlv_0999' });
  });
});
