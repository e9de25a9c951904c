/**
 * The app-authorization tables through Kysely: clients, consents, authorization codes, token
 * families with their refresh tokens, and signing keys. Single use is a conditional update
 * (`used_at IS NULL`): of two concurrent redemptions of one code or refresh token, one wins.
 */
import type { Selectable } from 'kysely';
import type {
  AppAuthorizationCodesTable,
  AppClientsTable,
  AppConsentsTable,
  AppRefreshTokensTable,
  AppSigningKeysTable,
  AppTokenFamiliesTable,
} from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export type AppClientRow = Selectable<AppClientsTable>;
export type AppConsentRow = Selectable<AppConsentsTable>;
export type AuthorizationCodeRow = Selectable<AppAuthorizationCodesTable>;
export type TokenFamilyRow = Selectable<AppTokenFamiliesTable>;
export type RefreshTokenRow = Selectable<AppRefreshTokensTable>;
export type SigningKeyRow = Selectable<AppSigningKeysTable>;

const changed = (result: { numUpdatedRows: bigint }): number => Number(result.numUpdatedRows);

export class AppStore {
  constructor(readonly db: Executor) {}

  // clients

  async insertClient(row: AppClientRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('app_clients').values(row).execute();
  }

  client(clientId: string, db: Executor = this.db): Promise<AppClientRow | undefined> {
    return db.selectFrom('app_clients').selectAll().where('id', '=', clientId).executeTakeFirst();
  }

  clientsOf(organizationId: string, db: Executor = this.db): Promise<AppClientRow[]> {
    return db
      .selectFrom('app_clients')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .orderBy('created_at', 'asc')
      .orderBy('id', 'asc')
      .limit(1000)
      .execute();
  }

  async setClientStatus(clientId: string, status: AppClientRow['status'], now: number, db: Executor = this.db): Promise<void> {
    await db.updateTable('app_clients').set({ status, updated_at: now }).where('id', '=', clientId).execute();
  }

  // consents

  consent(userId: string, clientId: string, db: Executor = this.db): Promise<AppConsentRow | undefined> {
    return db.selectFrom('app_consents').selectAll().where('user_id', '=', userId).where('client_id', '=', clientId).executeTakeFirst();
  }

  consentsOf(userId: string, db: Executor = this.db): Promise<AppConsentRow[]> {
    return db.selectFrom('app_consents').selectAll().where('user_id', '=', userId).orderBy('created_at').execute();
  }

  async saveConsent(row: AppConsentRow, db: Executor = this.db): Promise<void> {
    const updated = await db
      .updateTable('app_consents')
      .set({ scopes: row.scopes, updated_at: row.updated_at })
      .where('user_id', '=', row.user_id)
      .where('client_id', '=', row.client_id)
      .executeTakeFirst();
    if (changed(updated) === 0) await db.insertInto('app_consents').values(row).execute();
  }

