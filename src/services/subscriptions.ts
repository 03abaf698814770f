import { ConflictError, NotFoundError, ValidationError, type ErrorDetail } from '../errors.ts';
import { newId } from '../core/ids.ts';
import { generateSigningSecret, secretPrefix } from '../core/signing.ts';
import { resolveSchedule, validateRetryPolicy } from '../core/backoff.ts';
import type { SecretBox } from '../core/secret-box.ts';
import type { ConnectorDefinition } from '../delivery/connector.ts';
import type { RetryPolicy, Storage, SubscriptionRecord } from '../storage/types.ts';
import { ajvErrorsToDetails, checkHeaders, checkSubscriptionShape, headerValueProblem, isCredentialHeader } from './subscription-input.ts';
import { normalizeOrdering, orderingExpression } from '../core/ordering.ts';
import { Ajv, type ValidateFunction } from 'ajv';

export type AuthConfig =
  | { type: 'basic'; username: string; password: string }
  | { type: 'bearer'; token: string }
  | { type: 'header'; name: string; value: string };

/** What the subscription service needs from the template engine, to refuse bad templates at save. */
export interface TemplateChecker {
  checkMapping(mapping: string, path: string): ErrorDetail[];
  checkFilter(filter: string, path: string): ErrorDetail[];
  checkOrderingKey(key: string, path: string): ErrorDetail[];
}

export interface SubscriptionServiceDeps {
  storage: Storage;
  secretBox: SecretBox;
  isKnownEventPattern: (pattern: string) => boolean;
  templates: TemplateChecker;
  connectors: ReadonlyMap<string, ConnectorDefinition>;
  /** Refuses URLs the gateway must not call (scheme, SSRF); throws ValidationError. */
  checkDestination: (url: string, path: string) => Promise<void>;
  secretRotationMs: number;
  /** A change may have let keys stopped by `on_failure: block` go on: the worker looks at once. */
  onWork?: () => void;
  /** A subscription was written through this service (the delivery thread keeps a cache of its own). */
  onChanged?: () => void;
  now?: () => number;
}

/** A subscription as the delivery engine uses it: decrypted, ready to sign and send. */
export interface RuntimeSubscription {
  record: SubscriptionRecord;
  auth: AuthConfig | null;
  /** Non-secret options merged with the decrypted secret ones. */
  connectorOptions: Record<string, unknown>;
  /** Credential-like custom headers, decrypted (never in `record.headers` once sealed). */
  secretHeaders: Record<string, string>;
  secret: string;
  previousSecret: string | null;
  /** Delay (ms) before each attempt, from `retry` or the default curve. */
  schedule: number[];
}

const MASK = '********';

