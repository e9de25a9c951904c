/**
 * API keys for automation: a user creates one (after a fresh step-up) with a subset of their
 * permissions and an expiry; the secret (`bwk_<id>_<random>`) is shown once and stored only as
 * its SHA-256 digest. A key acts as its owner, but only with the permissions that are both in its
 * scopes and in the owner's role at the time of each request, so a demoted or disabled owner's
 * keys lose their power at once. Owners revoke their keys; `users:manage` operators list and
 * revoke the keys of their organization. Creation and revocation are audited.
 */
import type { ApiKeyView } from '@bulwark/protocol';
import type { AuditService } from '../audit/service.js';
import { DAY, MINUTE, iso, type Clock } from '../clock.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import { newId, newSecret, sha256Hex } from '../tokens.js';
import type { ApiKeyCursor, ApiKeyRow, ApiKeyStore } from './api-key-store.js';
import { actorFor, permissionsOf, type Authenticated, type CredentialAuthenticator } from './authenticate.js';
import { PERMISSIONS, requirePermission, type Actor, type Permission } from './roles.js';
import type { AccountsService } from './service.js';
import type { AccountsStore, UserRow } from './store.js';
import { decodeCursor, encodeCursor, pageOf } from '../pagination.js';
import type { Executor } from '../storage/executor.js';

export const API_KEY_PREFIX = 'bwk';

/** Usable (unrevoked, unexpired) keys one user may hold: enough for automation, bounded for abuse. */
export const MAX_USABLE_KEYS_PER_USER = 25;
export const MAX_KEY_LIFETIME_DAYS = 365;

/** last_used_at is written at most this often per key. */
const TOUCH_INTERVAL = MINUTE;

const KEY_FORMAT = /^bwk_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_[A-Za-z0-9_-]{43}$/;

/** An API key as the API lists it: a wire shape the console reads too (@bulwark/protocol). */
export type { ApiKeyView };

export interface CreateApiKeyInput {
  name: string;
  scopes: string[];
  expiresInDays: number;
}

function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

function scopesOf(row: ApiKeyRow): Permission[] {
  return (JSON.parse(row.scopes) as string[]).filter(isPermission);
}

export function toApiKeyView(row: ApiKeyRow, now: number): ApiKeyView {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    scopes: scopesOf(row),
    createdAt: new Date(row.created_at).toISOString(),
    expiresAt: new Date(row.expires_at).toISOString(),
    lastUsedAt: iso(row.last_used_at),
    revoked: row.revoked_at !== null,
    revokedAt: iso(row.revoked_at),
    expired: now >= row.expires_at,
  };
}

/** The cursor's position: `[createdAt ms, id]` of the last key of the previous page. */
const isKeyPosition = (v: unknown): v is [number, string] =>
  Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && typeof v[1] === 'string';
function parseCursor(cursor: string): ApiKeyCursor {
  const [createdAt, id] = decodeCursor(cursor, isKeyPosition, 'before');
  return { createdAt, id };
}

