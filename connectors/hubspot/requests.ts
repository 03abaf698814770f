import type { OutboundRequest } from '../../src/delivery/connector.ts';

/**
 * The HubSpot requests a delivery is made of, built from the mapped body (the template's
 * output) and the subscription's options. Pure: no I/O, the engine sends them.
 */

export const DEFAULT_API_BASE_URL = 'https://api.hubapi.com';
/** HubSpot's limit on hs_note_body. */
export const NOTE_BODY_MAX_CHARS = 65_536;
/** HubSpot-defined association type id: note to contact. */
export const NOTE_TO_CONTACT_ASSOCIATION_TYPE = 202;
/** How many of a contact's notes at the event's time are checked for this event's marker. */
const NOTE_SEARCH_LIMIT = 20;
/** HubSpot asks for at least 10 s after a TEN_SECONDLY_ROLLING 429 (its burst window). */
export const DEFAULT_MIN_RATE_LIMIT_DELAY_MS = 10_000;

export type HubSpotStep =
  | 'update_contact_by_email'
  | 'upsert_contact'
  | 'search_contact'
  | 'create_contact'
  | 'update_contact'
  | 'search_company'
  | 'create_company'
  | 'associate_company'
  | 'find_note'
  | 'create_note';
/**
 * How the contact is written. `email` (the default): update by email, which changes only the
 * properties sent, and create it when HubSpot has none. `search`: search by email, then create
 * or update by id. `batch`: one batch upsert keyed by email, which HubSpot does not support as a
 * partial write: only for templates that send the whole contact.
 */
export type UpsertMode = 'email' | 'search' | 'batch';

export interface HubSpotOptions {
  accessToken: string;
  apiBaseUrl: string;
  /** `v3` (`/crm/v3/objects/…`) or a date version such as `2026-03` (`/crm/objects/2026-03/…`). */
  apiVersion: string;
  upsertMode: UpsertMode;
  minRateLimitDelayMs: number;
}

/** What one delivery writes to HubSpot. */
export interface HubSpotDelivery {
  /** Trimmed and lower-cased: the key the contact is upserted by. */
  email: string;
  /** Contact properties other than email, as HubSpot takes them (strings). */
  properties: Record<string, string>;
  /** The timeline note for the contact; null writes the contact only. */
  note: { body: string; timestamp: string } | null;
  /** The contact's company, found by domain (else by name) or created, and associated. */
  company: { name?: string; domain?: string } | null;
  /** `Sluice event <type> <id>`: every note carries it, so a retry can find the note it made. */
  marker: string;
}

/** The subscription's options with their defaults (ajv validated them at create time). */
export function readOptions(options: Record<string, unknown>): HubSpotOptions {
  const base = typeof options.api_base_url === 'string' && options.api_base_url ? options.api_base_url : DEFAULT_API_BASE_URL;
  return {
    accessToken: typeof options.access_token === 'string' ? options.access_token : '',
    apiBaseUrl: base.replace(/\/+$/, ''),
    apiVersion: typeof options.api_version === 'string' && options.api_version ? options.api_version : 'v3',
    upsertMode: options.upsert_mode === 'search' || options.upsert_mode === 'batch' ? options.upsert_mode : 'email',
    minRateLimitDelayMs: typeof options.min_rate_limit_delay_ms === 'number' ? options.min_rate_limit_delay_ms : DEFAULT_MIN_RATE_LIMIT_DELAY_MS,
  };
}

const EXPECTED_SHAPE = '{"contact": {"email": "...", "properties": {...}}, "company"?: {"name", "domain"}, "note": {"body": "...", "timestamp": "..."}}';
const EMAIL = /^[^\s@]+@[^\s@]+$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The mapped body as a HubSpot delivery. Throws an Error whose message is the reason the
 * delivery fails (the engine records it and does not retry): a body of the wrong shape, or
 * an event with no email to key the contact by.
 */
