import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { takeTokens } from '../../src/core/token-bucket.ts';

let gw: TestGateway;
let clock = Date.parse('2026-03-01T12:00:00Z');

beforeAll(async () => {
  gw = await startGateway({}, { now: () => clock });
});
afterAll(() => gw.stop());

const event = (i: number) => ({ event: 'lead.created', data: { lead: { id: `lead_${i}`, email: `l${i}@example.com` } } });
let n = 0;
const post = (key: string) => gw.api('POST', '/api/v1/events', event(n++), key);
const batch = (key: string, size: number) => gw.api('POST', '/api/v1/events/batch', Array.from({ length: size }, () => event(n++)), key);

describe('token bucket', () => {
  it('starts full, refills at the rate, caps at the burst, and says when enough will be there', () => {
    let r = takeTokens(undefined, 0, 3, 2, 3);
    expect(r).toMatchObject({ allowed: true, bucket: { tokens: 0 } });
    r = takeTokens(r.bucket, 250, 1, 2, 3);
    expect(r).toMatchObject({ allowed: false, retryAfterMs: 250 });
    expect(takeTokens(r.bucket, 500, 1, 2, 3).allowed).toBe(true);
    expect(takeTokens({ tokens: 0, at: 0 }, 60_000, 4, 2, 3)).toMatchObject({ allowed: false, retryAfterMs: Infinity });
    expect(takeTokens({ tokens: 0, at: 0 }, 60_000, 3, 2, 3)).toMatchObject({ allowed: true, bucket: { tokens: 0 } });
  });
});

describe('ingest quotas per API key', () => {
  it('answers 429 with Retry-After beyond rate_limit and its burst, counts each event of a batch, and accepts again once tokens flowed back', async () => {
    const created = await gw.api('POST', '/api/v1/keys', { role: 'ingest', name: 'metered', rate_limit: 2, rate_burst: 4 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ rate_limit: 2, rate_burst: 4 });
    const key = created.body.key;

    for (let i = 0; i < 3; i++) expect((await post(key)).status).toBe(202);
    expect((await batch(key, 2)).status).toBe(429); // one token left, the batch needs two
    expect((await batch(key, 1)).status).toBe(202);
    const refused = await post(key);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body.error).toMatchObject({ code: 'rate_limited', details: [{ rate_limit: 2, rate_burst: 4 }] });

    clock += 1_000; // two tokens back
    expect((await batch(key, 2)).status).toBe(202);
    expect((await post(key)).status).toBe(429);
    // A batch above the burst could never pass: 422, not a Retry-After to wait for forever.
    clock += 60_000;
    const tooBig = await batch(key, 5);
    expect(tooBig.status).toBe(422);
    expect(tooBig.body.error.code).toBe('batch_exceeds_quota');

    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/sluice_ingest_refused_total\{reason="quota"\} 4/);
  });

  it('leaves keys without a limit as they were, and lets an admin set and lift a quota', async () => {
    const { id, key, rate_limit } = (await gw.api('POST', '/api/v1/keys', { role: 'ingest' })).body;
    expect(rate_limit).toBeNull();
    expect((await batch(key, 50)).status).toBe(202);

    const limited = await gw.api('PATCH', `/api/v1/keys/${id}`, { rate_limit: 1 });
    expect(limited.body).toMatchObject({ id, rate_limit: 1, rate_burst: 1 });
    expect((await post(key)).status).toBe(202);
    expect((await post(key)).status).toBe(429);
    expect((await gw.api('PATCH', `/api/v1/keys/${id}`, { rate_limit: null })).body).toMatchObject({ rate_limit: null, rate_burst: null });
    expect((await post(key)).status).toBe(202);
  });

  it.each([
    [{ role: 'ingest', rate_limit: 0 }, '$.rate_limit'],
    [{ role: 'ingest', rate_limit: 'fast' }, '$.rate_limit'],
    [{ role: 'ingest', rate_limit: 5, rate_burst: 2.5 }, '$.rate_burst'],
    [{ role: 'ingest', rate_burst: 10 }, '$.rate_burst'],
    [{ role: 'ingest', rate: 10 }, '$.rate'],
  ])('refuses %j with 422 at %s', async (body, at) => {
    const res = await gw.api('POST', '/api/v1/keys', body);
    expect(res.status).toBe(422);
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(at);
  });

  it('answers 404 for a quota on an unknown key, 422 for an empty change', async () => {
    expect((await gw.api('PATCH', '/api/v1/keys/key_nope', { rate_limit: 3 })).status).toBe(404);
    expect((await gw.api('PATCH', '/api/v1/keys/key_nope', {})).status).toBe(422);
  });
});
