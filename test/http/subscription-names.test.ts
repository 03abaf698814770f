import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../support/gateway.ts';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(() => gw.stop());

const body = (extra: Record<string, unknown>) => ({ url: 'http://127.0.0.1:9/hook', events: ['call.ended'], ...extra });

describe('subscription names', () => {
  it('are optional, shown, unique among live subscriptions, and free again once deleted', async () => {
    const unnamed = await gw.api('POST', '/api/v1/webhooks', body({}));
    expect(unnamed.body.name).toBeNull();
    const first = await gw.api('POST', '/api/v1/webhooks', body({ name: 'crm-sync' }));
    expect(first.status).toBe(201);
    expect(first.body.name).toBe('crm-sync');
    const clash = await gw.api('POST', '/api/v1/webhooks', body({ name: 'crm-sync' }));
    expect(clash.status).toBe(409);
    expect(clash.body.error).toMatchObject({ code: 'name_taken', details: [{ path: '$.name', message: 'is already taken' }] });
    const renameClash = await gw.api('PATCH', `/api/v1/webhooks/${unnamed.body.id}`, { name: 'crm-sync' });
    expect(renameClash.status).toBe(409);
    expect((await gw.api('PATCH', `/api/v1/webhooks/${first.body.id}`, { name: 'crm-sync' })).status).toBe(200); // its own name
    expect((await gw.api('DELETE', `/api/v1/webhooks/${first.body.id}`)).status).toBe(200);
    const again = await gw.api('PATCH', `/api/v1/webhooks/${unnamed.body.id}`, { name: 'crm-sync' });
    expect(again.status).toBe(200);
    expect(again.body.name).toBe('crm-sync');
  });

  it('refuse a malformed name with its path', async () => {
    const res = await gw.api('POST', '/api/v1/webhooks', body({ name: 'CRM Sync!' }));
    expect(res.status).toBe(422);
    expect(res.body.error.details[0].path).toBe('$.name');
  });
});
