/**
 * The binding domain's tables through Kysely: device members (the owner row is the binding),
 * invitations, each device's claim code, presence window and reset, and failed-claim counters.
 */
import type { Kysely, Selectable } from 'kysely';
import type { BindingInvitationsTable, ClaimFailuresTable, Database, DeviceClaimsTable, DeviceMembersTable } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export type MemberRow = Selectable<DeviceMembersTable>;
export type InvitationRow = Selectable<BindingInvitationsTable>;
export type ClaimRow = Selectable<DeviceClaimsTable>;
export type FailureRow = Selectable<ClaimFailuresTable>;

export class BindingStore {
  constructor(readonly db: Kysely<Database>) {}

  // --- members ---------------------------------------------------------------------------

  member(deviceId: string, userId: string, db: Executor = this.db): Promise<MemberRow | undefined> {
    return db.selectFrom('device_members').selectAll().where('device_id', '=', deviceId).where('user_id', '=', userId).executeTakeFirst();
  }

  owner(deviceId: string, db: Executor = this.db): Promise<MemberRow | undefined> {
    return db.selectFrom('device_members').selectAll().where('device_id', '=', deviceId).where('role', '=', 'owner').executeTakeFirst();
  }

  membersOf(deviceId: string, db: Executor = this.db): Promise<MemberRow[]> {
    return db.selectFrom('device_members').selectAll().where('device_id', '=', deviceId).orderBy('since').execute();
  }

  membershipsOf(organizationId: string, userId: string, limit: number, db: Executor = this.db): Promise<MemberRow[]> {
    return db
      .selectFrom('device_members')
      .selectAll()
      .where('user_id', '=', userId)
      .where('organization_id', '=', organizationId)
      .orderBy('since')
      .orderBy('device_id')
      .limit(limit)
      .execute();
  }

  async insertMember(row: MemberRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('device_members').values(row).execute();
  }

  async setLabel(deviceId: string, userId: string, label: string | null, db: Executor = this.db): Promise<void> {
    await db.updateTable('device_members').set({ label }).where('device_id', '=', deviceId).where('user_id', '=', userId).execute();
  }

  async deleteMember(deviceId: string, userId: string, db: Executor = this.db): Promise<number> {
    const result = await db.deleteFrom('device_members').where('device_id', '=', deviceId).where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteMembersOf(deviceId: string, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('device_members').where('device_id', '=', deviceId).execute();
  }

  // --- invitations -----------------------------------------------------------------------

  async insertInvitation(row: InvitationRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('binding_invitations').values(row).execute();
  }

  invitation(id: string, db: Executor = this.db): Promise<InvitationRow | undefined> {
    return db.selectFrom('binding_invitations').selectAll().where('id', '=', id).executeTakeFirst();
  }

  invitationsOf(deviceId: string, now: number, db: Executor = this.db): Promise<InvitationRow[]> {
    return db
      .selectFrom('binding_invitations')
      .selectAll()
      .where('device_id', '=', deviceId)
      .where('expires_at', '>', now)
      .orderBy('created_at')
      .execute();
  }

  invitationsFor(organizationId: string, email: string, now: number, db: Executor = this.db): Promise<InvitationRow[]> {
    return db
      .selectFrom('binding_invitations')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('invitee_email', '=', email)
      .where('expires_at', '>', now)
      .orderBy('created_at')
      .limit(500)
      .execute();
  }

  async deleteInvitation(id: string, db: Executor = this.db): Promise<number> {
    const result = await db.deleteFrom('binding_invitations').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteInvitationsOf(deviceId: string, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('binding_invitations').where('device_id', '=', deviceId).execute();
  }

  async deleteExpiredInvitationsOf(deviceId: string, now: number, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('binding_invitations').where('device_id', '=', deviceId).where('expires_at', '<=', now).execute();
  }

  async deleteInvitationsFor(organizationId: string, email: string, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('binding_invitations').where('organization_id', '=', organizationId).where('invitee_email', '=', email).execute();
  }

  async deleteInvitationsBy(userId: string, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('binding_invitations').where('invited_by', '=', userId).execute();
  }

  // --- claims ----------------------------------------------------------------------------

  claimOf(deviceId: string, db: Executor = this.db): Promise<ClaimRow | undefined> {
    return db.selectFrom('device_claims').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
  }

  claimByCode(organizationId: string, codeHash: string, db: Executor = this.db): Promise<ClaimRow | undefined> {
    return db
      .selectFrom('device_claims')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('code_hash', '=', codeHash)
      .executeTakeFirst();
  }

  /** Creates the device's claim row if it has none (every change below then updates it). */
  async ensureClaim(deviceId: string, organizationId: string, db: Executor = this.db): Promise<void> {
    await db
      .insertInto('device_claims')
      .values({
        device_id: deviceId,
        organization_id: organizationId,
        code_hash: null,
        code_created_at: null,
        code_used_at: null,
        presence_until: null,
        nonce_hash: null,
        nonce_user_id: null,
        nonce_until: null,
        reset_id: null,
        reset_requested_at: null,
        reset_confirmed_at: null,
      })
      .onConflict((oc) => oc.column('device_id').doNothing())
      .execute();
  }

  async updateClaim(
    deviceId: string,
    changes: Partial<Omit<ClaimRow, 'device_id' | 'organization_id'>>,
    db: Executor = this.db,
  ): Promise<void> {
    await db.updateTable('device_claims').set(changes).where('device_id', '=', deviceId).execute();
  }

  /** Records the device's confirmation of reset `resetId`; false when that is not the reset it was sent last. */
  async confirmReset(deviceId: string, resetId: string, now: number, db: Executor = this.db): Promise<boolean> {
    const result = await db
      .updateTable('device_claims')
      .set({ reset_confirmed_at: now })
      .where('device_id', '=', deviceId)
      .where('reset_id', '=', resetId)
      .where('reset_confirmed_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  // --- failed claims ---------------------------------------------------------------------

  failures(subjects: string[], db: Executor = this.db): Promise<FailureRow[]> {
    return db.selectFrom('claim_failures').selectAll().where('subject', 'in', subjects).execute();
  }

  async putFailure(row: FailureRow, db: Executor = this.db): Promise<void> {
    await db
      .insertInto('claim_failures')
      .values(row)
      .onConflict((oc) =>
        oc
          .column('subject')
          .doUpdateSet({ failures: row.failures, window_started_at: row.window_started_at, locked_until: row.locked_until }),
      )
      .execute();
  }
}