export function readDelivery(payload: unknown, event: { id: string; event: string; timestamp: string }): HubSpotDelivery {
  if (!isObject(payload) || !isObject(payload.contact)) {
    throw new Error(`the mapped body must look like ${EXPECTED_SHAPE} (see connectors/hubspot/README.md)`);
  }
  const { contact } = payload;
  const rawEmail = contact.email;
  if (rawEmail === undefined || rawEmail === null || rawEmail === '') {
    throw new Error(`the ${event.event} event has no email address (the mapped body has no contact.email); HubSpot contacts are upserted by email, so there is nothing to write to`);
  }
  const email = typeof rawEmail === 'string' ? rawEmail.trim().toLowerCase() : '';
  if (!EMAIL.test(email)) throw new Error(`contact.email ${JSON.stringify(rawEmail)} is not an email address`);

  const properties: Record<string, string> = {};
  if (contact.properties !== undefined && contact.properties !== null && !isObject(contact.properties)) {
    throw new Error('contact.properties must be an object of HubSpot property names to values');
  }
  for (const [name, value] of Object.entries(contact.properties ?? {})) {
    if (value === null || value === undefined || name === 'email') continue;
    if (typeof value === 'string') properties[name] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') properties[name] = String(value);
    else throw new Error(`contact.properties.${name} must be a string, number or boolean, not ${Array.isArray(value) ? 'an array' : 'an object'}`);
  }

  const marker = `Sluice event ${event.event} ${event.id}`;
  return { email, properties, note: readNote(payload.note, event.timestamp, marker), company: readCompany(payload.company), marker };
}

/** A company name, and a domain as HubSpot keeps it: `https://www.Example.com/about` -> `example.com`. */
function readCompany(company: unknown): HubSpotDelivery['company'] {
  if (company === undefined || company === null) return null;
  if (!isObject(company)) throw new Error('company must be an object {"name": "...", "domain": "..."}');
  const name = typeof company.name === 'string' && company.name.trim() ? company.name.trim() : undefined;
  const rawDomain = typeof company.domain === 'string' ? company.domain.trim().toLowerCase() : '';
  const domain = rawDomain.replace(/^[a-z][a-z0-9+.-]*:\/\//, '').replace(/[/?#].*$/, '').replace(/^www\./, '') || undefined;
  if (domain !== undefined && !/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(domain)) throw new Error(`company.domain ${JSON.stringify(company.domain)} is not a domain name`);
  return name || domain ? { ...(name ? { name } : {}), ...(domain ? { domain } : {}) } : null;
}

function readNote(note: unknown, eventTimestamp: string, marker: string): HubSpotDelivery['note'] {
  if (note === undefined || note === null) return null;
  if (!isObject(note)) throw new Error('note must be an object {"body": "...", "timestamp": "..."}');
  if (typeof note.body !== 'string' || note.body.trim() === '') throw new Error('note.body must be a non-empty string');
  // The marker is how a retry recognises the note this event already logged (see find_note).
  const body = note.body.includes(marker) ? note.body : `${note.body}<p>${marker}</p>`;
  return { body: capNoteBody(body, marker), timestamp: noteTimestamp(note.timestamp ?? eventTimestamp) };
}

/** hs_timestamp takes an ISO 8601 UTC time or Unix milliseconds. */
function noteTimestamp(value: unknown): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(Math.round(value));
  if (typeof value === 'string' && !Number.isNaN(Date.parse(value))) return value;
  throw new Error(`note.timestamp ${JSON.stringify(value)} must be an ISO 8601 time or Unix milliseconds`);
}

/**
 * At most NOTE_BODY_MAX_CHARS UTF-16 units (the strictest reading of HubSpot's "characters"),
 * never splitting a surrogate pair; a cut body ends with "…" and then the event's marker, so a
 * retry still finds it. Templates should truncate their variable parts first: a cut here may
 * land inside an HTML tag.
 */
