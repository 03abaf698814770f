import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DAILY_LIMIT_DELAY_MS, LOCKED_DELAY_MS, MIGRATION_DELAY_MS, hubspotConnector } from '../../connectors/hubspot/index.ts';
import { NOTE_BODY_MAX_CHARS, capNoteBody } from '../../connectors/hubspot/requests.ts';
import type { ConnectorContext, OutboundRequest, ResponseInfo, Verdict } from '../../src/delivery/connector.ts';
import { MappingRegistry } from '../../src/services/mapping-registry.ts';
import { ROOMY_LIMITS } from '../support/limits.ts';
import { REPO_ROOT, fixture } from '../support/gateway.ts';

const TOKEN = 'pat-na1-11111111-2222-3333-4444-555555555555';
const BASE = 'https://api.hubapi.com';
const HEADERS = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', accept: 'application/json' };

type Event = ReturnType<typeof fixture>;

const registry = new MappingRegistry({ dir: path.join(REPO_ROOT, 'mappings'), limits: ROOMY_LIMITS });
beforeAll(async () => {
  await registry.load();
});

function context(payload: unknown, event: Event, options: Record<string, unknown> = {}): ConnectorContext {
  const all = { access_token: TOKEN, ...options };
  return {
    url: hubspotConnector.resolveUrl!(all),
    options: all,
    payload,
    event: { id: event.id, event: event.event, timestamp: event.timestamp, data: event.data },
    deliveryId: 'dlv_test_1',
    msgId: 'msg_test_1',
    headers: {},
  };
}

/** The default template's output for a fixture, as the engine renders it (non-secret options only). */
async function render(event: Event, options: Record<string, unknown> = {}): Promise<ConnectorContext> {
  const { access_token: _secret, ...visible } = { access_token: TOKEN, ...options };
  const payload = await registry.render(hubspotConnector.defaultMapping!, event, { options: visible });
  return context(payload, event, options);
}

function respond(status: number, body: unknown = '', headers: Record<string, string> = {}): ResponseInfo {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) };
}

function next(verdict: Verdict): OutboundRequest {
  expect(verdict.outcome, JSON.stringify(verdict)).toBe('continue');
  return (verdict as Extract<Verdict, { outcome: 'continue' }>).next;
}

function json(request: OutboundRequest): unknown {
  return JSON.parse(request.body!);
}

/**
 * From a verdict after the contact step to the note creation, answering each step in between
 * as HubSpot would for a new company and no earlier note: the create_note request.
 */
function toNote(ctx: ConnectorContext, verdict: Verdict): OutboundRequest {
  let request = next(verdict);
  const answers: Record<string, ResponseInfo> = {
    search_company: respond(200, { total: 0, results: [] }),
    create_company: respond(201, { id: '55', properties: {} }),
    associate_company: respond(200, { status: 'COMPLETE', results: [] }),
    find_note: respond(200, { total: 0, results: [] }),
  };
  while (request.step !== 'create_note') request = next(hubspotConnector.classifyResponse(answers[request.step!], ctx, request));
  return request;
}

const CONTACT_OK = (id: string) => ({ id, properties: { email: 'pat.nguyen@example.org', hs_object_id: id }, createdAt: '2026-04-27T17:42:19.120Z', updatedAt: '2026-04-27T17:42:19.120Z', archived: false });

const UPSERT_OK = (id = '1201', isNew = true) => ({
  status: 'COMPLETE',
  results: [{ id, properties: { email: 'pat.nguyen@example.org', hs_object_id: id }, createdAt: '2026-04-27T17:42:19.120Z', updatedAt: '2026-04-27T17:42:19.120Z', archived: false, new: isNew }],
  startedAt: '2026-04-27T17:42:19.100Z',
  completedAt: '2026-04-27T17:42:19.130Z',
});
const NOTE_OK = { id: '9001', properties: { hs_timestamp: '2026-04-27T17:42:18Z' }, createdAt: '2026-04-27T17:42:19.200Z', updatedAt: '2026-04-27T17:42:19.200Z', archived: false };

const LEAD_NOTE_BODY =
  '<p><strong>New lead</strong> from Nguyen Roofing</p><p>Lead score: 81<br>Source call: call_abc123<br>Lead ID: lead_77f3</p><p>Sluice event lead.created evt_01HZX3K9Q2LEADCREATE0001</p>';
