/**
 * The passkey tables (030) through Kysely: users' WebAuthn credentials and the ceremonies'
 * single-use challenges. A challenge is taken by deleting it (one statement), so two answers
 * to one challenge can never both pass.
 */
import type { Kysely, Selectable } from 'kysely';
import type { Database, PasskeyChallengesTable, PasskeyCredentialsTable } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export type PasskeyRow = Selectable<PasskeyCredentialsTable>;
export type PasskeyChallengeRow = Selectable<PasskeyChallengesTable>;

export class PasskeyStore {
  constructor(readonly db: Kysely<Database>) {}

  async insertCredential(row: PasskeyRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('passkey_credentials').values(row).execute();
  }

  ofUser(userId: string, db: Executor = this.db): Promise<PasskeyRow[]> {
    return db.selectFrom('passkey_credentials').selectAll().where('user_id', '=', userId).orderBy('created_at').execute();
  }

  async countOfUser(userId: string, db: Executor = this.db): Promise<number> {
    const row = await db
      .selectFrom('passkey_credentials')
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** The users of an organization who hold at least one passkey. */
  async holders(organizationId: string, db: Executor = this.db): Promise<Set<string>> {
    const rows = await db
      .selectFrom('passkey_credentials')
      .select('user_id')
      .distinct()
      .where('organization_id', '=', organizationId)
      .execute();
    return new Set(rows.map((r) => r.user_id));
  }

  byCredentialId(credentialId: string, db: Executor = this.db): Promise<PasskeyRow | undefined> {
    return db.selectFrom('passkey_credentials').selectAll().where('credential_id', '=', credentialId).executeTakeFirst();
  }

  /** A passkey of the given user; another user's is simply not found. */
  ofUserById(userId: string, id: string, db: Executor = this.db): Promise<PasskeyRow | undefined> {
    return db.selectFrom('passkey_credentials').selectAll().where('user_id', '=', userId).where('id', '=', id).executeTakeFirst();
  }

  async rename(id: string, name: string, db: Executor = this.db): Promise<void> {
    await db.updateTable('passkey_credentials').set({ name }).where('id', '=', id).execute();
  }

  async delete(id: string, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('passkey_credentials').where('id', '=', id).execute();
  }

  async deleteOfUser(userId: string, db: Executor = this.db): Promise<number> {
    const result = await db.deleteFrom('passkey_credentials').where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /**
   * Moves the counter forward from the value the verification read (compare and set): false when
   * another sign-in moved it first, which the caller treats as a replay.
   */
  async advanceCounter(id: string, from: number, to: number, now: number, db: Executor = this.db): Promise<boolean> {
    const result = await db
      .updateTable('passkey_credentials')
      .set({ counter: to, last_used_at: now })
      .where('id', '=', id)
      .where('counter', '=', from)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async insertChallenge(row: PasskeyChallengeRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('passkey_challenges').values(row).execute();
  }

  /** Removes and returns the challenge with this digest: whoever takes it first holds it alone. */
  async takeChallenge(challengeHash: string, db: Executor = this.db): Promise<PasskeyChallengeRow | undefined> {
    return db.deleteFrom('passkey_challenges').where('challenge_hash', '=', challengeHash).returningAll().executeTakeFirst();
  }

  /** Deletes challenges past their expiry; returns how many. */
  async deleteExpiredChallenges(now: number, db: Executor = this.db): Promise<number> {
    const result = await db.deleteFrom('passkey_challenges').where('expires_at', '<', now).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
