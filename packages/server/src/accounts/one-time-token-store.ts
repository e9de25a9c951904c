/**
 * The `one_time_tokens` table: single-use tokens stored as SHA-256 digests. The rules (the secret,
 * its digest, the TTL, which error a spent token raises) live in accounts/one-time-tokens.ts; each
 * method takes the caller's transaction when it runs inside one.
 */
import type { Kysely, Selectable } from 'kysely';
import type { Database, OneTimeTokensTable } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export type OneTimeTokenRow = Selectable<OneTimeTokensTable>;
type Purpose = OneTimeTokensTable['purpose'];

export class OneTimeTokenStore {
  constructor(readonly db: Kysely<Database>) {}

  /** Voids every unused token of the purpose for the user (or, without a user, the email) in the organization. */
  async revokeEarlier(
    purpose: Purpose,
    organizationId: string,
    who: { userId: string | null; email: string },
    at: number,
    db: Executor = this.db,
  ): Promise<void> {
    let earlier = db
      .updateTable('one_time_tokens')
      .set({ revoked_at: at })
      .where('purpose', '=', purpose)
      .where('organization_id', '=', organizationId)
      .where('used_at', 'is', null)
      .where('revoked_at', 'is', null);
    earlier = who.userId ? earlier.where('user_id', '=', who.userId) : earlier.where('email', '=', who.email);
    await earlier.execute();
  }

  async insert(row: OneTimeTokenRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('one_time_tokens').values(row).execute();
  }

  /** Marks the token with this digest used in one atomic UPDATE if it is unused, not voided and unexpired at `at`; its row, or undefined. */
  markUsed(purpose: Purpose, tokenHash: string, at: number, db: Executor = this.db): Promise<OneTimeTokenRow | undefined> {
    return db
      .updateTable('one_time_tokens')
      .set({ used_at: at })
      .where('token_hash', '=', tokenHash)
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', at)
      .returningAll()
      .executeTakeFirst();
  }

  /** The token with this digest, whatever its state (it must exist). */
  byHash(tokenHash: string, db: Executor = this.db): Promise<OneTimeTokenRow> {
    return db.selectFrom('one_time_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirstOrThrow();
  }

  /** The organization's tokens of one purpose still usable at `now` (unused, not voided, unexpired), newest first; only `id` when given. */
  usable(organizationId: string, purpose: Purpose, now: number, id?: string): Promise<OneTimeTokenRow[]> {
    let query = this.db
      .selectFrom('one_time_tokens')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now);
    if (id !== undefined) query = query.where('id', '=', id);
    return query.orderBy('created_at', 'desc').execute();
  }

  /** Voids one unused token; false when it was used or voided already. */
  async revokeUnused(id: string, at: number, db: Executor = this.db): Promise<boolean> {
    const revoked = await db
      .updateTable('one_time_tokens')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('used_at', 'is', null)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(revoked.numUpdatedRows) !== 0;
  }

  /** When the user's tokens of one purpose created after `since` were created, newest first. */
  async createdSince(userId: string, purpose: Purpose, since: number, db: Executor = this.db): Promise<number[]> {
    const rows = await db
      .selectFrom('one_time_tokens')
      .select('created_at')
      .where('user_id', '=', userId)
      .where('purpose', '=', purpose)
      .where('created_at', '>', since)
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map((r) => Number(r.created_at));
  }

  /** Deletes every token of the user (the account is deleted). */
  async deleteOfUser(userId: string, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('one_time_tokens').where('user_id', '=', userId).execute();
  }

  /** Voids a user's unused tokens of one purpose. */
  async revokeAllOfUser(userId: string, purpose: Purpose, at: number, db: Executor = this.db): Promise<void> {
    await db
      .updateTable('one_time_tokens')
      .set({ revoked_at: at })
      .where('user_id', '=', userId)
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .where('revoked_at', 'is', null)
      .execute();
  }
}
