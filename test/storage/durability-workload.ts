import { expect } from 'vitest';
import { waitFor, type TestGateway } from '../support/gateway.ts';
import { createSubscription, eventFrom } from '../delivery/delivery-helpers.ts';

/**
 * The work both durability tests watch a gateway do (SQLite's synchronous = FULL, PostgreSQL's
 * synchronous_commit): rounds of three events each, a subscription update, a replay and a new API
 * key, each round after the worker claimed and recorded the previous one's attempts (a positive
 * signal), so caller writes keep coming after the worker's relaxed ones. The receiver should fail
 * some requests, so retries keep the worker claiming and recording between ingests.
 */
export async function durabilityWorkload(gw: TestGateway, receiverUrl: string, rounds: number): Promise<void> {
  const sub = await createSubscription(gw, { url: `${receiverUrl}/hook`, events: ['call.*'], retry: { schedule: ['0s', '20ms', '20ms', '20ms'] } });
  const delivered = new Set<string>();
  for (let round = 0; round < rounds; round++) {
    const accepted = await Promise.all([0, 1, 2].map(() => gw.api('POST', '/api/v1/events', eventFrom('call.ended'))));
    for (const a of accepted) expect(a.status).toBe(202);
    const ids = accepted.map((a) => a.body.deliveries[0].id as string);
    await waitFor(async () => {
      for (const id of ids) if ((await gw.api('GET', `/api/v1/deliveries/${id}`)).body.status === 'delivered') delivered.add(id);
      return ids.every((id) => delivered.has(id));
    }, 20_000, `round ${round} delivered`);
    expect((await gw.api('PATCH', `/api/v1/webhooks/${sub.id}`, { description: `round ${round}` })).status).toBe(200);
    expect((await gw.api('POST', `/api/v1/deliveries/${ids[0]}/replay`)).status).toBeLessThan(300);
    expect((await gw.api('POST', '/api/v1/keys', { role: 'read', name: `k${round}` })).status).toBe(201);
  }
}
