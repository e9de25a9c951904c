/**
 * The api_keys table through Kysely: keys are found by the SHA-256 digest of their secret (the
 * only form stored), listed per user or per organization, revoked once, and marked as used.
 */
import type { Selectable } from 'kysely';
import type { ApiKeysTable } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export type ApiKeyRow = Selectable<ApiKeysTable>;

/** Position in a newest-first listing: the last row of the previous page. */
export interface ApiKeyCursor {
  createdAt: number;
  id: string;
}

export class ApiKeyStore {
  constructor(readonly db: Executor) {}

  async insert(row: ApiKeyRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('api_keys').values(row).execute();
  }

  bySecretHash(secretHash: string, db: Executor = this.db): Promise<ApiKeyRow | undefined> {
    return db.selectFrom('api_keys').selectAll().where('secret_hash', '=', secretHash).executeTakeFirst();
  }

  /** A key of the given organization; another organization's key is simply not found. */
  inOrganization(organizationId: string, keyId: string, db: Executor = this.db): Promise<ApiKeyRow | undefined> {
    return db.selectFrom('api_keys').selectAll().where('organization_id', '=', organizationId).where('id', '=', keyId).executeTakeFirst();
  }

  ofUser(userId: string, db: Executor = this.db): Promise<ApiKeyRow[]> {
    return db
      .selectFrom('api_keys')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
  }

  ofOrganization(
    organizationId: string,
    filter: { userId?: string; before?: ApiKeyCursor; limit: number },
    db: Executor = this.db,
  ): Promise<ApiKeyRow[]> {
    let q = db
      .selectFrom('api_keys')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(filter.limit);
    if (filter.userId) q = q.where('user_id', '=', filter.userId);
    const before = filter.before;
    if (before)
      q = q.where((eb) =>
        eb.or([eb('created_at', '<', before.createdAt), eb.and([eb('created_at', '=', before.createdAt), eb('id', '<', before.id)])]),
      );
    return q.execute();
  }

  async countUsable(userId: string, now: number, db: Executor = this.db): Promise<number> {
    const rows = await db
      .selectFrom('api_keys')
      .select('id')
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .execute();
    return rows.length;
  }

  /** Revokes a key unless it already is; returns whether this call revoked it. */
  async revoke(keyId: string, now: number, db: Executor = this.db): Promise<boolean> {
    const result = await db
      .updateTable('api_keys')
      .set({ revoked_at: now })
      .where('id', '=', keyId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Revokes every unrevoked key of a user (account recovery, disabling the account); returns how many. */
  async revokeAllOfUser(userId: string, now: number, db: Executor = this.db): Promise<number> {
    const result = await db
      .updateTable('api_keys')
      .set({ revoked_at: now })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Records a use, unless one was recorded within `interval` ms (so reads stay mostly reads). */
  async touch(keyId: string, now: number, interval: number, db: Executor = this.db): Promise<void> {
    await db
      .updateTable('api_keys')
      .set({ last_used_at: now })
      .where('id', '=', keyId)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', now - interval)]))
      .execute();
  }

  async deleteOfUser(userId: string, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('api_keys').where('user_id', '=', userId).execute();
  }
}
