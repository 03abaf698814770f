import type { ConnectorContext, ConnectorDefinition, OutboundRequest, ResponseInfo, Verdict } from '../../src/delivery/connector.ts';
import {
  DEFAULT_API_BASE_URL,
  DEFAULT_MIN_RATE_LIMIT_DELAY_MS,
  associateCompanyRequest,
  createCompanyRequest,
  createContactRequest,
  createNoteRequest,
  findNoteRequest,
  firstRequest,
  readDelivery,
  readOptions,
  searchCompanyRequest,
  updateContactRequest,
  type HubSpotDelivery,
  type HubSpotOptions,
  type HubSpotStep,
} from './requests.ts';
import { describeError, existingContactId, markedNote, objectId, rateLimitPolicy, searchOutcome, upsertOutcome } from './responses.ts';

/**
 * HubSpot CRM: each delivery writes a contact keyed by email, associates it with its company
 * when the event names one, then logs a note on it unless an earlier attempt already did. The
 * steps run in one attempt (the engine's `continue` verdict) and the note comes last, so an
 * attempt succeeds only once the note exists; a retry starts again from the contact, which no
 * step duplicates. See README.md for what is guaranteed.
 */

/** After a DAILY 429 there is no point in trying before the next hour (the limit resets at midnight, account time). */
export const DAILY_LIMIT_DELAY_MS = 3_600_000;
/** HubSpot: wait at least 2 s after a 423 Locked. */
export const LOCKED_DELAY_MS = 2_000;
/** 477 Migration in Progress without a Retry-After: a migration takes minutes, not seconds. */
export const MIGRATION_DELAY_MS = 60_000;

const optionsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['access_token'],
  properties: {
    access_token: {
      type: 'string',
      minLength: 8,
      title: 'Access token',
      description: 'The private app access token (pat-…), with the crm.objects.contacts.read and .write scopes, and crm.objects.companies.read and .write to associate companies. Secret.',
    },
    api_base_url: {
      type: 'string',
      pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$',
      default: DEFAULT_API_BASE_URL,
      title: 'API base URL',
      description: 'HubSpot API origin; change it only to go through a proxy or a test double.',
    },
    api_version: {
      type: 'string',
      pattern: '^(v3|[0-9]{4}-[0-9]{2})$',
      default: 'v3',
      title: 'API version',
      description: '"v3" (/crm/v3/objects/…, supported by HubSpot until September 2027) or a date version such as "2026-03" (/crm/objects/2026-03/…).',
    },
    upsert_mode: {
      type: 'string',
      enum: ['email', 'search', 'batch'],
      default: 'email',
      title: 'Contact upsert',
      description: '"email": update by email (only the properties sent change), create when HubSpot has no such contact. "search": search by email, then create (a 409 "Contact already exists" becomes an update) or update. "batch": one batch upsert keyed by email; HubSpot does not support it as a partial update, so only for templates that send the whole contact.',
    },
    lead_score_property: {
      type: 'string',
      pattern: '^[a-z0-9_]{1,100}$',
      title: 'Lead score property',
      description: 'Internal name of a contact property (e.g. a custom number property) that the default template fills with lead.created\'s score. Unset: the score goes into the note only.',
    },
    min_rate_limit_delay_ms: {
      type: 'integer',
      minimum: 0,
      maximum: 3_600_000,
      default: DEFAULT_MIN_RATE_LIMIT_DELAY_MS,
      title: 'Rate-limit floor (ms)',
      description: 'Shortest wait after a burst 429 (TEN_SECONDLY_ROLLING), when HubSpot\'s Retry-After asks for less.',
    },
  },
} as const;

