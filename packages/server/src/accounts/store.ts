/**
 * The accounts domain's tables (organizations, users, sessions, recovery codes, one-time tokens,
 * API keys) through Kysely. Every method takes an optional executor so a service can run several
 * of them, and its audit entry, in one transaction.
 */
import { sql, type Kysely, type Selectable, type Updateable } from 'kysely';
import type { Database, OrganizationsTable, RecoveryCodesTable, SessionsTable, UsersTable } from '../storage/schema.js';
import { newId } from '../tokens.js';
import type { Executor } from '../storage/executor.js';

export type UserRow = Selectable<UsersTable>;
export type OrganizationRow = Selectable<OrganizationsTable>;
export type SessionRow = Selectable<SessionsTable>;

export interface NewUser {
  organizationId: string;
  kind: 'operator' | 'consumer';
  email: string;
  name: string;
  role: string | null;
  passwordHash: string | null;
  emailVerifiedAt: number | null;
  mustChangePassword: boolean;
  now: number;
}

/** A new account's row: active, no failures, no second factor yet. The one place these defaults live. */
export function newUserRow(user: NewUser): UserRow {
  return {
    id: newId(),
    organization_id: user.organizationId,
    kind: user.kind,
    email: normalizeEmail(user.email),
    email_verified_at: user.emailVerifiedAt,
    name: user.name,
    role: user.role,
    status: 'active',
    password_hash: user.passwordHash,
    password_changed_at: user.passwordHash ? user.now : null,
    must_change_password: user.mustChangePassword ? 1 : 0,
    failed_logins: 0,
    locked_until: null,
    mfa_secret: null,
    mfa_enabled_at: null,
    mfa_last_step: null,
    created_at: user.now,
    updated_at: user.now,
  };
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export class AccountsStore {
  constructor(readonly db: Kysely<Database>) {}

  organizationBySlug(slug: string, db: Executor = this.db): Promise<OrganizationRow | undefined> {
    return db.selectFrom('organizations').selectAll().where('slug', '=', slug.trim().toLowerCase()).executeTakeFirst();
  }

  organizationById(id: string, db: Executor = this.db): Promise<OrganizationRow | undefined> {
    return db.selectFrom('organizations').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async insertOrganization(row: OrganizationRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('organizations').values(row).execute();
  }

  async updateOrganization(id: string, changes: Updateable<OrganizationsTable>, db: Executor = this.db): Promise<void> {
    await db.updateTable('organizations').set(changes).where('id', '=', id).execute();
  }

  /**
   * Holds the organization's row until the transaction ends, so that checks on its members and
   * the changes that follow do not interleave with another transaction's. A no-op write: it takes
   * the row lock on PostgreSQL, and SQLite runs one write transaction at a time anyway.
   */
  async lockOrganization(organizationId: string, db: Executor): Promise<void> {
    await db
      .updateTable('organizations')
      .set((eb) => ({ slug: eb.ref('slug') }))
      .where('id', '=', organizationId)
      .execute();
  }

  /** Holds a user's row until the transaction ends (as lockOrganization does for an organization). */
  async lockUser(userId: string, db: Executor): Promise<void> {
    await db
      .updateTable('users')
      .set((eb) => ({ id: eb.ref('id') }))
      .where('id', '=', userId)
      .execute();
  }

  listOrganizations(db: Executor = this.db): Promise<OrganizationRow[]> {
    return db.selectFrom('organizations').selectAll().orderBy('created_at').execute();
  }

  userByEmail(organizationId: string, email: string, db: Executor = this.db): Promise<UserRow | undefined> {
    return db
      .selectFrom('users')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('email', '=', normalizeEmail(email))
      .executeTakeFirst();
  }

  /** A user of the given organization; another organization's user is simply not found. */
  userInOrganization(organizationId: string, userId: string, db: Executor = this.db): Promise<UserRow | undefined> {
    return db.selectFrom('users').selectAll().where('organization_id', '=', organizationId).where('id', '=', userId).executeTakeFirst();
  }

  userById(userId: string, db: Executor = this.db): Promise<UserRow | undefined> {
    return db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirst();
  }

  async insertUser(row: UserRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('users').values(row).execute();
  }

  async updateUser(userId: string, changes: Updateable<UsersTable>, db: Executor = this.db): Promise<void> {
    await db.updateTable('users').set(changes).where('id', '=', userId).execute();
  }

  listUsers(
    organizationId: string,
    filter: { kind?: 'operator' | 'consumer'; role?: string; email?: string; after?: string; limit: number },
    db: Executor = this.db,
  ): Promise<UserRow[]> {
    let q = db.selectFrom('users').selectAll().where('organization_id', '=', organizationId).orderBy('email').limit(filter.limit);
    if (filter.kind) q = q.where('kind', '=', filter.kind);
    if (filter.role) q = q.where('role', '=', filter.role);
    if (filter.email) {
      const pattern = `%${filter.email.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      q = q.where(sql<boolean>`email like ${pattern} escape '\\'`);
    }
    if (filter.after) q = q.where('email', '>', filter.after);
    return q.execute();
  }

  async insertSession(row: SessionRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('sessions').values(row).execute();
  }

  sessionByTokenHash(tokenHash: string, db: Executor = this.db): Promise<SessionRow | undefined> {
    return db.selectFrom('sessions').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
  }

  async touchSession(sessionId: string, now: number, db: Executor = this.db): Promise<void> {
    await db.updateTable('sessions').set({ last_seen_at: now }).where('id', '=', sessionId).execute();
  }

  async updateSession(sessionId: string, changes: Updateable<SessionsTable>, db: Executor = this.db): Promise<void> {
    await db.updateTable('sessions').set(changes).where('id', '=', sessionId).execute();
  }

  activeSessions(userId: string, now: number, db: Executor = this.db): Promise<SessionRow[]> {
    return db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .execute();
  }

  /**
   * Deletes sessions that ended before `cutoff`: revoked, past their absolute limit, or idle
   * (last seen `idleMs` before it); returns how many.
   */
  async deleteEndedSessions(cutoff: number, idleMs: number): Promise<number> {
    const result = await this.db
      .deleteFrom('sessions')
      .where((eb) => eb.or([eb('revoked_at', '<', cutoff), eb('expires_at', '<', cutoff), eb('last_seen_at', '<', cutoff - idleMs)]))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Revokes the user's sessions, optionally keeping one; returns how many were revoked. */
  async revokeSessions(userId: string, now: number, db: Executor = this.db, exceptSessionId?: string): Promise<number> {
    let q = db.updateTable('sessions').set({ revoked_at: now }).where('user_id', '=', userId).where('revoked_at', 'is', null);
    if (exceptSessionId) q = q.where('id', '!=', exceptSessionId);
    const result = await q.executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** The user's sessions, newest first, as the data export shows them. */
  sessionsOfUser(userId: string, db: Executor = this.db) {
    return db
      .selectFrom('sessions')
      .select(['id', 'transport', 'scope', 'created_at', 'last_seen_at', 'expires_at', 'revoked_at', 'source_ip', 'user_agent'])
      .where('user_id', '=', userId)
      .orderBy('created_at', 'desc')
      .execute();
  }

  async deleteSessionsOfUser(userId: string, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('sessions').where('user_id', '=', userId).execute();
  }

  async deleteUser(userId: string, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('users').where('id', '=', userId).execute();
  }

  /** Counts one more failed sign-in of the user (atomically); the new count. */
  async countFailedLogin(userId: string, db: Executor = this.db): Promise<number> {
    const { failed_logins: failures } = await db
      .updateTable('users')
      .set((eb) => ({ failed_logins: eb('failed_logins', '+', 1) }))
      .where('id', '=', userId)
      .returning('failed_logins')
      .executeTakeFirstOrThrow();
    return failures;
  }

  /** The organization's active owners other than `userId`. */
  otherActiveOwners(organizationId: string, userId: string, db: Executor = this.db): Promise<{ id: string }[]> {
    return db
      .selectFrom('users')
      .select('id')
      .where('organization_id', '=', organizationId)
      .where('role', '=', 'owner')
      .where('status', '=', 'active')
      .where('id', '!=', userId)
      .execute();
  }

  /** Records a TOTP time step as used if it is later than the last one used; false when it is not (a replay). */
  async advanceMfaStep(userId: string, step: number, db: Executor = this.db): Promise<boolean> {
    const updated = await db
      .updateTable('users')
      .set({ mfa_last_step: step })
      .where('id', '=', userId)
      .where((eb) => eb.or([eb('mfa_last_step', 'is', null), eb('mfa_last_step', '<', step)]))
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) === 1;
  }

  async deleteRecoveryCodes(userId: string, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
  }

  async insertRecoveryCodes(rows: RecoveryCodesTable[], db: Executor = this.db): Promise<void> {
    await db.insertInto('recovery_codes').values(rows).execute();
  }

  /** Spends the user's unused recovery code with this digest; false when there is none. */
  async spendRecoveryCode(userId: string, codeHash: string, at: number, db: Executor = this.db): Promise<boolean> {
    const spent = await db
      .updateTable('recovery_codes')
      .set({ used_at: at })
      .where('user_id', '=', userId)
      .where('code_hash', '=', codeHash)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(spent.numUpdatedRows) === 1;
  }

  async unusedRecoveryCodes(userId: string): Promise<number> {
    const rows = await this.db
      .selectFrom('recovery_codes')
      .select('id')
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .execute();
    return rows.length;
  }
}