const PQL_NOTE_BODY =
  '<p><strong>Product-qualified lead</strong>: Acme Corp (acme.com), confidence 92%</p><p>Signals:</p><ul><li>visited pricing page</li><li>invited team member</li><li>api key created</li></ul><p>Source: posthog<br>Hypothesis: hyp_8g2k<br>Company size: 50-200<br>Industry: SaaS<br>Detected at: 2026-04-29T14:31:08Z</p><p>Sluice event signal.product_qualified_lead evt_01HZX3K9Q2PQLSIGNAL00001</p>';

describe('hubspot golden requests (fixture + default template)', () => {
  it('lead.created: update by email, create on 404, company found or created and associated, no earlier note, then the note', async () => {
    const ctx = await render(fixture('lead.created'));
    const update = hubspotConnector.buildRequest(ctx);
    expect(update).toEqual({
      step: 'update_contact_by_email',
      method: 'PATCH',
      url: `${BASE}/crm/v3/objects/contacts/pat.nguyen%40example.org?idProperty=email`,
      headers: HEADERS,
      body: JSON.stringify({ properties: { firstname: 'Pat', lastname: 'Nguyen', phone: '+16175550199', company: 'Nguyen Roofing' } }),
      sign: false,
    });
    // HubSpot has no contact with that email: create it, email included.
    const create = next(hubspotConnector.classifyResponse(respond(404, { status: 'error', message: 'resource not found', category: 'OBJECT_NOT_FOUND' }), ctx, update));
    expect(create).toMatchObject({ step: 'create_contact', method: 'POST', url: `${BASE}/crm/v3/objects/contacts` });
    expect(json(create)).toEqual({ properties: { email: 'pat.nguyen@example.org', firstname: 'Pat', lastname: 'Nguyen', phone: '+16175550199', company: 'Nguyen Roofing' } });

    const searchCompany = next(hubspotConnector.classifyResponse(respond(201, CONTACT_OK('1201')), ctx, create));
    expect(searchCompany).toMatchObject({ step: 'search_company', method: 'POST', url: `${BASE}/crm/v3/objects/companies/search`, state: { contactId: '1201' } });
    expect(json(searchCompany)).toEqual({ filterGroups: [{ filters: [{ propertyName: 'name', operator: 'EQ', value: 'Nguyen Roofing' }] }], properties: ['name', 'domain'], limit: 1 });
    const associate = next(hubspotConnector.classifyResponse(respond(200, { total: 1, results: [{ id: '301', properties: { name: 'Nguyen Roofing' } }] }), ctx, searchCompany));
    expect(associate).toEqual({
      step: 'associate_company',
      method: 'PUT',
      url: `${BASE}/crm/v4/objects/contact/1201/associations/default/company/301`,
      headers: HEADERS,
      body: null,
      sign: false,
      state: { contactId: '1201', companyId: '301' },
    });

    const findNote = next(hubspotConnector.classifyResponse(respond(200, { status: 'COMPLETE', results: [] }), ctx, associate));
    expect(findNote).toMatchObject({ step: 'find_note', method: 'POST', url: `${BASE}/crm/v3/objects/notes/search` });
    expect(json(findNote)).toEqual({
      filterGroups: [{ filters: [
        { propertyName: 'associations.contact', operator: 'EQ', value: '1201' },
        { propertyName: 'hs_timestamp', operator: 'EQ', value: String(Date.parse('2026-04-27T17:42:18Z')) },
      ] }],
      properties: ['hs_note_body', 'hs_timestamp'],
      limit: 20,
    });
    const note = next(hubspotConnector.classifyResponse(respond(200, { total: 1, results: [{ id: '8000', properties: { hs_note_body: '<p>Sluice event lead.created evt_OTHER</p>' } }] }), ctx, findNote));
    expect(note).toEqual({
      step: 'create_note',
      method: 'POST',
      url: `${BASE}/crm/v3/objects/notes`,
      headers: HEADERS,
      body: JSON.stringify({
        properties: { hs_timestamp: '2026-04-27T17:42:18Z', hs_note_body: LEAD_NOTE_BODY },
        associations: [{ to: { id: '1201' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 202 }] }],
      }),
      sign: false,
    });
    expect(hubspotConnector.classifyResponse(respond(201, NOTE_OK), ctx, note)).toEqual({ outcome: 'success', note: 'note 9001' });
  });

  it('a retry whose note was created before (its 201 lost) finds it by the event marker and creates none', async () => {
    const ctx = await render(fixture('lead.created'));
    const findNote = toNote(ctx, hubspotConnector.classifyResponse(respond(200, CONTACT_OK('1201')), ctx, hubspotConnector.buildRequest(ctx)));
    expect(findNote.step).toBe('create_note');
    const search = { ...findNote, step: 'find_note', state: { contactId: '1201' } };
    const earlier = { total: 1, results: [{ id: '9001', properties: { hs_note_body: LEAD_NOTE_BODY, hs_timestamp: '2026-04-27T17:42:18.000Z' } }] };
    expect(hubspotConnector.classifyResponse(respond(200, earlier), ctx, search)).toEqual({ outcome: 'success', note: 'note 9001 already logged for this event' });
  });

  it('lead.created with lead_score_property: the score is sent as that property, as a string', async () => {
    const ctx = await render(fixture('lead.created'), { lead_score_property: 'sluice_lead_score' });
    expect(json(hubspotConnector.buildRequest(ctx))).toEqual({
      properties: { firstname: 'Pat', lastname: 'Nguyen', phone: '+16175550199', company: 'Nguyen Roofing', sluice_lead_score: '81' },
    });
  });

  it('signal.product_qualified_lead (upsert_mode "batch"): contact and account, the company by its domain, then a note with the signals and the confidence', async () => {
    const ctx = await render(fixture('signal.product_qualified_lead'), { upsert_mode: 'batch' });
    const upsert = hubspotConnector.buildRequest(ctx);
    expect(upsert).toEqual({
      step: 'upsert_contact',
      method: 'POST',
      url: `${BASE}/crm/v3/objects/contacts/batch/upsert`,
      headers: HEADERS,
      body: JSON.stringify({
        inputs: [{ idProperty: 'email', id: 'dana@acme.com', properties: { firstname: 'Dana', lastname: 'Whitfield', company: 'Acme Corp', website: 'https://acme.com' } }],
      }),
      sign: false,
    });
    const searchCompany = next(hubspotConnector.classifyResponse(respond(200, UPSERT_OK('774', false)), ctx, upsert));
    expect(json(searchCompany)).toMatchObject({ filterGroups: [{ filters: [{ propertyName: 'domain', operator: 'EQ', value: 'acme.com' }] }] });
    const createCompany = next(hubspotConnector.classifyResponse(respond(200, { total: 0, results: [] }), ctx, searchCompany));
    expect(createCompany).toMatchObject({ step: 'create_company', method: 'POST', url: `${BASE}/crm/v3/objects/companies`, state: { contactId: '774' } });
    expect(json(createCompany)).toEqual({ properties: { name: 'Acme Corp', domain: 'acme.com' } });
    const note = toNote(ctx, hubspotConnector.classifyResponse(respond(201, { id: '56', properties: {} }), ctx, createCompany));
    expect(note).toEqual({
      step: 'create_note',
      method: 'POST',
      url: `${BASE}/crm/v3/objects/notes`,
      headers: HEADERS,
      body: JSON.stringify({
        properties: { hs_timestamp: '2026-04-29T14:31:08Z', hs_note_body: PQL_NOTE_BODY },
        associations: [{ to: { id: '774' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 202 }] }],
      }),
      sign: false,
    });
  });

  it('another event with an email somewhere (signal.frustration_spike): that contact, a generic note', async () => {
    const ctx = await render(fixture('signal.frustration_spike'));
    const upsert = hubspotConnector.buildRequest(ctx);
    expect(json(upsert)).toEqual({ properties: { phone: '+14155550100' } });
    const note = json(toNote(ctx, hubspotConnector.classifyResponse(respond(200, CONTACT_OK('774')), ctx, upsert))) as any;
    expect(note.properties.hs_note_body).toContain('frustration_score: 0.87');
    expect(note.properties.hs_timestamp).toBe('2026-04-27T17:45:03Z');
  });

  it('an event without an email fails permanently: buildRequest throws the reason', async () => {
    const ctx = await render(fixture('call.ended'));
    expect(() => hubspotConnector.buildRequest(ctx)).toThrow(/call\.ended event has no email address.*HubSpot contacts are upserted by email/);
  });

  it('api_version "2026-03" uses HubSpot\'s date-versioned paths for every step', async () => {
    const ctx = await render(fixture('lead.created'), { api_version: '2026-03' });
    const update = hubspotConnector.buildRequest(ctx);
    expect(update.url).toBe(`${BASE}/crm/objects/2026-03/contacts/pat.nguyen%40example.org?idProperty=email`);
    const company = next(hubspotConnector.classifyResponse(respond(200, CONTACT_OK('1201')), ctx, update));
    expect(company.url).toBe(`${BASE}/crm/objects/2026-03/companies/search`);
    expect(toNote(ctx, hubspotConnector.classifyResponse(respond(200, CONTACT_OK('1201')), ctx, update)).url).toBe(`${BASE}/crm/objects/2026-03/notes`);
    const batch = hubspotConnector.buildRequest(await render(fixture('lead.created'), { api_version: '2026-03', upsert_mode: 'batch' }));
    expect(batch.url).toBe(`${BASE}/crm/objects/2026-03/contacts/batch/upsert`);
    const search = hubspotConnector.buildRequest(await render(fixture('lead.created'), { api_version: '2026-03', upsert_mode: 'search' }));
    expect(search.url).toBe(`${BASE}/crm/objects/2026-03/contacts/search`);
  });

  it('api_base_url (a test double or proxy) replaces the origin, trailing slash or not', async () => {
    const ctx = await render(fixture('lead.created'), { api_base_url: 'http://127.0.0.1:9999/hubspot/' });
    expect(hubspotConnector.buildRequest(ctx).url).toBe('http://127.0.0.1:9999/hubspot/crm/v3/objects/contacts/pat.nguyen%40example.org?idProperty=email');
    expect(ctx.url).toBe('http://127.0.0.1:9999/hubspot');
  });
});

