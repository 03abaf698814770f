import { describe, expect, it, onTestFinished } from 'vitest';
import {
  createSubscription,
  deliveryFor,
  gatewayForTest,
  postEvent,
  waitForDelivery,
} from '../delivery/delivery-helpers.ts';
import type { TestGateway } from '../support/gateway.ts';
import { startFakeHubSpot, type FakeHubSpotOptions } from './hubspot-fake.ts';

/**
 * The hubspot connector end to end: a subscription created through the API, a fixture event
 * posted to a real gateway, and a local fake of HubSpot's API on the other side.
 */

const TOKEN = 'pat-na1-0f3c9a7e-5b2d-4c1e-9a8f-6d7e5c4b3a21';
const FAST = { schedule: ['0s', '50ms', '50ms'] };
const RATE_LIMIT_429 = {
  status: 'error',
  message: 'You have reached your ten_secondly_rolling limit.',
  errorType: 'RATE_LIMIT',
  correlationId: 'c-429-burst',
  policyName: 'TEN_SECONDLY_ROLLING',
};

async function fakeForTest(options: Partial<FakeHubSpotOptions> = {}) {
  const fake = await startFakeHubSpot({ token: TOKEN, ...options });
  onTestFinished(() => fake.close());
  return fake;
}

async function hubspotSubscription(gw: TestGateway, apiBaseUrl: string, extra: { events?: string[]; options?: Record<string, unknown>; retry?: unknown } = {}) {
  return createSubscription(gw, {
    events: extra.events ?? ['lead.created', 'signal.product_qualified_lead'],
    connector: 'hubspot',
    connector_options: { access_token: TOKEN, api_base_url: apiBaseUrl, min_rate_limit_delay_ms: 0, ...extra.options },
    retry: extra.retry ?? FAST,
    rate_limit: 100,
  });
}

const stepsOf = (attempt: any) => attempt.steps.map((s: any) => [s.name, s.response_status]);

