import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for HubSpot's CRM v3 API, answering the documented bodies: contacts
 * (update by email with `?idProperty=email` and its 404 for an unknown email, batch upsert by
 * email, search, create with its 409 "Contact already exists. Existing ID: N", update by id),
 * companies (search by domain or name, create), the v4 default contact-to-company
 * association, and notes (create, search by associated contact and hs_timestamp). It keeps
 * contacts by email, companies and notes, so a test can count them, and can be told to answer
 * the next call of a route with a canned error (429, 400, 503…). Updates, like HubSpot's, change
 * only the properties sent.
 */

export interface FakeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: any;
}

export interface CannedAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type Route = 'update_by_email' | 'upsert' | 'search' | 'create' | 'update' | 'company_search' | 'company_create' | 'associate' | 'note_search' | 'note';

export interface FakeHubSpotOptions {
  token: string;
  /** Contact properties the account has; others answer 400 VALIDATION_ERROR. */
  knownProperties?: string[];
  /** The search index lags: searches find nothing (so create answers 409 for known emails). */
  searchLags?: boolean;
}

const DEFAULT_PROPERTIES = ['email', 'firstname', 'lastname', 'phone', 'company', 'website'];

export async function startFakeHubSpot(options: FakeHubSpotOptions) {
  const known = new Set(options.knownProperties ?? DEFAULT_PROPERTIES);
  const contacts = new Map<string, { id: string; properties: Record<string, string> }>();
  const notes: { id: string; properties: Record<string, string>; contactIds: string[]; associationTypeIds: number[] }[] = [];
  const companies = new Map<string, { id: string; properties: Record<string, string> }>();
  /** contact id -> the ids of its associated companies. */
  const companyAssociations = new Map<string, Set<string>>();
  const requests: FakeRequest[] = [];
  const canned = new Map<Route, CannedAnswer[]>();
  /** Answers that replace the normal one after the request was carried out (a response lost on the way back). */
  const lost = new Map<Route, CannedAnswer[]>();
  let nextId = 1000;
  const now = () => new Date().toISOString();
  const correlationId = () => `c0ffee00-0000-4000-8000-${String(nextId++).padStart(12, '0')}`;

  const error = (status: number, category: string, message: string, extra: Record<string, unknown> = {}): CannedAnswer => ({
    status,
    body: { status: 'error', message, correlationId: correlationId(), category, ...extra },
  });

  const unknownProperties = (properties: Record<string, unknown> = {}): CannedAnswer | undefined => {
    const unknown = Object.keys(properties).filter((name) => !known.has(name));
    if (!unknown.length) return undefined;
    return error(400, 'VALIDATION_ERROR', 'Property values were not valid', {
      errors: unknown.map((name) => ({ message: `Property "${name}" does not exist`, in: name, code: 'PROPERTY_DOESNT_EXIST' })),
    });
  };

  const saveContact = (email: string, properties: Record<string, string>) => {
    const existing = contacts.get(email);
    const contact = existing ?? { id: String(nextId++), properties: { email } };
    Object.assign(contact.properties, properties, { email });
    contacts.set(email, contact);
    return { contact, isNew: !existing };
  };

  const present = (contact: { id: string; properties: Record<string, string> }) => ({
    id: contact.id,
    properties: { ...contact.properties, hs_object_id: contact.id },
    createdAt: now(),
    updatedAt: now(),
    archived: false,
  });

  const route = (method: string, path: string, query = new URLSearchParams()): Route | undefined => {
    if (method === 'PATCH' && /^\/crm\/v3\/objects\/contacts\/[^/]+$/.test(path) && query.get('idProperty') === 'email') return 'update_by_email';
    if (method === 'POST' && path === '/crm/v3/objects/companies/search') return 'company_search';
    if (method === 'POST' && path === '/crm/v3/objects/companies') return 'company_create';
    if (method === 'PUT' && /^\/crm\/v4\/objects\/contact\/[^/]+\/associations\/default\/company\/[^/]+$/.test(path)) return 'associate';
    if (method === 'POST' && path === '/crm/v3/objects/notes/search') return 'note_search';
    if (method === 'POST' && path === '/crm/v3/objects/contacts/batch/upsert') return 'upsert';
    if (method === 'POST' && path === '/crm/v3/objects/contacts/search') return 'search';
    if (method === 'POST' && path === '/crm/v3/objects/contacts') return 'create';
    if (method === 'PATCH' && /^\/crm\/v3\/objects\/contacts\/[^/]+$/.test(path)) return 'update';
    if (method === 'POST' && path === '/crm/v3/objects/notes') return 'note';
    return undefined;
  };

  const handle = (req: FakeRequest): CannedAnswer => {
    if (req.headers.authorization !== `Bearer ${options.token}`) {
      return error(401, 'INVALID_AUTHENTICATION', 'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview');
    }
    const which = route(req.method, req.path, req.query);
    if (!which) return { status: 404, body: 'Not Found' };
    const next = canned.get(which)?.shift();
    if (next) return next;
    switch (which) {
      case 'upsert': {
        const results = [];
        for (const input of req.body.inputs) {
          const invalid = unknownProperties(input.properties);
          if (invalid) return invalid;
          const { contact, isNew } = saveContact(String(input.id).toLowerCase(), input.properties ?? {});
          results.push({ ...present(contact), new: isNew });
        }
        return { status: 200, body: { status: 'COMPLETE', results, startedAt: now(), completedAt: now() } };
      }
      case 'search': {
        const email = req.body.filterGroups[0].filters[0].value.toLowerCase();
        const found = options.searchLags ? undefined : contacts.get(email);
        return { status: 200, body: { total: found ? 1 : 0, results: found ? [present(found)] : [] } };
      }
      case 'create': {
        const email = String(req.body.properties.email).toLowerCase();
        const existing = contacts.get(email);
        if (existing) return error(409, 'CONFLICT', `Contact already exists. Existing ID: ${existing.id}`);
        const invalid = unknownProperties(req.body.properties);
        if (invalid) return invalid;
        return { status: 201, body: present(saveContact(email, req.body.properties).contact) };
      }
      case 'company_search': {
        const filter = req.body.filterGroups[0].filters[0];
        const found = [...companies.values()].find((c) => c.properties[filter.propertyName] === filter.value);
        return { status: 200, body: { total: found ? 1 : 0, results: found ? [present(found)] : [] } };
      }
      case 'company_create': {
        const company = { id: String(nextId++), properties: { ...req.body.properties } };
        companies.set(company.id, company);
        return { status: 201, body: present(company) };
      }
      case 'associate': {
        const [, , , , contactId, , , , companyId] = req.path.split('/').slice(1);
        const contact = [...contacts.values()].find((c) => c.id === contactId);
        if (!contact || !companies.has(companyId)) return error(404, 'OBJECT_NOT_FOUND', 'resource not found');
        companyAssociations.set(contactId, new Set([...(companyAssociations.get(contactId) ?? []), companyId]));
        return { status: 200, body: { status: 'COMPLETE', results: [{ from: { id: contactId }, to: { id: companyId }, associationSpec: { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 279 } }] } };
      }
      case 'note_search': {
        const filters = req.body.filterGroups[0].filters as { propertyName: string; value: string }[];
        const value = (name: string) => filters.find((f) => f.propertyName === name)?.value;
        const ms = (t: string) => (/^\d+$/.test(t) ? Number(t) : Date.parse(t));
        const found = notes.filter((n) => n.contactIds.includes(value('associations.contact')!) && ms(n.properties.hs_timestamp) === ms(value('hs_timestamp')!));
        const results = found.slice(0, req.body.limit ?? 10).map((n) => ({ id: n.id, properties: { hs_note_body: n.properties.hs_note_body, hs_timestamp: n.properties.hs_timestamp }, archived: false }));
        return { status: 200, body: { total: found.length, results } };
      }
      case 'update_by_email':
      case 'update': {
        // The last path segment is the contact id, or its email with ?idProperty=email.
        const key = decodeURIComponent(req.path.split('/').pop()!);
        const contact = which === 'update_by_email' ? contacts.get(key.toLowerCase()) : [...contacts.values()].find((c) => c.id === key);
        if (!contact) return error(404, 'OBJECT_NOT_FOUND', 'resource not found');
        const invalid = unknownProperties(req.body.properties);
        if (invalid) return invalid;
        Object.assign(contact.properties, req.body.properties);
        return { status: 200, body: present(contact) };
      }
      case 'note': {
        const { properties, associations = [] } = req.body;
        if (!properties?.hs_timestamp) return error(400, 'VALIDATION_ERROR', 'Property values were not valid', { errors: [{ message: 'hs_timestamp is required', in: 'hs_timestamp' }] });
        const contactIds = associations.map((a: any) => a.to.id);
        if (contactIds.some((id: string) => ![...contacts.values()].some((c) => c.id === id))) {
          return error(400, 'VALIDATION_ERROR', 'One or more associations are invalid');
        }
        const note = { id: String(nextId++), properties, contactIds, associationTypeIds: associations.flatMap((a: any) => a.types.map((t: any) => t.associationTypeId)) };
        notes.push(note);
        return { status: 201, body: { id: note.id, properties, createdAt: now(), updatedAt: now(), archived: false } };
      }
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      const url = new URL(req.url ?? '/', 'http://fake');
      const received: FakeRequest = { method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers, body };
      requests.push(received);
      const done = handle(received);
      const which = route(received.method, received.path, received.query);
      const answer = (which && done.status < 300 && lost.get(which)?.shift()) || done;
      const payload = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
      res.writeHead(answer.status, { 'content-type': typeof answer.body === 'string' ? 'text/plain' : 'application/json;charset=utf-8', ...answer.headers });
      res.end(payload);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    contacts,
    notes,
    companies,
    companyAssociations,
    /** The next call of `route` gets this answer instead of the normal one (queued, one each). */
    answerNext(which: Route, answer: CannedAnswer): void {
      canned.set(which, [...(canned.get(which) ?? []), answer]);
    },
    /** The next call of `route` is carried out, but answered with this instead (its response lost). */
    loseNextAnswer(which: Route, answer: CannedAnswer): void {
      lost.set(which, [...(lost.get(which) ?? []), answer]);
    },
    /** Seeds a company, as if created earlier by someone else. */
    seedCompany(properties: Record<string, string>): string {
      const id = String(nextId++);
      companies.set(id, { id, properties });
      return id;
    },
    /** Seeds a contact, as if created earlier by someone else. */
    seedContact(email: string, properties: Record<string, string> = {}): string {
      return saveContact(email.toLowerCase(), properties).contact.id;
    },
    /** Requests per route, in order, e.g. ['upsert', 'note']. */
    routes(): (Route | undefined)[] {
      return requests.map((r) => route(r.method, r.path, r.query));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export type FakeHubSpot = Awaited<ReturnType<typeof startFakeHubSpot>>;
