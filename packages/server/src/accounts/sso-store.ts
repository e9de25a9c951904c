/**
 * The single sign-on tables (021): each organization's provider configuration, the provider
 * identities operators signed in with, and the sign-ins in flight. Every method takes an optional
 * executor so the service can run several of them, and its audit entry, in one transaction.
 */
import type { Kysely, Selectable } from 'kysely';
import type { Database, SsoConfigsTable, SsoIdentitiesTable, SsoLoginsTable } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export type SsoConfigRow = Selectable<SsoConfigsTable>;
export type SsoIdentityRow = Selectable<SsoIdentitiesTable>;
export type SsoLoginRow = Selectable<SsoLoginsTable>;

/** What the security report needs of one operator beside their user row. */
export interface OperatorSignInFacts {
  userId: string;
  lastSignInAt: number | null;
  ssoLastSignInAt: number | null;
  ssoMfaAsserted: boolean;
  sso: boolean;
}

export class SsoStore {
  constructor(readonly db: Kysely<Database>) {}

  configOf(organizationId: string, db: Executor = this.db): Promise<SsoConfigRow | undefined> {
    return db.selectFrom('sso_configs').selectAll().where('organization_id', '=', organizationId).executeTakeFirst();
  }

  async upsertConfig(row: SsoConfigRow, db: Executor = this.db): Promise<void> {
    const { id: _id, organization_id: _org, created_at: _created, ...changes } = row;
    const updated = await db.updateTable('sso_configs').set(changes).where('organization_id', '=', row.organization_id).executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0) await db.insertInto('sso_configs').values(row).execute();
  }

  async deleteConfig(organizationId: string, db: Executor = this.db): Promise<boolean> {
    const result = await db.deleteFrom('sso_configs').where('organization_id', '=', organizationId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  identity(organizationId: string, issuer: string, subject: string, db: Executor = this.db): Promise<SsoIdentityRow | undefined> {
    return db
      .selectFrom('sso_identities')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('issuer', '=', issuer)
      .where('subject', '=', subject)
      .executeTakeFirst();
  }

  async insertIdentity(row: SsoIdentityRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('sso_identities').values(row).execute();
  }

  async recordIdentitySignIn(id: string, at: number, mfaAsserted: boolean, email: string | null, db: Executor = this.db): Promise<void> {
    await db
      .updateTable('sso_identities')
      .set({ last_sign_in_at: at, last_mfa_asserted: mfaAsserted ? 1 : 0, email })
      .where('id', '=', id)
      .execute();
  }

  /** A user's provider identities (an account made by single sign-on has one). */
  identitiesOf(userId: string, db: Executor = this.db): Promise<SsoIdentityRow[]> {
    return db.selectFrom('sso_identities').selectAll().where('user_id', '=', userId).execute();
  }

  async deleteIdentity(id: string, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('sso_identities').where('id', '=', id).execute();
  }

  async insertLogin(row: SsoLoginRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('sso_logins').values(row).execute();
  }

  /**
   * Marks a sign-in in flight used and returns it, once: a second callback with the same state
   * (a replay, or two racing) finds it used and gets nothing.
   */
  async consumeLogin(stateHash: string, now: number, db: Executor = this.db): Promise<SsoLoginRow | undefined> {
    const row = await db.selectFrom('sso_logins').selectAll().where('state_hash', '=', stateHash).executeTakeFirst();
    if (!row || row.used_at !== null) return undefined;
    const taken = await db
      .updateTable('sso_logins')
      .set({ used_at: now })
      .where('state_hash', '=', stateHash)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(taken.numUpdatedRows) === 1 ? row : undefined;
  }

  /** Forgets sign-ins in flight that ended long enough ago; a used state is kept until then so a replay is recognised. */
  async pruneLogins(before: number, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('sso_logins').where('expires_at', '<', before).execute();
  }

  /** Per operator of the organization: latest full sign-in (any factor) and their SSO identity's standing. */
  async signInFacts(organizationId: string, db: Executor = this.db): Promise<OperatorSignInFacts[]> {
    const sessions = await db
      .selectFrom('sessions')
      .select(['user_id', (eb) => eb.fn.max('created_at').as('last')])
      .where('organization_id', '=', organizationId)
      .where('scope', '=', 'full')
      .groupBy('user_id')
      .execute();
    const identities = await db
      .selectFrom('sso_identities')
      .select(['user_id', 'last_sign_in_at', 'last_mfa_asserted'])
      .where('organization_id', '=', organizationId)
      .execute();
    const facts = new Map<string, OperatorSignInFacts>();
    const of = (userId: string) => {
      let f = facts.get(userId);
      if (!f) facts.set(userId, (f = { userId, lastSignInAt: null, ssoLastSignInAt: null, ssoMfaAsserted: false, sso: false }));
      return f;
    };
    for (const s of sessions) of(s.user_id).lastSignInAt = s.last === null ? null : Number(s.last);
    for (const i of identities) {
      const f = of(i.user_id);
      f.sso = true;
      if (i.last_sign_in_at !== null && (f.ssoLastSignInAt === null || Number(i.last_sign_in_at) > f.ssoLastSignInAt)) {
        f.ssoLastSignInAt = Number(i.last_sign_in_at);
        f.ssoMfaAsserted = i.last_mfa_asserted === 1;
      }
    }
    return [...facts.values()];
  }
}