describe('hubspot connector against a fake HubSpot API', () => {
  it('lead.created: writes the contact by email, associates its company, then logs the note; the attempt records every step', async () => {
    const gw = await gatewayForTest();
    const fake = await fakeForTest();
    const sub = await hubspotSubscription(gw, fake.url);
    expect(sub.connector_options.access_token).toBe('********');
    expect(sub.rate_limit).toBe(100);

    const delivery = await waitForDelivery(gw, deliveryFor(await postEvent(gw, 'lead.created'), sub.id));
    expect(delivery).toMatchObject({ status: 'delivered', attempt_count: 1 });
    expect(stepsOf(delivery.attempts[0])).toEqual([
      ['update_contact_by_email', 404],
      ['create_contact', 201],
      ['search_company', 200],
      ['create_company', 201],
      ['associate_company', 200],
      ['find_note', 200],
      ['create_note', 201],
    ]);

    expect(fake.routes()).toEqual(['update_by_email', 'create', 'company_search', 'company_create', 'associate', 'note_search', 'note']);
    const contact = fake.contacts.get('pat.nguyen@example.org')!;
    expect(contact.properties).toMatchObject({ firstname: 'Pat', lastname: 'Nguyen', phone: '+16175550199', company: 'Nguyen Roofing' });
    const [company] = fake.companies.values();
    expect(company.properties).toEqual({ name: 'Nguyen Roofing' });
    expect([...fake.companyAssociations.get(contact.id)!]).toEqual([company.id]);
    expect(fake.notes).toHaveLength(1);
    expect(fake.notes[0]).toMatchObject({ contactIds: [contact.id], associationTypeIds: [202], properties: { hs_timestamp: '2026-04-27T17:42:18Z' } });
    expect(fake.notes[0].properties.hs_note_body).toContain('Lead score: 81');
    // HubSpot got the token; the delivery log never shows it.
    expect(fake.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(delivery.attempts[0].steps.every((s: any) => s.request_headers.authorization === '********')).toBe(true);
    expect(JSON.stringify(delivery)).not.toContain(TOKEN);
  });

  it('signal.product_qualified_lead: an existing contact is updated in place (only the properties sent) and joined to its company by domain', async () => {
    const gw = await gatewayForTest();
    const fake = await fakeForTest();
    // Properties the event does not carry (a phone someone typed in HubSpot) must survive.
    const existing = fake.seedContact('dana@acme.com', { firstname: 'Dana', phone: '+14155550100' });
    const acme = fake.seedCompany({ name: 'ACME Corporation', domain: 'acme.com' });
    const sub = await hubspotSubscription(gw, fake.url);
    const delivery = await waitForDelivery(gw, deliveryFor(await postEvent(gw, 'signal.product_qualified_lead'), sub.id));
    expect(delivery.status).toBe('delivered');
    expect(stepsOf(delivery.attempts[0])).toEqual([['update_contact_by_email', 200], ['search_company', 200], ['associate_company', 200], ['find_note', 200], ['create_note', 201]]);
    expect(fake.requests[0]).toMatchObject({ method: 'PATCH', path: '/crm/v3/objects/contacts/dana%40acme.com', body: { properties: { firstname: 'Dana', lastname: 'Whitfield', company: 'Acme Corp', website: 'https://acme.com' } } });
    expect(fake.requests[0].query.get('idProperty')).toBe('email');
    expect(fake.contacts.size).toBe(1);
    expect(fake.contacts.get('dana@acme.com')).toMatchObject({ id: existing, properties: { phone: '+14155550100', company: 'Acme Corp', website: 'https://acme.com', lastname: 'Whitfield' } });
    expect(fake.companies.size).toBe(1);
    expect([...fake.companyAssociations.get(existing)!]).toEqual([acme]);
    expect(fake.notes[0].contactIds).toEqual([existing]);
    expect(fake.notes[0].properties.hs_note_body).toContain('confidence 92%');
  });

  it('a retry after a failed note step writes the contact again without duplicating it, or its company', async () => {
    const gw = await gatewayForTest();
    const fake = await fakeForTest();
    fake.answerNext('note', { status: 503, body: { status: 'error', message: 'Service Unavailable', category: 'SERVICE_UNAVAILABLE' } });
    const sub = await hubspotSubscription(gw, fake.url);
    const delivery = await waitForDelivery(gw, deliveryFor(await postEvent(gw, 'lead.created'), sub.id));

    expect(delivery).toMatchObject({ status: 'delivered', attempt_count: 2 });
    const contactSteps = [['update_contact_by_email', 404], ['create_contact', 201], ['search_company', 200], ['create_company', 201], ['associate_company', 200], ['find_note', 200]];
    expect(delivery.attempts.map((a: any) => [a.outcome, stepsOf(a)])).toEqual([
      ['retry', [...contactSteps, ['create_note', 503]]],
      ['success', [['update_contact_by_email', 200], ['search_company', 200], ['associate_company', 200], ['find_note', 200], ['create_note', 201]]],
    ]);
    expect(delivery.attempts[0].error).toContain('HTTP 503');
    expect([...fake.contacts.keys()].filter((email) => email === 'pat.nguyen@example.org')).toHaveLength(1);
    expect(fake.contacts.size).toBe(1);
    expect(fake.companies.size).toBe(1);
    expect(fake.notes).toHaveLength(1);
  });

  it('a note whose 201 was lost is not created again: the retry finds it by the event id it carries', async () => {
    const gw = await gatewayForTest();
    const fake = await fakeForTest();
    // HubSpot creates the note, but the answer is lost (a 502 from a proxy on the way back).
    fake.loseNextAnswer('note', { status: 502, body: '<html>Bad Gateway</html>' });
    const sub = await hubspotSubscription(gw, fake.url);
    const event = await postEvent(gw, 'lead.created');
    const delivery = await waitForDelivery(gw, deliveryFor(event, sub.id));

    expect(delivery).toMatchObject({ status: 'delivered', attempt_count: 2 });
    expect(delivery.attempts[0]).toMatchObject({ outcome: 'retry', response: { status: 502 } });
    expect(stepsOf(delivery.attempts[1]).slice(-1)).toEqual([['find_note', 200]]);
    expect(delivery.attempts[1].response.body).toContain(`Sluice event lead.created ${event.id}`);
    expect(fake.notes).toHaveLength(1);
    expect(fake.notes[0].properties.hs_note_body).toContain(`Sluice event lead.created ${event.id}`);
  });

  it('a note the template wrote without the event id gets it appended, so a retry can find it', async () => {
    const gw = await gatewayForTest();
    const fake = await fakeForTest();
    fake.loseNextAnswer('note', { status: 504, body: '' });
    const mapping = '{"contact": {"email": data.lead.email}, "note": {"body": "<p>Lead " & data.lead.id & "</p>"}}';
    const sub = await createSubscription(gw, {
      events: ['lead.created'], connector: 'hubspot', mapping, retry: FAST, rate_limit: 100,
      connector_options: { access_token: TOKEN, api_base_url: fake.url, min_rate_limit_delay_ms: 0 },
    });
    const event = await postEvent(gw, 'lead.created');
    expect((await waitForDelivery(gw, deliveryFor(event, sub.id))).status).toBe('delivered');
    expect(fake.notes).toHaveLength(1);
    expect(fake.notes[0].properties.hs_note_body).toBe(`<p>Lead lead_77f3</p><p>Sluice event lead.created ${event.id}</p>`);
  });

  it('429 TEN_SECONDLY_ROLLING: retried after Retry-After, then delivered', async () => {
    const gw = await gatewayForTest();
    const fake = await fakeForTest();
    fake.answerNext('update_by_email', { status: 429, body: RATE_LIMIT_429, headers: { 'retry-after': '1' } });
    const sub = await hubspotSubscription(gw, fake.url);
    const delivery = await waitForDelivery(gw, deliveryFor(await postEvent(gw, 'lead.created'), sub.id));

    expect(delivery).toMatchObject({ status: 'delivered', attempt_count: 2 });
    const [limited, delivered] = delivery.attempts;
    expect(limited).toMatchObject({ outcome: 'retry', response: { status: 429 } });
    expect(limited.error).toContain('TEN_SECONDLY_ROLLING');
    expect(limited.error).toContain('You have reached your ten_secondly_rolling limit.');
    // The 50 ms schedule step gave way to Retry-After: 1.
    expect(Date.parse(delivered.started_at) - Date.parse(limited.started_at)).toBeGreaterThanOrEqual(950);
    expect(fake.contacts.size).toBe(1);
  });

  it('429 without Retry-After: the next attempt is scheduled at the 10 s floor by default', async () => {
    const gw = await gatewayForTest();
    const fake = await fakeForTest();
    fake.answerNext('update_by_email', { status: 429, body: RATE_LIMIT_429 });
    const sub = await createSubscription(gw, {
      events: ['lead.created'],
      connector: 'hubspot',
      connector_options: { access_token: TOKEN, api_base_url: fake.url },
      retry: FAST,
    });
    expect(sub.rate_limit).toBe(1);
    const id = deliveryFor(await postEvent(gw, 'lead.created'), sub.id);
    const delivery = await waitForDelivery(gw, id, (d) => d.attempt_count === 1 && d.status === 'pending');
    const waited = Date.parse(delivery.next_attempt_at) - Date.parse(delivery.attempts[0].started_at);
    expect(waited).toBeGreaterThanOrEqual(9_900);
    expect(waited).toBeLessThan(15_000);
  });

  it('429 DAILY: the next attempt waits an hour', async () => {
    const gw = await gatewayForTest();
    const fake = await fakeForTest();
    fake.answerNext('update_by_email', { status: 429, body: { ...RATE_LIMIT_429, message: 'You have reached your daily limit.', policyName: 'DAILY' } });
    const sub = await hubspotSubscription(gw, fake.url);
    const id = deliveryFor(await postEvent(gw, 'lead.created'), sub.id);
    const delivery = await waitForDelivery(gw, id, (d) => d.attempt_count === 1 && d.status === 'pending');
    expect(Date.parse(delivery.next_attempt_at) - Date.parse(delivery.attempts[0].started_at)).toBeGreaterThanOrEqual(3_590_000);
    expect(delivery.attempts[0].error).toContain('daily API limit');
  });

  it('upsert_mode "search": the 409 "Contact already exists. Existing ID: N" becomes an update of N', async () => {
    const gw = await gatewayForTest();
    const fake = await fakeForTest({ searchLags: true });
    const existing = fake.seedContact('pat.nguyen@example.org');
    const sub = await hubspotSubscription(gw, fake.url, { options: { upsert_mode: 'search' } });
    const delivery = await waitForDelivery(gw, deliveryFor(await postEvent(gw, 'lead.created'), sub.id));

    expect(delivery.status).toBe('delivered');
    expect(stepsOf(delivery.attempts[0])).toEqual([['search_contact', 200], ['create_contact', 409], ['update_contact', 200], ['search_company', 200], ['create_company', 201], ['associate_company', 200], ['find_note', 200], ['create_note', 201]]);
    expect(delivery.attempts[0].steps[1].response_body).toContain(`Contact already exists. Existing ID: ${existing}`);
    expect(fake.requests[2]).toMatchObject({ method: 'PATCH', path: `/crm/v3/objects/contacts/${existing}` });
    expect(fake.contacts.size).toBe(1);
    expect(fake.contacts.get('pat.nguyen@example.org')).toMatchObject({ id: existing, properties: { firstname: 'Pat', company: 'Nguyen Roofing' } });
    expect(fake.notes[0].contactIds).toEqual([existing]);
  });

  it('upsert_mode "search": a new email is created, then noted', async () => {
    const gw = await gatewayForTest();
    const fake = await fakeForTest();
    const sub = await hubspotSubscription(gw, fake.url, { options: { upsert_mode: 'search' } });
    const delivery = await waitForDelivery(gw, deliveryFor(await postEvent(gw, 'lead.created'), sub.id));
    expect(stepsOf(delivery.attempts[0]).map(([name]: [string]) => name)).toEqual(['search_contact', 'create_contact', 'search_company', 'create_company', 'associate_company', 'find_note', 'create_note']);
    expect(fake.contacts.size).toBe(1);
  });

  it('400 VALIDATION_ERROR fails the delivery at once with HubSpot\'s messages', async () => {
    const gw = await gatewayForTest();
    const fake = await fakeForTest();
    const sub = await hubspotSubscription(gw, fake.url, { options: { lead_score_property: 'sluice_lead_score' } });
    const delivery = await waitForDelivery(gw, deliveryFor(await postEvent(gw, 'lead.created'), sub.id));

    expect(delivery).toMatchObject({ status: 'failed', attempt_count: 1, last_status_code: 400 });
    expect(delivery.attempts[0].outcome).toBe('fail');
    expect(delivery.attempts[0].error).toMatch(/^HubSpot rejected the create_contact request \(HTTP 400 VALIDATION_ERROR: Property values were not valid \(Property "sluice_lead_score" does not exist\)/);
    expect(fake.routes()).toEqual(['update_by_email', 'create']);
  });

  it('401 disables the subscription with HubSpot\'s message, and never logs the token', async () => {
    const gw = await gatewayForTest();
    const fake = await fakeForTest({ token: 'pat-na1-the-one-hubspot-knows' });
    const sub = await hubspotSubscription(gw, fake.url);
    const delivery = await waitForDelivery(gw, deliveryFor(await postEvent(gw, 'lead.created'), sub.id));

    expect(delivery).toMatchObject({ status: 'failed', attempt_count: 1, last_status_code: 401 });
    expect(delivery.attempts[0].outcome).toBe('disabled');
    const after = (await gw.api('GET', `/api/v1/webhooks/${sub.id}`)).body;
    expect(after.enabled).toBe(false);
    expect(after.disabled_reason).toContain('HubSpot rejected the access token (HTTP 401 INVALID_AUTHENTICATION: Authentication credentials not found.');
    expect(JSON.stringify(delivery)).not.toContain(TOKEN);
    expect(delivery.attempts[0].request.headers.authorization).toBe('********');
  });

  it('an event with no email fails permanently without calling HubSpot', async () => {
    const gw = await gatewayForTest();
    const fake = await fakeForTest();
    const sub = await hubspotSubscription(gw, fake.url, { events: ['call.ended'] });
    const delivery = await waitForDelivery(gw, deliveryFor(await postEvent(gw, 'call.ended'), sub.id));
    expect(delivery).toMatchObject({ status: 'failed', attempt_count: 1 });
    expect(delivery.attempts[0].error).toContain('the call.ended event has no email address');
    expect(fake.requests).toHaveLength(0);
  });

  it('GET /api/v1/connectors lists hubspot with its options schema', async () => {
    const gw = await gatewayForTest();
    const res = await gw.api('GET', '/api/v1/connectors');
    const hubspot = res.body.data.find((c: any) => c.name === 'hubspot');
    expect(hubspot).toMatchObject({ url: 'none', secret_options: ['access_token'], default_mapping: 'hubspot/default', defaults: { rate_limit: 1 } });
    expect(Object.keys(hubspot.options_schema.properties)).toEqual(['access_token', 'api_base_url', 'api_version', 'upsert_mode', 'lead_score_property', 'min_rate_limit_delay_ms']);
  });

  it('rejects a subscription without a token or with an unknown option', async () => {
    const gw = await gatewayForTest();
    const res = await gw.api('POST', '/api/v1/webhooks', { events: ['lead.created'], connector: 'hubspot', connector_options: { api_base_url: 'https://api.hubapi.com', colour: 'blue' } });
    expect(res.status).toBe(422);
    const paths = res.body.error.details.map((d: any) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['$.connector_options.access_token', '$.connector_options.colour']));
  });
});