  async deleteConsent(userId: string, clientId: string, db: Executor = this.db): Promise<number> {
    const result = await db.deleteFrom('app_consents').where('user_id', '=', userId).where('client_id', '=', clientId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  // authorization codes

  async insertCode(row: AuthorizationCodeRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('app_authorization_codes').values(row).execute();
  }

  codeByHash(codeHash: string, db: Executor = this.db): Promise<AuthorizationCodeRow | undefined> {
    return db.selectFrom('app_authorization_codes').selectAll().where('code_hash', '=', codeHash).executeTakeFirst();
  }

  /** Marks a code spent; false when it already was (a second redemption). */
  async spendCode(codeId: string, now: number, db: Executor = this.db): Promise<boolean> {
    return (
      changed(
        await db
          .updateTable('app_authorization_codes')
          .set({ used_at: now })
          .where('id', '=', codeId)
          .where('used_at', 'is', null)
          .executeTakeFirst(),
      ) === 1
    );
  }

  async setCodeFamily(codeId: string, familyId: string, db: Executor = this.db): Promise<void> {
    await db.updateTable('app_authorization_codes').set({ family_id: familyId }).where('id', '=', codeId).execute();
  }

  /** Deletes codes expired before `before` (kept a while so a late second use is still recognized as reuse). */
  async pruneCodes(before: number, db: Executor = this.db): Promise<number> {
    const result = await db.deleteFrom('app_authorization_codes').where('expires_at', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  // token families and refresh tokens

  async insertFamily(row: TokenFamilyRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('app_token_families').values(row).execute();
  }

  family(familyId: string, db: Executor = this.db): Promise<TokenFamilyRow | undefined> {
    return db.selectFrom('app_token_families').selectAll().where('id', '=', familyId).executeTakeFirst();
  }

  liveFamiliesOf(userId: string, now: number, db: Executor = this.db): Promise<TokenFamilyRow[]> {
    return db
      .selectFrom('app_token_families')
      .selectAll()
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .execute();
  }

  /** Revokes one family; false when it already was. */
  async revokeFamily(familyId: string, now: number, reason: string, db: Executor = this.db): Promise<boolean> {
    return (
      changed(
        await db
          .updateTable('app_token_families')
          .set({ revoked_at: now, revoked_reason: reason })
          .where('id', '=', familyId)
          .where('revoked_at', 'is', null)
          .executeTakeFirst(),
      ) === 1
    );
  }

  /** Revokes the family a code was exchanged for, if any; false when there is none live. */
  async revokeFamilyOfCode(codeId: string, now: number, reason: string, db: Executor = this.db): Promise<boolean> {
    return (
      changed(
        await db
          .updateTable('app_token_families')
          .set({ revoked_at: now, revoked_reason: reason })
          .where('code_id', '=', codeId)
          .where('revoked_at', 'is', null)
          .executeTakeFirst(),
      ) > 0
    );
  }

  /** Revokes every live family of a user (of one client, when given); returns how many. */
  async revokeFamiliesOfUser(userId: string, now: number, reason: string, clientId?: string, db: Executor = this.db): Promise<number> {
    let query = db
      .updateTable('app_token_families')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null);
    if (clientId) query = query.where('client_id', '=', clientId);
    return changed(await query.executeTakeFirst());
  }

  async revokeFamiliesOfClient(clientId: string, now: number, reason: string, db: Executor = this.db): Promise<number> {
    return changed(
      await db
        .updateTable('app_token_families')
        .set({ revoked_at: now, revoked_reason: reason })
        .where('client_id', '=', clientId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst(),
    );
  }

  /**
   * Deletes refresh tokens past their expiry by `graceMs`, and grants (with their tokens) that
   * expired or were revoked before `before`; returns how many grants went.
   */
  async prune(now: number, graceMs: number, before: number, db: Executor = this.db): Promise<number> {
    await db
      .deleteFrom('app_refresh_tokens')
      .where('expires_at', '<', now - graceMs)
      .execute();
    const ended = db
      .selectFrom('app_token_families')
      .select('id')
      .where((eb) => eb.or([eb('expires_at', '<', before), eb('revoked_at', '<', before)]));
    await db.deleteFrom('app_refresh_tokens').where('family_id', 'in', ended).execute();
    const families = await db
      .deleteFrom('app_token_families')
      .where((eb) => eb.or([eb('expires_at', '<', before), eb('revoked_at', '<', before)]))
      .executeTakeFirst();
    return Number(families.numDeletedRows);
  }

  /** Deletes everything of a user's (an account being deleted): consents, codes, grants and their refresh tokens. */
  async forgetUser(userId: string, db: Executor = this.db): Promise<number> {
    await db
      .deleteFrom('app_refresh_tokens')
      .where('family_id', 'in', (eb) => eb.selectFrom('app_token_families').select('id').where('user_id', '=', userId))
      .execute();
    const families = await db.deleteFrom('app_token_families').where('user_id', '=', userId).executeTakeFirst();
    await db.deleteFrom('app_authorization_codes').where('user_id', '=', userId).execute();
    await db.deleteFrom('app_consents').where('user_id', '=', userId).execute();
    return Number(families.numDeletedRows);
  }

  async insertRefreshToken(row: RefreshTokenRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('app_refresh_tokens').values(row).execute();
  }

  refreshTokenByHash(tokenHash: string, db: Executor = this.db): Promise<RefreshTokenRow | undefined> {
    return db.selectFrom('app_refresh_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
  }

  /** Marks a refresh token rotated; false when it already was (reuse). */
  async spendRefreshToken(tokenId: string, now: number, db: Executor = this.db): Promise<boolean> {
    return (
      changed(
        await db
          .updateTable('app_refresh_tokens')
          .set({ used_at: now })
          .where('id', '=', tokenId)
          .where('used_at', 'is', null)
          .executeTakeFirst(),
      ) === 1
    );
  }

  // signing keys

  async insertKey(row: SigningKeyRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('app_signing_keys').values(row).execute();
  }

  key(kid: string, db: Executor = this.db): Promise<SigningKeyRow | undefined> {
    return db.selectFrom('app_signing_keys').selectAll().where('id', '=', kid).executeTakeFirst();
  }

  keysOf(organizationId: string, db: Executor = this.db): Promise<SigningKeyRow[]> {
    return db
      .selectFrom('app_signing_keys')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
  }

  /** Every key that still verifies (active or in its overlap), of every organization. */
  unretiredKeys(db: Executor = this.db): Promise<SigningKeyRow[]> {
    return db.selectFrom('app_signing_keys').selectAll().where('retired_at', 'is', null).orderBy('created_at', 'desc').execute();
  }

  /** Ends signing by the organization's active key(s); they keep verifying until retired. */
  async markRotated(organizationId: string, now: number, db: Executor = this.db): Promise<string[]> {
    const active = await db
      .selectFrom('app_signing_keys')
      .select('id')
      .where('organization_id', '=', organizationId)
      .where('rotated_at', 'is', null)
      .where('retired_at', 'is', null)
      .execute();
    if (active.length === 0) return [];
    await db
      .updateTable('app_signing_keys')
      .set({ rotated_at: now })
      .where(
        'id',
        'in',
        active.map((r) => r.id),
      )
      .execute();
    return active.map((r) => r.id);
  }

  async retireKey(kid: string, now: number, db: Executor = this.db): Promise<boolean> {
    return (
      changed(
        await db
          .updateTable('app_signing_keys')
          .set({ retired_at: now })
          .where('id', '=', kid)
          .where('retired_at', 'is', null)
          .executeTakeFirst(),
      ) === 1
    );
  }
}
