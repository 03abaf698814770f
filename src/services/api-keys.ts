import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ConflictError, NotFoundError, ValidationError, type ErrorDetail } from '../errors.ts';
import { newId } from '../core/ids.ts';
import { apiKeyCreateSchema, apiKeyPatchSchema, fieldsOf, INGEST_QUOTA_RANGE } from '../core/api-schemas.ts';
import { defaultBurst } from '../core/token-bucket.ts';
import type { ApiKeyRecord, Role, Storage } from '../storage/types.ts';

export const ROLES: readonly Role[] = ['ingest', 'read', 'admin'];

const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex');

/** `sk_<role>_<43 chars of base64url>`: the role is visible, which helps an operator spot a misused key. */
export function generateApiKey(role: Role): string {
  return `sk_${role}_${randomBytes(32).toString('base64url')}`;
}

/**
 * What is stored and shown to recognise a key: its `sk_<role>_` label (if it has one) and the
 * next four characters. Never more, so even a short SLUICE_ADMIN_KEY is not stored in clear.
 */
export function keyPrefix(key: string): string {
  const label = /^sk_(?:ingest|read|admin)_/.exec(key)?.[0] ?? '';
  return key.slice(0, label.length + 4);
}

export interface PublicApiKey {
  id: string;
  name: string | null;
  role: Role;
  prefix: string;
  created_at: string;
  revoked_at: string | null;
  /** Ingest quota, events per second (null: unlimited), and the burst in force. */
  rate_limit: number | null;
  rate_burst: number | null;
}

export interface IngestQuotaSetting {
  rate_limit: number | null;
  rate_burst: number | null;
}

/** Reads `rate_limit` and `rate_burst` from a request body; problems go to `details`. */
function readQuota(body: Record<string, unknown>, details: ErrorDetail[]): IngestQuotaSetting {
  const { rate_limit: rate = null, rate_burst: burst = null } = body;
  if (rate !== null && (typeof rate !== 'number' || !Number.isFinite(rate) || rate < INGEST_QUOTA_RANGE.min || rate > INGEST_QUOTA_RANGE.max)) {
    details.push({ path: '$.rate_limit', message: `must be null or a number of events per second from ${INGEST_QUOTA_RANGE.min} to ${INGEST_QUOTA_RANGE.max}` });
  }
  if (burst !== null && (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1 || burst > INGEST_QUOTA_RANGE.maxBurst)) {
    details.push({ path: '$.rate_burst', message: `must be null or a whole number of events from 1 to ${INGEST_QUOTA_RANGE.maxBurst}` });
  } else if (burst !== null && rate === null) {
    details.push({ path: '$.rate_burst', message: 'needs rate_limit: a burst is the room above a rate' });
  }
  return { rate_limit: rate as number | null, rate_burst: burst as number | null };
}

function unknownFields(body: Record<string, unknown>, known: string[], details: ErrorDetail[]): void {
  for (const k of Object.keys(body)) if (!known.includes(k)) details.push({ path: `$.${k}`, message: `is not a known field (${known.join(', ')})` });
}

export function toPublicKey(record: ApiKeyRecord): PublicApiKey {
  return {
    id: record.id,
    name: record.name,
    role: record.role,
    prefix: record.prefix,
    created_at: new Date(record.created_at).toISOString(),
    revoked_at: record.revoked_at === null ? null : new Date(record.revoked_at).toISOString(),
    rate_limit: record.rate_limit ?? null,
    rate_burst: record.rate_limit == null ? null : (record.rate_burst ?? defaultBurst(record.rate_limit)),
  };
}

/**
 * Keys are stored as SHA-256 hashes; a presented key is looked up by its hash (indexed) and the
 * hash compared again in constant time. Verified keys are cached briefly so ingest does not hit the
 * database per request; revocation through this service clears the cache at once.
 */
export class ApiKeyService {
  #cache = new Map<string, { record: ApiKeyRecord; until: number }>();

  constructor(private readonly storage: Storage, private readonly now: () => number = Date.now) {}

