import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, startGateway, waitFor, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';

let gw: TestGateway;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let release: () => void = () => undefined;

beforeAll(async () => {
  // /hold answers only once told to: its delivery stays in flight meanwhile. /fail answers 500.
  receiver = await startReceiver((req) => {
    if (req.url === '/hold') return { until: new Promise<void>((resolve) => (release = resolve)) };
    if (req.url === '/fail') return { status: 500 };
  });
  gw = await startGateway();
});
afterAll(async () => {
  release();
  await gw.stop();
  await receiver.close();
});

const subscribe = async (path: string, events: string[], extra: Record<string, unknown> = {}) =>
  (await gw.api('POST', '/api/v1/webhooks', { url: receiver.url + path, events, ...extra })).body.id as string;

describe('DELETE /api/v1/events/{id}', () => {
  it('erases the event, its delivered and pending deliveries and their attempts; every id answers 404 after, and so does a second call', async () => {
    await subscribe('/ok', ['call.ended']);
    // Fails once, then waits an hour: a pending delivery with an attempt.
    await subscribe('/fail', ['call.ended'], { retry: { schedule: ['0s', '1h'] } });
    const event = { ...fixture('call.ended'), id: 'evt_erase_me' };
    const accepted = (await gw.api('POST', '/api/v1/events', event)).body;
    const ids: string[] = accepted.deliveries.map((d: { id: string }) => d.id);
    await waitFor(async () => {
      const states = await Promise.all(ids.map(async (id) => (await gw.api('GET', `/api/v1/deliveries/${id}`)).body));
      return states.every((d) => d.attempts.length === 1 && d.status !== 'delivering');
    }, 5_000, 'one attempt of each delivery');

    const erased = await gw.api('DELETE', '/api/v1/events/evt_erase_me');
    expect(erased.status).toBe(200);
    expect(erased.body).toEqual({ id: 'evt_erase_me', erased: true, deliveries: 2, cancelled: 1, attempts: 2 });
    for (const id of ids) expect((await gw.api('GET', `/api/v1/deliveries/${id}`)).status).toBe(404);
    expect(await gw.sluice.storage.getEvent('evt_erase_me')).toBeUndefined();
    const again = await gw.api('DELETE', '/api/v1/events/evt_erase_me');
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('not_found');
  });

  it('refuses an event with an attempt on the wire (409, Retry-After) and erases it once the attempt finished', async () => {
    await subscribe('/hold', ['call.failed']);
    const event = { ...fixture('call.failed'), id: 'evt_in_flight' };
    const [delivery] = (await gw.api('POST', '/api/v1/events', event)).body.deliveries;
    await waitFor(() => receiver.requests.some((r) => r.url === '/hold'), 5_000, 'the held attempt');

    const refused = await gw.api('DELETE', '/api/v1/events/evt_in_flight');
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('event_in_flight');
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(refused.body.error.message).toMatch(/^An attempt of this event is being sent right now; nothing was erased/);
    expect(refused.body.error.details).toEqual([{ message: 'delivery in flight', delivery_ids: [delivery.id] }]);
    expect((await gw.api('GET', `/api/v1/deliveries/${delivery.id}`)).body.status).toBe('delivering');

    release();
    await waitFor(async () => (await gw.api('GET', `/api/v1/deliveries/${delivery.id}`)).body.status === 'delivered', 5_000, 'the attempt to finish');
    expect((await gw.api('DELETE', '/api/v1/events/evt_in_flight')).body).toMatchObject({ erased: true, deliveries: 1, attempts: 1 });
    expect((await gw.api('GET', `/api/v1/deliveries/${delivery.id}`)).status).toBe(404);
  });

  it.each([
    ['a path separator', 'evt%2F..%2Fsecrets', 400, 'invalid_path', /^This is not an event id: ids are 1 to 255 letters/],
    ['a dot segment', '..%2E', 400, 'invalid_path', /^This is not an event id/],
    ['broken percent-encoding', 'evt_%E0%A4%A', 400, 'bad_request', /./],
    ['an unknown id', 'evt_never_seen', 404, 'not_found', /^Event evt_never_seen /],
  ])('answers %s (%s) with a clear %i', async (_what, id, status, code, message) => {
    const res = await gw.api('DELETE', `/api/v1/events/${id}`);
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
    expect(res.body.error.message).toMatch(message);
    // Where the problem is: the id in the path.
    if (code === 'invalid_path') expect(res.body.error.details).toEqual([{ path: 'path:id', message: 'is not a valid event id' }]);
  });

  it('needs an admin key', async () => {
    const read = (await gw.api('POST', '/api/v1/keys', { role: 'read' })).body.key;
    const ingest = (await gw.api('POST', '/api/v1/keys', { role: 'ingest' })).body.key;
    expect((await gw.api('DELETE', '/api/v1/events/evt_x', undefined, read)).status).toBe(403);
    expect((await gw.api('DELETE', '/api/v1/events/evt_x', undefined, ingest)).status).toBe(403);
  });
});
