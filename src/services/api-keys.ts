import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { NotFoundError, ValidationError } from '../errors.ts';
import { newId } from '../core/ids.ts';
import type { ApiKeyRecord, Role, Storage } from '../storage/types.ts';

export const ROLES: readonly Role[] = ['ingest', 'read', 'admin'];
const PREFIX_LENGTH = 16;

const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex');

/** `sk_<role>_<43 chars of base64url>`: the role is visible, which helps an operator spot a misused key. */
export function generateApiKey(role: Role): string {
  return `sk_${role}_${randomBytes(32).toString('base64url')}`;
}

export interface PublicApiKey {
  id: string;
  name: string | null;
  role: Role;
  prefix: string;
  created_at: string;
  revoked_at: string | null;
}

export function toPublicKey(record: ApiKeyRecord): PublicApiKey {
  return {
    id: record.id,
    name: record.name,
    role: record.role,
    prefix: record.prefix,
    created_at: new Date(record.created_at).toISOString(),
    revoked_at: record.revoked_at === null ? null : new Date(record.revoked_at).toISOString(),
  };
}

/**
 * Keys are stored as SHA-256 hashes; a presented key is looked up by its prefix and its hash
 * compared in constant time. Verified keys are cached briefly so ingest does not hit the
 * database per request; revocation through this service clears the cache at once.
 */
export class ApiKeyService {
  #cache = new Map<string, { record: ApiKeyRecord; until: number }>();

  constructor(private readonly storage: Storage, private readonly now: () => number = Date.now) {}

  async create(role: unknown, name?: unknown): Promise<{ record: ApiKeyRecord; key: string }> {
    const details = [];
    if (typeof role !== 'string' || !ROLES.includes(role as Role)) details.push({ path: '$.role', message: `must be one of ${ROLES.join(', ')}` });
    if (name !== undefined && name !== null && (typeof name !== 'string' || name.length > 200)) details.push({ path: '$.name', message: 'must be a string of at most 200 characters' });
    if (details.length) throw new ValidationError('Invalid API key request.', details);
    return this.createUnchecked(role as Role, (name as string | undefined) ?? null);
  }

  async createUnchecked(role: Role, name: string | null, key = generateApiKey(role)): Promise<{ record: ApiKeyRecord; key: string }> {
    const record: ApiKeyRecord = {
      id: newId('key', this.now()),
      name,
      role,
      prefix: key.slice(0, PREFIX_LENGTH),
      hash: sha256(key),
      created_at: this.now(),
      revoked_at: null,
    };
    await this.storage.insertApiKey(record);
    return { record, key };
  }

  /** Makes sure `key` exists as an admin key (SLUICE_ADMIN_KEY bootstrap); true if it was added. */
  async ensureAdminKey(key: string): Promise<boolean> {
    if (await this.verify(key)) return false;
    await this.createUnchecked('admin', 'bootstrap (SLUICE_ADMIN_KEY)', key);
    return true;
  }

  async verify(presented: string): Promise<ApiKeyRecord | undefined> {
    const digest = sha256(presented);
    const cached = this.#cache.get(digest);
    if (cached && cached.until > this.now()) return cached.record;
    const candidates = await this.storage.findApiKeyByPrefix(presented.slice(0, PREFIX_LENGTH));
    const expected = Buffer.from(digest, 'hex');
    const match = candidates.find((c) => timingSafeEqual(Buffer.from(c.hash, 'hex'), expected));
    if (match) {
      if (this.#cache.size > 1000) this.#cache.clear();
      this.#cache.set(digest, { record: match, until: this.now() + 5_000 });
    }
    return match;
  }

  list(): Promise<ApiKeyRecord[]> {
    return this.storage.listApiKeys();
  }

  async revoke(id: string): Promise<void> {
    if (!(await this.storage.revokeApiKey(id, this.now()))) throw new NotFoundError('API key', id);
    this.#cache.clear();
  }
}