  async create(body: unknown): Promise<{ record: ApiKeyRecord; key: string }> {
    const input = (body && typeof body === 'object' && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
    const { role, name } = input;
    const details: ErrorDetail[] = [];
    unknownFields(input, fieldsOf(apiKeyCreateSchema), details);
    const quota = readQuota(input, details);
    if (typeof role !== 'string' || !ROLES.includes(role as Role)) details.push({ path: '$.role', message: `must be one of ${ROLES.join(', ')}` });
    if (name !== undefined && name !== null && (typeof name !== 'string' || name.length > 200)) details.push({ path: '$.name', message: 'must be a string of at most 200 characters' });
    if (details.length) throw new ValidationError('Invalid API key request.', details);
    return this.createUnchecked(role as Role, (name as string | undefined) ?? null, undefined, quota);
  }

  /** Sets or clears (nulls) a key's ingest quota; it applies at once. */
  async setQuota(id: string, body: unknown): Promise<ApiKeyRecord> {
    const input = (body && typeof body === 'object' && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
    const details: ErrorDetail[] = [];
    unknownFields(input, fieldsOf(apiKeyPatchSchema), details);
    if (!Object.keys(input).length) details.push({ path: '$', message: 'give rate_limit (and optionally rate_burst), or rate_limit: null to lift the quota' });
    const quota = readQuota(input, details);
    if (details.length) throw new ValidationError('Invalid API key change.', details);
    if (!(await this.storage.setApiKeyQuota(id, quota.rate_limit, quota.rate_burst))) throw new NotFoundError('API key', id);
    this.#cache.clear();
    return (await this.storage.listApiKeys()).find((k) => k.id === id)!;
  }

  async createUnchecked(role: Role, name: string | null, key = generateApiKey(role), quota: IngestQuotaSetting = { rate_limit: null, rate_burst: null }): Promise<{ record: ApiKeyRecord; key: string }> {
    const record: ApiKeyRecord = {
      id: newId('key', this.now()),
      name,
      role,
      prefix: keyPrefix(key),
      hash: sha256(key),
      created_at: this.now(),
      revoked_at: null,
      ...quota,
    };
    await this.storage.insertApiKey(record);
    return { record, key };
  }

  /**
   * Makes sure `key` exists as an admin key (SLUICE_ADMIN_KEY bootstrap). A key that was revoked
   * stays revoked: restarting with the same environment must not bring it back.
   */
  async ensureAdminKey(key: string): Promise<{ outcome: 'added' | 'present' } | { outcome: 'revoked'; record: ApiKeyRecord }> {
    const existing = await this.storage.findApiKeyByHash(sha256(key));
    if (existing?.revoked_at != null) return { outcome: 'revoked', record: existing };
    if (existing) return { outcome: 'present' };
    await this.createUnchecked('admin', 'bootstrap (SLUICE_ADMIN_KEY)', key);
    return { outcome: 'added' };
  }

  async verify(presented: string): Promise<ApiKeyRecord | undefined> {
    const digest = sha256(presented);
    const cached = this.#cache.get(digest);
    if (cached && cached.until > this.now()) return cached.record;
    const found = await this.storage.findApiKeyByHash(digest);
    const match = found && found.revoked_at === null && timingSafeEqual(Buffer.from(found.hash, 'hex'), Buffer.from(digest, 'hex')) ? found : undefined;
    if (match) {
      if (this.#cache.size > 1000) this.#cache.clear();
      this.#cache.set(digest, { record: match, until: this.now() + 5_000 });
    }
    return match;
  }

  /** Forget verified keys (another instance revoked one). */
  invalidate(): void {
    this.#cache.clear();
  }

  list(): Promise<ApiKeyRecord[]> {
    return this.storage.listApiKeys();
  }

  /** Refuses to revoke the last active admin key (409) unless `force`: that would lock everyone out. */
  async revoke(id: string, options: { force?: boolean } = {}): Promise<void> {
    const all = await this.storage.listApiKeys();
    const target = all.find((k) => k.id === id && k.revoked_at === null);
    if (!options.force && target?.role === 'admin' && all.filter((k) => k.role === 'admin' && k.revoked_at === null).length === 1) {
      throw new ConflictError('last_admin_key', 'This is the last active admin key; create another admin key before revoking it.');
    }
    if (!(await this.storage.revokeApiKey(id, this.now()))) throw new NotFoundError('API key', id);
    this.#cache.clear();
  }
}