export class ApiKeyService {
  constructor(
    private readonly store: ApiKeyStore,
    private readonly accounts: AccountsService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  /** Creates a key for the actor; returns its secret, which is not stored and cannot be shown again. */
  async create(actor: Actor, input: CreateApiKeyInput): Promise<{ apiKey: ApiKeyView; secret: string }> {
    if (actor.via === 'cli') throw new ForbiddenError('API keys belong to a signed-in user; create them through the API', 'auth.forbidden');
    this.accounts.requireStepUp(actor);
    const name = input.name.trim();
    if (!name || name.length > 100) throw new ValidationError('name must be 1-100 characters', { field: 'name' });
    if (!Number.isInteger(input.expiresInDays) || input.expiresInDays < 1 || input.expiresInDays > MAX_KEY_LIFETIME_DAYS) {
      throw new ValidationError(`expiresInDays must be a whole number of days from 1 to ${MAX_KEY_LIFETIME_DAYS}`, {
        field: 'expiresInDays',
      });
    }
    const unknown = input.scopes.filter((s) => !isPermission(s));
    if (unknown.length > 0) throw new ValidationError(`Unknown scopes: ${unknown.join(', ')}`, { field: 'scopes', unknown });
    const scopes = [...new Set(input.scopes as Permission[])].sort();
    if (scopes.length === 0) throw new ValidationError('scopes must name at least one permission', { field: 'scopes' });
    const beyond = scopes.filter((s) => !actor.permissions.has(s));
    if (beyond.length > 0) {
      throw new ForbiddenError(`A key cannot have permissions your account does not have: ${beyond.join(', ')}`, 'auth.forbidden', {
        scopes: beyond,
      });
    }

    return this.store.db.transaction().execute(async (trx) => {
      const now = this.clock.now();
      if ((await this.store.countUsable(actor.userId, now, trx)) >= MAX_USABLE_KEYS_PER_USER) {
        throw new ConflictError(
          `You already have ${MAX_USABLE_KEYS_PER_USER} usable API keys: revoke one first`,
          { limit: MAX_USABLE_KEYS_PER_USER },
          'apikey.limit_reached',
        );
      }
      const id = newId();
      const secret = newSecret(`${API_KEY_PREFIX}_${id}`);
      const row: ApiKeyRow = {
        id,
        user_id: actor.userId,
        organization_id: actor.organizationId,
        name,
        secret_hash: sha256Hex(secret),
        scopes: JSON.stringify(scopes),
        created_at: now,
        expires_at: now + input.expiresInDays * DAY,
        last_used_at: null,
        revoked_at: null,
      };
      await this.store.insert(row, trx);
      await this.audit.recordBy(
        actor,
        'apikey.created',
        { type: 'api_key', id },
        { name, scopes, expiresAt: new Date(row.expires_at).toISOString(), userId: actor.userId },
        trx,
      );
      return { apiKey: toApiKeyView(row, now), secret };
    });
  }

  /** The actor's own keys, newest first, including revoked and expired ones. */
  async listMine(actor: Actor): Promise<ApiKeyView[]> {
    const now = this.clock.now();
    return (await this.store.ofUser(actor.userId)).map((r) => toApiKeyView(r, now));
  }

  /** Every key of the actor's organization (or of one of its users), newest first, cursor-paginated. */
  async listInOrganization(
    actor: Actor,
    filter: { userId?: string; before?: string; limit?: number },
  ): Promise<{ apiKeys: ApiKeyView[]; nextCursor: string | null }> {
    requirePermission(actor, 'users:manage');
    const limit = Math.min(Math.max(filter.limit ?? 50, 1), 200);
    const rows = await this.store.ofOrganization(actor.organizationId, {
      limit: limit + 1,
      ...(filter.userId ? { userId: filter.userId } : {}),
      ...(filter.before ? { before: parseCursor(filter.before) } : {}),
    });
    const { page, nextCursor } = pageOf(rows, limit, (last) => encodeCursor([Number(last.created_at), last.id]));
    const now = this.clock.now();
    return { apiKeys: page.map((r) => toApiKeyView(r, now)), nextCursor };
  }

  /** Revokes one of the actor's own keys (a key may revoke itself). */
  async revokeMine(actor: Actor, keyId: string): Promise<ApiKeyView> {
    const row = await this.store.inOrganization(actor.organizationId, keyId);
    if (!row || row.user_id !== actor.userId) throw new NotFoundError('API key', { apiKeyId: keyId });
    return this.revoke(actor, row);
  }

  /** Revokes any key of the actor's organization (an administrator ending someone's automation). */
  async revokeInOrganization(actor: Actor, keyId: string): Promise<ApiKeyView> {
    requirePermission(actor, 'users:manage');
    const row = await this.store.inOrganization(actor.organizationId, keyId);
    if (!row) throw new NotFoundError('API key', { apiKeyId: keyId });
    return this.revoke(actor, row);
  }

  /** Removes every key of a user whose account is being deleted (the caller audits the deletion). */
  async deleteOfUser(userId: string, db: Executor): Promise<void> {
    await this.store.deleteOfUser(userId, db);
  }

  /** Revoking twice is not an error; only the first revocation is audited. */
  private revoke(actor: Actor, row: ApiKeyRow): Promise<ApiKeyView> {
    return this.store.db.transaction().execute(async (trx) => {
      const now = this.clock.now();
      if (await this.store.revoke(row.id, now, trx)) {
        await this.audit.recordBy(actor, 'apikey.revoked', { type: 'api_key', id: row.id }, { name: row.name, userId: row.user_id }, trx);
      }
      const current = await this.store.inOrganization(actor.organizationId, row.id, trx);
      return toApiKeyView(current!, now);
    });
  }
}

/** Recognizes `bwk_` bearer tokens and turns a live key into its owner's actor, narrowed to the key's scopes. */
export class ApiKeyAuthenticator implements CredentialAuthenticator {
  readonly prefix = API_KEY_PREFIX;

  constructor(
    private readonly store: ApiKeyStore,
    private readonly accounts: AccountsStore,
    private readonly clock: Clock,
  ) {}

  /** A further condition on the key's user (single sign-on bounds its operators' keys, accounts/sso.ts). */
  private userGate: (user: UserRow) => Promise<boolean> = async () => true;

  useUserGate(gate: (user: UserRow) => Promise<boolean>): void {
    this.userGate = gate;
  }

  async authenticate(token: string, sourceIp: string): Promise<Authenticated | null> {
    const match = KEY_FORMAT.exec(token);
    if (!match) return null;
    const key = await this.store.bySecretHash(sha256Hex(token));
    const now = this.clock.now();
    if (!key || key.id !== match[1] || key.revoked_at !== null || now >= key.expires_at) return null;
    const user = await this.accounts.userById(key.user_id);
    if (!user || user.status !== 'active' || user.organization_id !== key.organization_id) return null;
    if (!(await this.userGate(user))) return null;
    const current = permissionsOf(user);
    const permissions = new Set(scopesOf(key).filter((s) => current.has(s)));
    if (key.last_used_at === null || now - key.last_used_at >= TOUCH_INTERVAL) await this.store.touch(key.id, now, TOUCH_INTERVAL);
    return { actor: actorFor(user, sourceIp, { apiKeyId: key.id, permissions }), session: null };
  }
}
