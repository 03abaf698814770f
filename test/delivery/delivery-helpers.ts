import net from 'node:net';
import { expect, onTestFinished } from 'vitest';
import { fixture, startGateway, waitFor, type TestGateway } from '../support/gateway.ts';
import { startReceiver, type Responder } from '../support/receiver.ts';

/** Shared set-up for the delivery engine's end-to-end tests: real gateways, real receivers. */

export type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** A gateway for this test only, stopped when the test ends (so no test sees another's events). */
export async function gatewayForTest(env: Record<string, string> = {}): Promise<TestGateway> {
  const gw = await startGateway(env);
  onTestFinished(() => gw.stop());
  return gw;
}

/** A receiver for this test only, closed when the test ends. */
export async function receiverForTest(respond?: Responder): Promise<Receiver> {
  const receiver = await startReceiver(respond);
  onTestFinished(() => receiver.close());
  return receiver;
}

/** Creates a subscription (201 expected); the body includes `signing_secret`, shown once. */
export async function createSubscription(gw: TestGateway, body: Record<string, unknown>): Promise<Record<string, any>> {
  const res = await gw.api('POST', '/api/v1/webhooks', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

let counter = 0;
/** An event id unique within the test run. */
export function uniqueEventId(label = 'e2e'): string {
  counter += 1;
  return `evt_${label}_${process.pid}_${Date.now().toString(36)}_${counter}`;
}

/** A realistic event from the shared fixtures, with a fresh id so it is never a duplicate. */
export function eventFrom(name: string, id = uniqueEventId()): { event: string; id: string; timestamp: string; data: any } {
  return { ...fixture(name), id };
}

/** Posts one fixture event (202 expected); returns the event id and its deliveries. */
export async function postEvent(gw: TestGateway, name = 'call.ended', id?: string): Promise<{ id: string; deliveries: { id: string; subscription_id: string }[] }> {
  const res = await gw.api('POST', '/api/v1/events', eventFrom(name, id));
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

/** The one delivery an event created for a subscription. */
export function deliveryFor(accepted: { deliveries: { id: string; subscription_id: string }[] }, subscriptionId: string): string {
  const match = accepted.deliveries.find((d) => d.subscription_id === subscriptionId);
  expect(match, `a delivery for ${subscriptionId} in ${JSON.stringify(accepted.deliveries)}`).toBeDefined();
  return match!.id;
}

export async function getDelivery(gw: TestGateway, id: string): Promise<Record<string, any>> {
  const res = await gw.api('GET', `/api/v1/deliveries/${id}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

/** Polls the delivery log until the delivery satisfies `done` (a final status by default). */
export async function waitForDelivery(
  gw: TestGateway,
  id: string,
  done: (d: Record<string, any>) => boolean = (d) => d.status === 'delivered' || d.status === 'failed',
  timeoutMs = 10_000,
): Promise<Record<string, any>> {
  let last: Record<string, any> | undefined;
  try {
    return await waitFor(async () => {
      last = await getDelivery(gw, id);
      return done(last) ? last : undefined;
    }, timeoutMs, `delivery ${id}`);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(last)}`);
  }
}

/** A loopback port with nothing listening on it (bound, then closed). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A header as one string (Node gives string | string[] | undefined). */
export function header(headers: Record<string, string | string[] | undefined>, name: string): string {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : (value ?? '');
}

/**
 * A positive signal instead of a fixed sleep before checking that "nothing more was sent":
 * a sentinel subscription on the same receiver (path `/sentinel`), for an event type the test's
 * own subscriptions do not take, whose first attempt is due `dueInMs` after it is posted. Claims
 * go in due order, so once the sentinel has arrived, anything the worker would still have sent
 * for earlier deliveries due before it (a stray retry within the test's schedule) was sent too.
 */
export async function sentinelArrives(gw: TestGateway, receiver: Receiver, dueInMs = 300, eventName = 'lead.created'): Promise<void> {
  const sub = await createSubscription(gw, { url: `${receiver.url}/sentinel`, events: [eventName], retry: { schedule: [`${dueInMs}ms`] } });
  const accepted = await postEvent(gw, eventName);
  deliveryFor(accepted, sub.id);
  await waitFor(() => receiver.requests.some((r) => r.url === '/sentinel' && r.body.includes(accepted.id)), 15_000, 'the sentinel delivery');
}

/** A loopback TCP server that only counts connections: proof of whether anything connected. */
export async function connectionCounter() {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