describe('hubspot mapped body', () => {
  const lead = fixture('lead.created');

  it('normalises the email and stringifies scalar properties; nulls and a duplicate email are left out', () => {
    const ctx = context({ contact: { email: '  Pat.Nguyen@Example.ORG ', properties: { email: 'x@y.z', score: 81, vip: true, fax: null } } }, lead);
    expect(json(hubspotConnector.buildRequest(ctx))).toEqual({ properties: { score: '81', vip: 'true' } });
    expect(hubspotConnector.buildRequest(ctx).url).toBe(`${BASE}/crm/v3/objects/contacts/pat.nguyen%40example.org?idProperty=email`);
  });

  it('without a note the contact is the whole delivery', () => {
    const ctx = context({ contact: { email: 'pat.nguyen@example.org' } }, lead);
    const update = hubspotConnector.buildRequest(ctx);
    // Nothing but the email to write: the update sends the email itself, and its answer has the id.
    expect(json(update)).toEqual({ properties: { email: 'pat.nguyen@example.org' } });
    expect(hubspotConnector.classifyResponse(respond(200, CONTACT_OK('1201')), ctx, update)).toEqual({ outcome: 'success', note: 'contact 1201' });
  });

  it('a note without a timestamp takes the event timestamp; Unix milliseconds pass as a string', () => {
    const upsert = (note: unknown) => {
      const ctx = context({ contact: { email: 'a@b.co' }, note }, lead);
      return json(toNote(ctx, hubspotConnector.classifyResponse(respond(200, CONTACT_OK('5')), ctx, hubspotConnector.buildRequest(ctx)))) as any;
    };
    expect(upsert({ body: 'hi' }).properties.hs_timestamp).toBe('2026-04-27T17:42:18Z');
    expect(upsert({ body: 'hi', timestamp: 1777311738000 }).properties.hs_timestamp).toBe('1777311738000');
  });

  it.each([
    ['a non-object body', 'just text', /must look like/],
    ['no contact', { note: { body: 'x' } }, /must look like/],
    ['an email that is not one', { contact: { email: 'not-an-email' } }, /is not an email address/],
    ['a nested property value', { contact: { email: 'a@b.co', properties: { tags: ['a'] } } }, /contact\.properties\.tags must be a string, number or boolean/],
    ['an empty note body', { contact: { email: 'a@b.co' }, note: { body: ' ' } }, /note\.body must be a non-empty string/],
    ['a timestamp that is not a time', { contact: { email: 'a@b.co' }, note: { body: 'x', timestamp: 'yesterday' } }, /note\.timestamp/],
  ])('%s is a clear permanent failure', (_what, payload, reason) => {
    expect(() => hubspotConnector.buildRequest(context(payload, lead))).toThrow(reason);
  });

  it(`caps hs_note_body at ${NOTE_BODY_MAX_CHARS} characters without splitting a surrogate pair`, () => {
    const long = capNoteBody('a'.repeat(NOTE_BODY_MAX_CHARS + 10));
    expect(long).toHaveLength(NOTE_BODY_MAX_CHARS);
    expect(long.endsWith('a…')).toBe(true);
    // The cut would fall between the two halves of an emoji: the whole emoji goes.
    const emoji = capNoteBody('a'.repeat(NOTE_BODY_MAX_CHARS - 4) + '😀'.repeat(5));
    expect(emoji).toHaveLength(NOTE_BODY_MAX_CHARS - 1);
    expect(emoji.endsWith('a😀…')).toBe(true);
    expect(emoji).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    expect(capNoteBody('short')).toBe('short');
  });
});