/** Transport-level answers that mean the same at every step; undefined for the step to decide. */
function classifyCommon(response: ResponseInfo, options: HubSpotOptions, step: HubSpotStep): Verdict | undefined {
  const { status } = response;
  if (status === 401) {
    return { outcome: 'disable', reason: `HubSpot rejected the access token (${describeError(response)}); create a new token (private app or service key), set connector_options.access_token and re-enable the subscription` };
  }
  if (status === 403) {
    const scopes = step.includes('company') ? 'crm.objects.companies.read and crm.objects.companies.write' : 'crm.objects.contacts.read and crm.objects.contacts.write';
    return { outcome: 'disable', reason: `HubSpot refused the ${step} request (${describeError(response)}); the token needs the ${scopes} scopes` };
  }
  if (status === 429) {
    const policy = rateLimitPolicy(response);
    if (policy === 'DAILY') {
      return { outcome: 'retry', reason: `HubSpot daily API limit reached (${describeError(response)}); it resets at midnight in the account's time zone`, minDelayMs: DAILY_LIMIT_DELAY_MS };
    }
    return { outcome: 'retry', reason: `HubSpot rate limit${policy ? ` ${policy}` : ''} (${describeError(response)})`, minDelayMs: options.minRateLimitDelayMs };
  }
  if (status === 423) return { outcome: 'retry', reason: `HubSpot record locked (${describeError(response)})`, minDelayMs: LOCKED_DELAY_MS };
  if (status === 477) return { outcome: 'retry', reason: `HubSpot account migration in progress (${describeError(response)})`, minDelayMs: MIGRATION_DELAY_MS };
  if (status === 408 || status >= 500) return { outcome: 'retry', reason: `HubSpot ${step} failed (${describeError(response)})` };
  return undefined;
}

/** The contact exists and has this id: its company next, when the event names one. */
function afterContact(options: HubSpotOptions, delivery: HubSpotDelivery, contactId: string): Verdict {
  if (delivery.company) return { outcome: 'continue', next: searchCompanyRequest(options, delivery.company, contactId) };
  return afterCompany(options, delivery, contactId);
}

/** Then the note: first look for the one an earlier attempt may have logged, or finish without one. */
function afterCompany(options: HubSpotOptions, delivery: HubSpotDelivery, contactId: string): Verdict {
  if (!delivery.note) return { outcome: 'success', note: `contact ${contactId}` };
  return { outcome: 'continue', next: findNoteRequest(options, delivery, contactId) };
}

/** Found or matched by a 409: update it when there is something to update, else go on to the note. */
function updateOrContinue(options: HubSpotOptions, delivery: HubSpotDelivery, contactId: string): Verdict {
  if (Object.keys(delivery.properties).length === 0) return afterContact(options, delivery, contactId);
  return { outcome: 'continue', next: updateContactRequest(options, delivery, contactId) };
}

