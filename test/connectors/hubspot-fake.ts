import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for HubSpot's CRM v3 API, answering the documented bodies: contacts
 * (batch upsert by email, search, create with its 409 "Contact already exists. Existing
 * ID: N", update) and notes. It keeps contacts by email, so a test can count them, and can
 * be told to answer the next call of a route with a canned error (429, 400, 503…).
 */

export interface FakeRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

export interface CannedAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type Route = 'upsert' | 'search' | 'create' | 'update' | 'note';

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
  const requests: FakeRequest[] = [];
  const canned = new Map<Route, CannedAnswer[]>();
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

  const route = (method: string, path: string): Route | undefined => {
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
    const which = route(req.method, req.path);
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
      case 'update': {
        const id = req.path.split('/').pop();
        const contact = [...contacts.values()].find((c) => c.id === id);
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
      const received: FakeRequest = { method: req.method ?? '', path: (req.url ?? '').split('?')[0], headers: req.headers, body };
      requests.push(received);
      const answer = handle(received);
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
    /** The next call of `route` gets this answer instead of the normal one (queued, one each). */
    answerNext(which: Route, answer: CannedAnswer): void {
      canned.set(which, [...(canned.get(which) ?? []), answer]);
    },
    /** Seeds a contact, as if created earlier by someone else. */
    seedContact(email: string, properties: Record<string, string> = {}): string {
      return saveContact(email.toLowerCase(), properties).contact.id;
    },
    /** Requests per route, in order, e.g. ['upsert', 'note']. */
    routes(): (Route | undefined)[] {
      return requests.map((r) => route(r.method, r.path));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export type FakeHubSpot = Awaited<ReturnType<typeof startFakeHubSpot>>;