export function capNoteBody(body: string, marker = ''): string {
  if (body.length <= NOTE_BODY_MAX_CHARS) return body;
  const tail = marker ? `…<p>${marker}</p>` : '…';
  let end = NOTE_BODY_MAX_CHARS - tail.length;
  const last = body.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${body.slice(0, end)}${tail}`;
}

/** The CRM objects path in the configured API version: v3 paths, or HubSpot's date-versioned ones. */
function objectsPath(options: HubSpotOptions, rest: string): string {
  return options.apiVersion === 'v3' ? `/crm/v3/objects/${rest}` : `/crm/objects/${options.apiVersion}/${rest}`;
}

function request(options: HubSpotOptions, step: HubSpotStep, method: OutboundRequest['method'], rest: string, body: unknown, state?: Record<string, string>): OutboundRequest {
  return {
    step,
    method,
    url: `${options.apiBaseUrl}${rest.startsWith('/') ? rest : objectsPath(options, rest)}`,
    headers: {
      authorization: `Bearer ${options.accessToken}`,
      'content-type': 'application/json',
      accept: 'application/json',
    },
    body: body === null ? null : JSON.stringify(body),
    sign: false,
    ...(state ? { state } : {}),
  };
}

/**
 * Update by email (`PATCH …/contacts/{email}?idProperty=email`): HubSpot changes only the
 * properties sent, and answers 404 when no contact has that email (then it is created).
 */
export function updateContactByEmailRequest(options: HubSpotOptions, delivery: HubSpotDelivery): OutboundRequest {
  // With nothing else to write, the email itself: the answer still carries the contact id.
  const properties = Object.keys(delivery.properties).length ? delivery.properties : { email: delivery.email };
  return request(options, 'update_contact_by_email', 'PATCH', `contacts/${encodeURIComponent(delivery.email)}?idProperty=email`, { properties });
}

/**
 * Batch upsert keyed by email: creates the contact or updates it, so a retry never duplicates
 * it. HubSpot does not support partial upserts with email as the idProperty: properties the
 * input leaves out are not kept as they were, so this mode is for templates that send the whole contact.
 */
export function upsertContactRequest(options: HubSpotOptions, delivery: HubSpotDelivery): OutboundRequest {
  return request(options, 'upsert_contact', 'POST', 'contacts/batch/upsert', {
    inputs: [{ idProperty: 'email', id: delivery.email, properties: delivery.properties }],
  });
}

export function searchContactRequest(options: HubSpotOptions, delivery: HubSpotDelivery): OutboundRequest {
  return request(options, 'search_contact', 'POST', 'contacts/search', {
    filterGroups: [{ filters: [{ propertyName: 'email', operator: 'EQ', value: delivery.email }] }],
    properties: ['email'],
    limit: 1,
  });
}

export function createContactRequest(options: HubSpotOptions, delivery: HubSpotDelivery): OutboundRequest {
  return request(options, 'create_contact', 'POST', 'contacts', {
    properties: { email: delivery.email, ...delivery.properties },
  });
}

export function updateContactRequest(options: HubSpotOptions, delivery: HubSpotDelivery, contactId: string): OutboundRequest {
  return request(options, 'update_contact', 'PATCH', `contacts/${encodeURIComponent(contactId)}`, {
    properties: delivery.properties,
  });
}

/** The company by domain (HubSpot's key for companies), else by exact name. */
export function searchCompanyRequest(options: HubSpotOptions, company: NonNullable<HubSpotDelivery['company']>, contactId: string): OutboundRequest {
  const filter = company.domain ? { propertyName: 'domain', operator: 'EQ', value: company.domain } : { propertyName: 'name', operator: 'EQ', value: company.name };
  return request(options, 'search_company', 'POST', 'companies/search', { filterGroups: [{ filters: [filter] }], properties: ['name', 'domain'], limit: 1 }, { contactId });
}

export function createCompanyRequest(options: HubSpotOptions, company: NonNullable<HubSpotDelivery['company']>, contactId: string): OutboundRequest {
  return request(options, 'create_company', 'POST', 'companies', { properties: { ...company } }, { contactId });
}

/** The default (unlabelled) contact-to-company association; associating twice changes nothing. */
export function associateCompanyRequest(options: HubSpotOptions, contactId: string, companyId: string): OutboundRequest {
  const path = `/crm/v4/objects/contact/${encodeURIComponent(contactId)}/associations/default/company/${encodeURIComponent(companyId)}`;
  return request(options, 'associate_company', 'PUT', path, null, { contactId, companyId });
}

/**
 * The contact's notes at the note's timestamp, with their bodies: one that carries this event's
 * marker means an earlier attempt created it and only its 201 was lost.
 */
export function findNoteRequest(options: HubSpotOptions, delivery: HubSpotDelivery, contactId: string): OutboundRequest {
  const note = delivery.note!;
  const at = /^\d+$/.test(note.timestamp) ? note.timestamp : String(Date.parse(note.timestamp));
  return request(options, 'find_note', 'POST', 'notes/search', {
    filterGroups: [{ filters: [
      { propertyName: 'associations.contact', operator: 'EQ', value: contactId },
      { propertyName: 'hs_timestamp', operator: 'EQ', value: at },
    ] }],
    properties: ['hs_note_body', 'hs_timestamp'],
    limit: NOTE_SEARCH_LIMIT,
  }, { contactId });
}

export function createNoteRequest(options: HubSpotOptions, note: NonNullable<HubSpotDelivery['note']>, contactId: string): OutboundRequest {
  return request(options, 'create_note', 'POST', 'notes', {
    properties: { hs_timestamp: note.timestamp, hs_note_body: note.body },
    associations: [
      { to: { id: contactId }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: NOTE_TO_CONTACT_ASSOCIATION_TYPE }] },
    ],
  });
}

/** The first request of a delivery: the contact write the upsert mode starts with. */
export function firstRequest(options: HubSpotOptions, delivery: HubSpotDelivery): OutboundRequest {
  if (options.upsertMode === 'search') return searchContactRequest(options, delivery);
  if (options.upsertMode === 'batch') return upsertContactRequest(options, delivery);
  return updateContactByEmailRequest(options, delivery);
}