function contactIdInUrl(url: string): string | undefined {
  const match = /\/contacts\/([^/?#]+)$/.exec(url);
  return match ? decodeURIComponent(match[1]) : undefined;
}

function classifyStep(response: ResponseInfo, ctx: ConnectorContext, request: OutboundRequest, options: HubSpotOptions): Verdict {
  const step = request.step as HubSpotStep;
  const common = classifyCommon(response, options, step);
  if (common) return common;
  const delivery = readDelivery(ctx.payload, ctx.event);
  const ok = response.status >= 200 && response.status <= 299;

  const contactId = request.state?.contactId ?? '';

  switch (step) {
    case 'update_contact_by_email': {
      // No contact has this email yet: create it (a 409 then means it was created meanwhile).
      if (response.status === 404) return { outcome: 'continue', next: createContactRequest(options, delivery) };
      if (!ok) break;
      const id = objectId(response);
      return id ? afterContact(options, delivery, id) : { outcome: 'fail', reason: `HubSpot answered the contact update with HTTP ${response.status} but no id` };
    }
    case 'upsert_contact': {
      if (!ok) break;
      const outcome = upsertOutcome(response);
      return 'contactId' in outcome ? afterContact(options, delivery, outcome.contactId) : { outcome: 'fail', reason: outcome.error };
    }
    case 'search_contact': {
      if (!ok) break;
      const outcome = searchOutcome(response);
      if ('id' in outcome) return updateOrContinue(options, delivery, outcome.id);
      if ('notFound' in outcome) return { outcome: 'continue', next: createContactRequest(options, delivery) };
      return { outcome: 'fail', reason: outcome.error };
    }
    case 'create_contact': {
      if (response.status === 409) {
        // The search index lags behind writes: the contact exists after all. Update it instead.
        const existing = existingContactId(response);
        if (existing) return updateOrContinue(options, delivery, existing);
        break;
      }
      if (!ok) break;
      const contactId = objectId(response);
      return contactId ? afterContact(options, delivery, contactId) : { outcome: 'fail', reason: `HubSpot answered the contact creation with HTTP ${response.status} but no id` };
    }
    case 'update_contact': {
      // Deleted or merged since the search: the next attempt searches again.
      if (response.status === 404) return { outcome: 'retry', reason: `HubSpot no longer has the contact (${describeError(response)})` };
      if (!ok) break;
      const contactId = objectId(response) ?? contactIdInUrl(request.url);
      return contactId ? afterContact(options, delivery, contactId) : { outcome: 'fail', reason: `HubSpot answered the contact update with HTTP ${response.status} but no id` };
    }
    case 'search_company': {
      if (!ok) break;
      const outcome = searchOutcome(response, 'company');
      if ('id' in outcome) return { outcome: 'continue', next: associateCompanyRequest(options, contactId, outcome.id) };
      if ('notFound' in outcome) return { outcome: 'continue', next: createCompanyRequest(options, delivery.company!, contactId) };
      return { outcome: 'fail', reason: outcome.error };
    }
    case 'create_company': {
      if (!ok) break;
      const companyId = objectId(response);
      return companyId
        ? { outcome: 'continue', next: associateCompanyRequest(options, contactId, companyId) }
        : { outcome: 'fail', reason: `HubSpot answered the company creation with HTTP ${response.status} but no id` };
    }
    case 'associate_company': {
      if (!ok) break;
      return afterCompany(options, delivery, contactId);
    }
    case 'find_note': {
      if (!ok) break;
      const found = markedNote(response, delivery.marker);
      if ('noteId' in found) return { outcome: 'success', note: `note ${found.noteId} already logged for this event` };
      if ('error' in found) return { outcome: 'fail', reason: found.error };
      return { outcome: 'continue', next: createNoteRequest(options, delivery.note!, contactId) };
    }
    case 'create_note': {
      if (!ok) break;
      const noteId = objectId(response);
      return { outcome: 'success', note: noteId ? `note ${noteId}` : `note created (HTTP ${response.status})` };
    }
    default:
      return { outcome: 'fail', reason: `hubspot connector: unknown step ${String(request.step)}` };
  }
  return { outcome: 'fail', reason: `HubSpot rejected the ${step} request (${describeError(response)})` };
}

export const hubspotConnector: ConnectorDefinition = {
  name: 'hubspot',
  title: 'HubSpot',
  description: 'Upserts a HubSpot contact by email and logs a note on its timeline (private app token).',
  optionsSchema,
  secretOptions: ['access_token'],
  url: 'none',
  urlIsSecret: false,
  defaultMapping: 'hubspot/default',
  // A delivery is 3 to 8 requests (contact, company, note search, note), 2 or 3 of them searches:
  // one delivery a second stays inside the smallest burst limit (100 per 10 s) and the search limit.
  subscriptionDefaults: { rate_limit: 1 },
  resolveUrl: (options) => readOptions(options).apiBaseUrl,
  buildRequest(ctx) {
    return firstRequest(readOptions(ctx.options), readDelivery(ctx.payload, ctx.event));
  },
  classifyResponse(response, ctx, request) {
    return classifyStep(response, ctx, request, readOptions(ctx.options));
  },
};