function authHeaders(auth: AuthConfig | null): Record<string, string> {
  if (!auth) return {};
  switch (auth.type) {
    case 'basic':
      return { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` };
    case 'bearer':
      return { authorization: `Bearer ${auth.token}` };
    case 'header':
      return { [auth.name.toLowerCase()]: auth.value };
  }
}

/** Headers a runtime subscription adds to each request: custom headers, then auth. */
export function subscriptionRequestHeaders(sub: RuntimeSubscription): Record<string, string> {
  return { ...sub.record.headers, ...sub.secretHeaders, ...authHeaders(sub.auth) };
}

/** The names whose values are secrets in a request, for masking the delivery log. */
export function secretHeaderNames(sub: RuntimeSubscription): string[] {
  const names = ['authorization'];
  if (sub.auth?.type === 'header') names.push(sub.auth.name.toLowerCase());
  for (const name of Object.keys(sub.secretHeaders)) names.push(name.toLowerCase());
  return names;
}

/** Every signing secret valid at `now`, newest first (two during a rotation overlap). */
export function signingSecrets(sub: RuntimeSubscription, now: number): string[] {
  const { previous_secret_expires_at: expires } = sub.record;
  return sub.previousSecret && expires !== null && expires > now ? [sub.secret, sub.previousSecret] : [sub.secret];
}

export class SubscriptionService {
  readonly #deps: SubscriptionServiceDeps;
  readonly #now: () => number;
  readonly #optionValidators = new Map<string, ValidateFunction>();
  #cache: Map<string, RuntimeSubscription> | undefined;
  #loading: Promise<Map<string, RuntimeSubscription>> | undefined;
  #generation = 0;

  constructor(deps: SubscriptionServiceDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    const ajv = new Ajv({ allErrors: true, strict: false });
    for (const connector of deps.connectors.values()) this.#optionValidators.set(connector.name, ajv.compile(connector.optionsSchema));
  }

  // --- reads ------------------------------------------------------------------------------
  async list(): Promise<SubscriptionRecord[]> {
    return this.#deps.storage.listSubscriptions();
  }

  async get(id: string): Promise<SubscriptionRecord> {
    const sub = await this.#deps.storage.getSubscription(id);
    if (!sub) throw new NotFoundError('Subscription', id);
    return sub;
  }

  /** Deliveries created in the last 24 hours by state: health at a glance. */
  stats24h(id: string): Promise<{ delivered: number; failed: number; pending: number }> {
    return this.#deps.storage.deliveryStats(id, this.#now() - 86_400_000);
  }

  /** Every live subscription, decrypted; cached until the next write through this service. */
  /**
   * Every live subscription, cached. Callers arriving while the cache loads share that one load
   * (a storage call takes a round trip to the storage thread: one each would also spread them
   * over several turns, and so over several group commits); a load overtaken by invalidate()
   * answers its callers but is not kept.
   */
  async runtimeAll(): Promise<Map<string, RuntimeSubscription>> {
    if (this.#cache) return this.#cache;
    if (!this.#loading) {
      const generation = this.#generation;
      const loading = this.#deps.storage.listSubscriptions().then((records) => {
        const cache = new Map<string, RuntimeSubscription>();
        for (const record of records) cache.set(record.id, this.#toRuntime(record));
        if (generation === this.#generation) this.#cache = cache;
        return cache;
      });
      this.#loading = loading;
      const done = () => {
        if (this.#loading === loading) this.#loading = undefined;
      };
      loading.then(done, done);
    }
    return this.#loading;
  }

  async runtime(id: string): Promise<RuntimeSubscription | undefined> {
    return (await this.runtimeAll()).get(id);
  }

  /** A write through this service: the cache, and any other reader's (onChanged), is stale. */
  #changed(): void {
    this.invalidate();
    this.#deps.onChanged?.();
  }

  /** Drop the cache (another writer, such as the delivery engine, changed subscriptions). */
  invalidate(): void {
    this.#cache = undefined;
    this.#loading = undefined;
    this.#generation++;
  }

  #toRuntime(record: SubscriptionRecord): RuntimeSubscription {
    const box = this.#deps.secretBox;
    return {
      record,
      auth: record.auth_sealed ? box.openJson<AuthConfig>(record.auth_sealed) : null,
      connectorOptions: { ...record.connector_options, ...(record.connector_secrets_sealed ? box.openJson<Record<string, unknown>>(record.connector_secrets_sealed) : {}) },
      secretHeaders: this.#secretHeaders(record),
      secret: box.open(record.secret_sealed),
      previousSecret: record.previous_secret_sealed ? box.open(record.previous_secret_sealed) : null,
      schedule: resolveSchedule(record.retry),
    };
  }

  /** The credential headers of a row; rows saved before headers were sealed may still hold them in clear. */
  #secretHeaders(record: SubscriptionRecord): Record<string, string> {
    return { ...pickCredentialHeaders(record.headers), ...(record.headers_sealed ? this.#deps.secretBox.openJson<Record<string, string>>(record.headers_sealed) : {}) };
  }

  /** The public view: secrets masked, never returned. */
  present(sub: SubscriptionRecord): Record<string, unknown> {
    const runtime = this.#toRuntime(sub);
    const connector = this.#deps.connectors.get(sub.connector);
    const masked: Record<string, unknown> = { ...sub.connector_options };
    for (const name of connector?.secretOptions ?? []) if (name in runtime.connectorOptions) masked[name] = MASK;
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      id: sub.id,
      name: sub.name ?? null,
      url: sub.url,
      events: sub.events,
      description: sub.description,
      enabled: sub.enabled,
      disabled_reason: sub.disabled_reason,
      headers: { ...sub.headers, ...Object.fromEntries(Object.keys(runtime.secretHeaders).map((name) => [name, MASK])) },
      auth: maskAuth(runtime.auth),
      filter: sub.filter,
      mapping: sub.mapping,
      connector: sub.connector,
      connector_options: masked,
      retry: sub.retry,
      ordering: sub.ordering ?? null,
      timeout: sub.timeout_seconds,
      rate_limit: sub.rate_limit,
      source: sub.source,
      created_at: iso(sub.created_at),
      updated_at: iso(sub.updated_at),
      last_delivery_at: iso(sub.last_delivery_at),
      last_delivery_status: sub.last_delivery_status,
      last_success_at: iso(sub.last_success_at),
      signing_secret_prefix: sub.secret_prefix,
      previous_secret_expires_at: sub.previous_secret_expires_at !== null && sub.previous_secret_expires_at > this.#now() ? iso(sub.previous_secret_expires_at) : null,
    };
  }

  // --- writes -----------------------------------------------------------------------------
  async create(body: unknown, source: 'api' | 'hook' = 'api'): Promise<{ record: SubscriptionRecord; secret: string }> {
    const shapeErrors = checkSubscriptionShape(body, 'create');
    if (shapeErrors.length) throw new ValidationError('The subscription is invalid.', shapeErrors);
    const input = body as Record<string, any>;
    const connectorName: string = input.connector ?? 'webhook';
    const connector = this.#deps.connectors.get(connectorName);
    const now = this.#now();
    const secret = generateSigningSecret();
    const record: SubscriptionRecord = {
      id: newId('sub', now),
      name: input.name ?? null,
      url: input.url ?? '',
      events: input.events,
      description: input.description ?? null,
      enabled: input.enabled ?? true,
      disabled_reason: null,
      headers: input.headers ?? {},
      auth_sealed: null,
      filter: input.filter ?? null,
      mapping: input.mapping ?? null,
      connector: connectorName,
      connector_options: {},
      connector_secrets_sealed: null,
      retry: (input.retry as RetryPolicy | undefined) ?? null,
      // Like rate_limit: an explicit null turns a connector's default ordering off.
      ordering: 'ordering' in input ? normalizeOrdering(input.ordering) : connector?.subscriptionDefaults?.ordering ?? null,
      timeout_seconds: input.timeout ?? null,
      // An explicit null turns a connector's default pacing off; leaving the field out keeps it.
      rate_limit: 'rate_limit' in input ? input.rate_limit : connector?.subscriptionDefaults?.rate_limit ?? null,
      secret_sealed: this.#deps.secretBox.seal(secret),
      secret_prefix: secretPrefix(secret),
      previous_secret_sealed: null,
      previous_secret_expires_at: null,
      source,
      created_at: now,
      updated_at: now,
      last_delivery_at: null,
      last_delivery_status: null,
      last_success_at: null,
      failing_since: null,
      deleted_at: null,
    };
    await this.#applyAndCheck(record, input, true);
    await this.#deps.storage.insertSubscription(record);
    this.#changed();
    return { record, secret };
  }

  async update(id: string, body: unknown): Promise<SubscriptionRecord> {
    const record = { ...(await this.get(id)) };
    // Read before the patch replaces `headers` (rows from before sealing hold credentials there).
    const storedHeaders = this.#secretHeaders(record);
    // What a GET shows (masked secrets, partial objects) means "keep what is stored".
    const merged = this.#mergeStoredSecrets(record, body);
    if (merged.errors.length) throw new ValidationError('The subscription change is invalid.', merged.errors);
    const shapeErrors = checkSubscriptionShape(merged.body, 'patch');
    if (shapeErrors.length) throw new ValidationError('The subscription change is invalid.', shapeErrors);
    const input = merged.body as Record<string, any>;
    if ('name' in input) record.name = input.name;
    if ('url' in input) record.url = input.url;
    if ('events' in input) record.events = input.events;
    if ('description' in input) record.description = input.description;
    if ('headers' in input) record.headers = input.headers;
    if ('filter' in input) record.filter = input.filter;
    if ('mapping' in input) record.mapping = input.mapping;
    if ('retry' in input) record.retry = input.retry;
    if ('ordering' in input) record.ordering = normalizeOrdering(input.ordering);
    if ('timeout' in input) record.timeout_seconds = input.timeout;
    if ('rate_limit' in input) record.rate_limit = input.rate_limit;
    if ('enabled' in input) {
      record.enabled = input.enabled;
      // Re-enabling clears the reason and the failure clock, so the 5-day rule starts afresh.
      if (input.enabled) Object.assign(record, { disabled_reason: null, failing_since: null });
      else record.disabled_reason = 'disabled by an operator';
    }
    if ('connector' in input && input.connector !== record.connector) {
      record.connector = input.connector;
      if (!('connector_options' in input)) input.connector_options = {};
    }
    record.updated_at = this.#now();
    await this.#applyAndCheck(record, input, false, storedHeaders);
    await this.#deps.storage.updateSubscription(record);
    this.#changed();
    if ('ordering' in input || 'enabled' in input) this.#deps.onWork?.();
    return record;
  }

  /**
   * A PATCH body with `auth` and `connector_options` resolved against the stored ones: a masked
   * value (`********`, as every read shows a secret) keeps the stored value; an `auth` object
   * without `type`, or of the stored type, keeps the fields it leaves out; `connector_options`
   * keeps the options it leaves out, and `null` removes one. A mask with nothing stored behind
   * it (another auth type, a new option, another connector) is refused: it would be sent as is.
   */
  #mergeStoredSecrets(record: SubscriptionRecord, body: unknown): { body: unknown; errors: ErrorDetail[] } {
    if (!isPlainObject(body)) return { body, errors: [] };
    const out: Record<string, unknown> = { ...body };
    const errors: ErrorDetail[] = [];
    const stored = this.#toRuntime(record);
    if (isPlainObject(body.auth)) {
      const given = body.auth;
      const sameType = stored.auth !== null && (given.type === undefined || given.type === stored.auth.type);
      const auth: Record<string, unknown> = sameType ? { ...stored.auth, ...given } : { ...given };
      for (const [field, value] of Object.entries(given)) {
        if (value !== MASK) continue;
        if (sameType && field in stored.auth!) auth[field] = (stored.auth as Record<string, unknown>)[field];
        else errors.push({ path: `$.auth.${field}`, message: 'is masked (********) and nothing is stored to keep: send the real value' });
      }
      out.auth = auth;
    }
    const sameConnector = !('connector' in body) || body.connector === record.connector;
    if (isPlainObject(body.connector_options)) {
      const given = body.connector_options;
      const options: Record<string, unknown> = sameConnector ? { ...stored.connectorOptions } : {};
      for (const [name, value] of Object.entries(given)) {
        if (value === null) delete options[name];
        else if (value !== MASK) options[name] = value;
        else if (!sameConnector || !(name in stored.connectorOptions)) errors.push({ path: `$.connector_options.${name}`, message: 'is masked (********) and nothing is stored to keep: send the real value' });
      }
      // Merging is for leaving things out. When the merge is invalid but what was sent is a
      // complete set on its own (Slack: a bot token replacing a webhook URL), the sent set wins.
      const validate = this.#optionValidators.get(String(body.connector ?? record.connector));
      const alone = Object.fromEntries(Object.entries(given).filter(([, value]) => value !== null));
      const complete = !Object.values(alone).includes(MASK) && validate?.(alone) === true;
      out.connector_options = complete && validate?.(options) === false ? alone : options;
    }
    return { body: out, errors };
  }

  async remove(id: string): Promise<void> {
    if (!(await this.#deps.storage.deleteSubscription(id, this.#now()))) throw new NotFoundError('Subscription', id);
    this.#changed();
  }

  async rotateSecret(id: string, overlapMs = this.#deps.secretRotationMs): Promise<{ record: SubscriptionRecord; secret: string }> {
    const record = { ...(await this.get(id)) };
    const secret = generateSigningSecret();
    const now = this.#now();
    Object.assign(record, {
      previous_secret_sealed: overlapMs > 0 ? record.secret_sealed : null,
      previous_secret_expires_at: overlapMs > 0 ? now + overlapMs : null,
      secret_sealed: this.#deps.secretBox.seal(secret),
      secret_prefix: secretPrefix(secret),
      updated_at: now,
    });
    await this.#deps.storage.updateSubscription(record);
    this.#changed();
    return { record, secret };
  }

  /**
   * Semantic checks shared by create and patch; seals auth and secret options into `record`.
   * `storedHeaders`: the credential headers stored before this patch, which a mask keeps.
   */
  async #applyAndCheck(record: SubscriptionRecord, input: Record<string, any>, creating: boolean, storedHeaders: Record<string, string> = {}): Promise<void> {
    if (record.name) await this.#assertNameFree(record.name, record.id);
    const details: ErrorDetail[] = [];
    const connector = this.#deps.connectors.get(record.connector);
    if (!connector) {
      details.push({ path: '$.connector', message: `unknown connector; one of ${[...this.#deps.connectors.keys()].join(', ')}` });
      throw new ValidationError('The subscription is invalid.', details);
    }
    for (const [i, pattern] of record.events.entries()) {
      if (!this.#deps.isKnownEventPattern(pattern)) details.push({ path: `$.events[${i}]`, message: `"${pattern}" is not an event type in the catalog (see GET /api/v1/event-types)` });
    }
    if ('headers' in input || creating) {
      const given = { ...record.headers };
      // A masked value sent back unchanged (a GET edited and PATCHed) keeps the stored one; a
      // mask with nothing stored behind it is refused, as for auth: it would be sent as is.
      for (const [name, value] of Object.entries(given)) {
        if (value !== MASK || !isCredentialHeader(name)) continue;
        if (name in storedHeaders) given[name] = storedHeaders[name];
        else details.push({ path: `$.headers.${name}`, message: 'is masked (********) and nothing is stored to keep: send the real value' });
      }
      details.push(...checkHeaders(given));
      const secret = pickCredentialHeaders(given);
      record.headers = Object.fromEntries(Object.entries(given).filter(([name]) => !isCredentialHeader(name)));
      record.headers_sealed = Object.keys(secret).length ? this.#deps.secretBox.sealJson(secret) : null;
    }
    if (record.retry) details.push(...validateRetryPolicy(record.retry, '$.retry'));
    if (record.filter) details.push(...this.#deps.templates.checkFilter(record.filter, '$.filter'));
    const orderingKey = orderingExpression(record.ordering);
    if (orderingKey) details.push(...this.#deps.templates.checkOrderingKey(orderingKey, '$.ordering.key'));
    if (record.mapping) details.push(...this.#deps.templates.checkMapping(record.mapping, '$.mapping'));

    if ('auth' in input || creating) {
      const auth = (input.auth ?? null) as AuthConfig | null;
      if (auth?.type === 'header') {
        details.push(...checkHeaders({ [auth.name]: '' }, '$.auth.name').map((d) => ({ ...d, path: '$.auth.name' })));
        const problem = headerValueProblem(auth.value);
        if (problem) details.push({ path: '$.auth.value', message: problem });
      }
      if (auth?.type === 'bearer' && headerValueProblem(auth.token)) details.push({ path: '$.auth.token', message: headerValueProblem(auth.token)! });
      if (auth && Object.keys({ ...record.headers, ...this.#secretHeaders(record) }).some((h) => h.toLowerCase() === 'authorization')) {
        details.push({ path: '$.headers.Authorization', message: 'conflicts with auth; configure one or the other' });
      }
      record.auth_sealed = auth ? this.#deps.secretBox.sealJson(auth) : null;
    }
    if ('connector_options' in input || creating) {
      const options = (input.connector_options ?? {}) as Record<string, unknown>;
      const validate = this.#optionValidators.get(connector.name)!;
      if (!validate(options)) details.push(...ajvErrorsToDetails(validate.errors, '$.connector_options', connector.optionsSchema));
      const plain: Record<string, unknown> = {};
      const secret: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(options)) (connector.secretOptions.includes(key) ? secret : plain)[key] = value;
      record.connector_options = plain;
      record.connector_secrets_sealed = Object.keys(secret).length ? this.#deps.secretBox.sealJson(secret) : null;
    }
    if (connector.url === 'required') {
      if (!record.url) details.push({ path: '$.url', message: 'is required' });
      else if (details.length === 0) await this.#collect(details, () => this.#deps.checkDestination(record.url, '$.url'));
    } else if (details.length === 0 && connector.resolveUrl) {
      record.url = '';
      const options = this.#toRuntime(record).connectorOptions;
      await this.#collect(details, () => this.#deps.checkDestination(connector.resolveUrl!(options), '$.connector_options'));
    }
    if (details.length) throw new ValidationError('The subscription is invalid.', details);
  }

  async #assertNameFree(name: string, id: string): Promise<void> {
    const holder = (await this.list()).find((s) => s.name === name && s.id !== id);
    if (holder) throw new ConflictError('name_taken', `Subscription ${holder.id} already has the name "${name}".`, [{ path: '$.name', message: 'is already taken' }]);
  }

  async #collect(details: ErrorDetail[], check: () => Promise<void>): Promise<void> {
    try {
      await check();
    } catch (err) {
      // The only problem: its own code (`destination_forbidden`) tells the caller what is wrong.
      if (err instanceof ValidationError && details.length === 0) throw err;
      if (err instanceof ValidationError) details.push(...err.details);
      else throw err;
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function pickCredentialHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => isCredentialHeader(name)));
}

function maskAuth(auth: AuthConfig | null): Record<string, unknown> | null {
  if (!auth) return null;
  switch (auth.type) {
    case 'basic':
      return { type: 'basic', username: auth.username, password: MASK };
    case 'bearer':
      return { type: 'bearer', token: MASK };
    case 'header':
      return { type: 'header', name: auth.name, value: MASK };
  }
}