describe('hubspot search-then-create mode (upsert_mode: "search")', () => {
  const lead = fixture('lead.created');
  const payload = { contact: { email: 'pat.nguyen@example.org', properties: { firstname: 'Pat' } }, note: { body: 'hello' } };
  const ctx = context(payload, lead, { upsert_mode: 'search' });

  it('searches by email first', () => {
    const search = hubspotConnector.buildRequest(ctx);
    expect(search).toMatchObject({ step: 'search_contact', method: 'POST', url: `${BASE}/crm/v3/objects/contacts/search`, headers: HEADERS, sign: false });
    expect(json(search)).toEqual({ filterGroups: [{ filters: [{ propertyName: 'email', operator: 'EQ', value: 'pat.nguyen@example.org' }] }], properties: ['email'], limit: 1 });
  });

  it('found: update it by id, then the note', () => {
    const search = hubspotConnector.buildRequest(ctx);
    const update = next(hubspotConnector.classifyResponse(respond(200, { total: 1, results: [{ id: '88', properties: { email: 'pat.nguyen@example.org' } }] }), ctx, search));
    expect(update).toMatchObject({ step: 'update_contact', method: 'PATCH', url: `${BASE}/crm/v3/objects/contacts/88` });
    expect(json(update)).toEqual({ properties: { firstname: 'Pat' } });
    const note = toNote(ctx, hubspotConnector.classifyResponse(respond(200, { id: '88', properties: {} }), ctx, update));
    expect((json(note) as any).associations[0].to.id).toBe('88');
  });

  it('found with nothing to update: straight to the note', () => {
    const bare = context({ contact: { email: 'pat.nguyen@example.org' }, note: { body: 'hello' } }, lead, { upsert_mode: 'search' });
    const search = hubspotConnector.buildRequest(bare);
    expect(next(hubspotConnector.classifyResponse(respond(200, { total: 1, results: [{ id: '88' }] }), bare, search)).step).toBe('find_note');
  });

  it('not found: create it with the email among its properties', () => {
    const search = hubspotConnector.buildRequest(ctx);
    const create = next(hubspotConnector.classifyResponse(respond(200, { total: 0, results: [] }), ctx, search));
    expect(create).toMatchObject({ step: 'create_contact', method: 'POST', url: `${BASE}/crm/v3/objects/contacts` });
    expect(json(create)).toEqual({ properties: { email: 'pat.nguyen@example.org', firstname: 'Pat' } });
    const note = toNote(ctx, hubspotConnector.classifyResponse(respond(201, { id: '99', properties: {} }), ctx, create));
    expect((json(note) as any).associations[0].to.id).toBe('99');
  });

  it('409 "Contact already exists. Existing ID: N" (the search index lagged): update N instead', () => {
    const search = hubspotConnector.buildRequest(ctx);
    const create = next(hubspotConnector.classifyResponse(respond(200, { total: 0, results: [] }), ctx, search));
    const conflict = respond(409, { status: 'error', message: 'Contact already exists. Existing ID: 12345', correlationId: 'c-409', category: 'CONFLICT' });
    const update = next(hubspotConnector.classifyResponse(conflict, ctx, create));
    expect(update).toMatchObject({ step: 'update_contact', method: 'PATCH', url: `${BASE}/crm/v3/objects/contacts/12345` });
  });

  it('a 409 without an existing id fails with HubSpot\'s message', () => {
    const create = { ...hubspotConnector.buildRequest(ctx), step: 'create_contact' };
    const verdict = hubspotConnector.classifyResponse(respond(409, { status: 'error', message: 'Conflict on something else', category: 'CONFLICT' }), ctx, create);
    expect(verdict).toEqual({ outcome: 'fail', reason: 'HubSpot rejected the create_contact request (HTTP 409 CONFLICT: Conflict on something else)' });
  });

  it('an update answering 404 (contact deleted or merged since the search) is retried from the search', () => {
    const update = { ...hubspotConnector.buildRequest(ctx), step: 'update_contact', method: 'PATCH' as const, url: `${BASE}/crm/v3/objects/contacts/88` };
    expect(hubspotConnector.classifyResponse(respond(404, { status: 'error', message: 'resource not found', category: 'OBJECT_NOT_FOUND' }), ctx, update).outcome).toBe('retry');
  });
});

