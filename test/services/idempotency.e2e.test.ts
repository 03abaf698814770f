import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, tempDir } from '../support/gateway.ts';
import { callApi, killGateways, spawnGateway, type GatewayProcess } from '../support/gateway-process.ts';
import { expectError } from '../support/error-shape.ts';

/**
 * Attacks on idempotency, against a running gateway process: one client must never get
 * another's answer, nor have its event dropped as somebody else's duplicate.
 */

let gw: GatewayProcess;
const ingest: string[] = [];
let seq = 0;

beforeAll(async () => {
  gw = await spawnGateway(tempDir());
  for (const name of ['platform a', 'platform b']) ingest.push((await callApi(gw, 'POST', '/api/v1/keys', { role: 'ingest', name })).body.key);
});
afterAll(killGateways);

const lead = (email: string) => ({ event: 'lead.created', data: { lead: { ...fixture('lead.created').data.lead, email } } });
const post = (key: string, body: unknown, idempotencyKey?: string) => callApi(gw, 'POST', '/api/v1/events', body, key, idempotencyKey ? { 'idempotency-key': idempotencyKey } : {});

describe('idempotency', () => {
  it('scopes Idempotency-Key per API key: another client using the same key gets its own event stored', async () => {
    const first = await post(ingest[0], lead('a@example.com'), 'order-1');
    expect(first.status).toBe(202);
    const second = await post(ingest[1], lead('b@example.com'), 'order-1');
    expect(second.status, JSON.stringify(second.body)).toBe(202);
    expect(second.body.duplicate).toBe(false);
    expect(second.body.id).not.toBe(first.body.id);
  });

  it('a repeat with the same key and body is 200 with the first answer; another body is 409', async () => {
    const first = await post(ingest[0], lead('c@example.com'), 'order-2');
    const again = await post(ingest[0], lead('c@example.com'), 'order-2');
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...first.body, duplicate: true });
    const other = await post(ingest[0], lead('someone-else@example.com'), 'order-2');
    expectError(other, 409, 'idempotency_key_conflict');
    expect(other.body.error.details[0].path).toBe('header:Idempotency-Key');
  });

  it('an event id reused for different content is 409, whichever key sends it', async () => {
    const id = `evt_idem_${process.pid}_${++seq}`;
    expect((await post(ingest[0], { ...lead('d@example.com'), id })).status).toBe(202);
    expect((await post(ingest[1], { ...lead('d@example.com'), id })).status).toBe(200);
    const forged = await post(ingest[1], { ...lead('attacker@example.com'), id });
    expectError(forged, 409, 'event_id_conflict');
  });

  it('a batch holding a conflicting id is refused whole, with the item\'s path', async () => {
    const id = `evt_idem_${process.pid}_${++seq}`;
    expect((await post(ingest[0], { ...lead('e@example.com'), id })).status).toBe(202);
    const freshId = `evt_idem_${process.pid}_${++seq}`;
    const batch = await callApi(gw, 'POST', '/api/v1/events/batch', [{ ...lead('f@example.com'), id: freshId }, { ...lead('changed@example.com'), id }], ingest[0]);
    expectError(batch, 409, 'event_id_conflict');
    expect(batch.body.error.details[0].path).toBe('$[1].id');
    // Nothing of the batch was stored: the fresh event is new when sent alone.
    expect((await post(ingest[0], { ...lead('f@example.com'), id: freshId })).status).toBe(202);
  });
});