describe('hubspot response classification', () => {
  const lead = fixture('lead.created');
  const ctx = context({ contact: { email: 'pat.nguyen@example.org' }, note: { body: 'hello' } }, lead, { upsert_mode: 'batch' });
  const upsert = hubspotConnector.buildRequest(ctx);
  const note = toNote(ctx, hubspotConnector.classifyResponse(respond(200, UPSERT_OK()), ctx, upsert));
  const classify = (response: ResponseInfo, request = note, c = ctx) => hubspotConnector.classifyResponse(response, c, request);

  it('201 on the note is the success of the delivery', () => {
    expect(classify(respond(201, NOTE_OK))).toEqual({ outcome: 'success', note: 'note 9001' });
  });

  it('a 207 multi-status upsert without a result fails with the input\'s error', () => {
    const body = {
      status: 'COMPLETE',
      results: [],
      numErrors: 1,
      errors: [{ status: 'error', category: 'VALIDATION_ERROR', message: 'Property values were not valid', errors: [{ message: 'Email address pat@ is invalid', in: 'email' }], context: {} }],
    };
    expect(classify(respond(207, body), upsert)).toEqual({
      outcome: 'fail',
      reason: 'HubSpot did not upsert the contact (HTTP 207 VALIDATION_ERROR): Property values were not valid; Email address pat@ is invalid',
    });
  });

  it('a 200 upsert carrying numErrors and no result fails too', () => {
    expect(classify(respond(200, { status: 'COMPLETE', results: [], numErrors: 1, errors: [{ message: 'boom' }] }), upsert)).toMatchObject({ outcome: 'fail', reason: expect.stringContaining('boom') });
  });

  it('an upsert answer cut at the engine\'s 4 KB excerpt still yields the contact id', () => {
    const cut = JSON.stringify({ status: 'COMPLETE', results: [{ id: '4242', properties: { notes: 'x'.repeat(5000) } }] }).slice(0, 4096);
    expect(next(classify(respond(200, cut), upsert)).state).toEqual({ contactId: '4242' });
  });

  it('an upsert answer without an id fails rather than logging a note on nobody', () => {
    expect(classify(respond(200, { status: 'COMPLETE', results: [] }), upsert)).toMatchObject({ outcome: 'fail', reason: expect.stringContaining('no results[0].id') });
  });

  it('429 TEN_SECONDLY_ROLLING is retried with a 10 s floor (the engine takes the larger of it and Retry-After)', () => {
    const body = { status: 'error', message: 'You have reached your ten_secondly_rolling limit.', errorType: 'RATE_LIMIT', correlationId: 'c-429', policyName: 'TEN_SECONDLY_ROLLING' };
    expect(classify(respond(429, body, { 'retry-after': '1' }))).toEqual({
      outcome: 'retry',
      reason: 'HubSpot rate limit TEN_SECONDLY_ROLLING (HTTP 429: You have reached your ten_secondly_rolling limit. [correlationId c-429])',
      minDelayMs: 10_000,
    });
  });

  it('min_rate_limit_delay_ms lowers the burst floor', () => {
    const fast = context({ contact: { email: 'pat.nguyen@example.org' } }, lead, { min_rate_limit_delay_ms: 250 });
    expect(classify(respond(429, { policyName: 'TEN_SECONDLY_ROLLING' }), upsert, fast)).toMatchObject({ outcome: 'retry', minDelayMs: 250 });
  });

  it('429 DAILY waits an hour at least', () => {
    const body = { status: 'error', message: 'You have reached your daily limit.', errorType: 'RATE_LIMIT', correlationId: 'c-d', policyName: 'DAILY' };
    expect(classify(respond(429, body))).toMatchObject({ outcome: 'retry', minDelayMs: DAILY_LIMIT_DELAY_MS, reason: expect.stringContaining('daily API limit') });
    expect(classify(respond(429, { message: 'You have reached your daily limit.' }))).toMatchObject({ minDelayMs: DAILY_LIMIT_DELAY_MS });
  });

  it('423 Locked is retried after 2 s at least; 477 Migration in Progress after a minute unless Retry-After says more', () => {
    expect(classify(respond(423, { status: 'error', message: 'Locked' }))).toMatchObject({ outcome: 'retry', minDelayMs: LOCKED_DELAY_MS });
    expect(LOCKED_DELAY_MS).toBeGreaterThanOrEqual(2_000);
    expect(classify(respond(477, '', { 'retry-after': '3600' }))).toMatchObject({ outcome: 'retry', minDelayMs: MIGRATION_DELAY_MS });
  });

  it.each([500, 502, 503, 504, 521, 408])('%i is retried', (status) => {
    expect(classify(respond(status, '<html>Bad gateway</html>'))).toMatchObject({ outcome: 'retry', reason: expect.stringContaining(`HTTP ${status}`) });
  });

  it('401 disables the subscription with HubSpot\'s message', () => {
    const body = { status: 'error', message: 'Authentication credentials not found.', correlationId: 'c-401', category: 'INVALID_AUTHENTICATION' };
    const verdict = classify(respond(401, body), upsert);
    expect(verdict).toEqual({
      outcome: 'disable',
      reason: 'HubSpot rejected the access token (HTTP 401 INVALID_AUTHENTICATION: Authentication credentials not found. [correlationId c-401]); create a new token (private app or service key), set connector_options.access_token and re-enable the subscription',
    });
  });

  it('403 (missing scope) disables the subscription with HubSpot\'s message', () => {
    const body = { status: 'error', message: 'This app hasn\'t been granted all required scopes to make this call.', category: 'MISSING_SCOPES', errors: [{ message: 'One or more of the following scopes are required.', context: { requiredGranularScopes: ['crm.objects.contacts.write'] } }] };
    expect(classify(respond(403, body))).toMatchObject({ outcome: 'disable', reason: expect.stringMatching(/create_note request \(HTTP 403 MISSING_SCOPES: This app hasn't been granted.*One or more of the following scopes are required\.\).*crm\.objects\.contacts\.write/) });
  });

  it('400 VALIDATION_ERROR fails with the message and errors[].message', () => {
    const body = {
      status: 'error',
      message: 'Property values were not valid',
      correlationId: 'c-400',
      category: 'VALIDATION_ERROR',
      errors: [{ message: 'Property "sluice_lead_score" does not exist', in: 'sluice_lead_score' }],
    };
    expect(classify(respond(400, body), upsert)).toEqual({
      outcome: 'fail',
      reason: 'HubSpot rejected the upsert_contact request (HTTP 400 VALIDATION_ERROR: Property values were not valid (Property "sluice_lead_score" does not exist) [correlationId c-400])',
    });
  });

  it('an error body that is not HubSpot JSON is quoted as text', () => {
    expect(classify(respond(404, 'Not Found'))).toEqual({ outcome: 'fail', reason: 'HubSpot rejected the create_note request (HTTP 404: Not Found)' });
  });
});

describe('hubspot definition', () => {
  it('keeps the token secret, derives its URL from options and paces deliveries', () => {
    expect(hubspotConnector).toMatchObject({ name: 'hubspot', url: 'none', secretOptions: ['access_token'], defaultMapping: 'hubspot/default', subscriptionDefaults: { rate_limit: 1 } });
    expect(hubspotConnector.resolveUrl!({ access_token: TOKEN })).toBe(BASE);
    expect((hubspotConnector.optionsSchema as any).required).toEqual(['access_token']);
  });
});
