/**
 * What a consumer does with the devices bound to them, and what an operator sees and resets:
 * list and rename, share by invitation with a role (member: control, guest: view) and revoke,
 * transfer to another consumer (offer and accept), leave a share, and unbind. Unbinding (by the
 * owner, by a transfer, by an operator's reset or when the owner's account is deleted) ends every
 * share and sends the device a reset of its user data (ETSI EN 303 645 5.11-1) on `binding/reset`,
 * re-sent until the device confirms it on `binding/reset/result`. Every change is audited and
 * every live stream of the device re-checks its consumer's standing at once.
 */
import { BINDING_RESET, ErrorCodes, type UserDataReset } from '@bulwark/protocol';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import { validateEmail, type AccountsService } from '../accounts/service.js';
import type { AuditEvent, AuditService } from '../audit/service.js';
import { HOUR, iso, type Clock } from '../clock.js';
import type { DeviceIdentity } from '../devices/identity.js';
import type { DeviceMessenger } from '../devices/messaging.js';
import type { DevicesService } from '../devices/service.js';
import { isObject } from '../devices/shadow-state.js';
import { ConflictError, DeviceMessageRefusal, NotFoundError, ValidationError } from '../errors.js';
import { newId } from '../tokens.js';
import { standingFor, standingOf } from './access.js';
import { InvitationInvalidError, ShareLimitError } from './errors.js';
import type { LiveHub } from './live.js';
import type { DeviceBindingView, DeviceRole, InvitationView, MemberView, MyDeviceView, ShareRole } from './model.js';
import type { BindingStore, InvitationRow, MemberRow } from './store.js';
import type { Executor } from '../storage/executor.js';

export interface BindingOptions {
  invitationHours: number;
  maxMembersPerDevice: number;
}

/** Most devices listed for one consumer. */
export const MAX_MY_DEVICES = 500;
const MAX_LABEL = 64;

export class BindingService {
  constructor(
    private readonly store: BindingStore,
    private readonly devices: DevicesService,
    private readonly accounts: AccountsService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly messenger: DeviceMessenger,
    private readonly live: LiveHub,
    private readonly options: BindingOptions,
  ) {}

  // --- my devices ------------------------------------------------------------------------

  async myDevices(actor: Actor): Promise<MyDeviceView[]> {
    if (actor.kind !== 'consumer') return [];
    return this.viewsOfMembers(actor.organizationId, await this.store.membershipsOf(actor.organizationId, actor.userId, MAX_MY_DEVICES));
  }

  private async viewsOfMembers(organizationId: string, members: MemberRow[]): Promise<MyDeviceView[]> {
    const devices = new Map(
      (
        await this.devices.viewsOf(
          organizationId,
          members.map((m) => m.device_id),
        )
      ).map((d) => [d.id, d]),
    );
    return members.filter((m) => devices.has(m.device_id)).map((m) => myView(m, devices.get(m.device_id)!));
  }

  /** What a consumer's data export says of their devices: each binding (role, label, since) and the invitations they sent. */
  async exportOf(user: { id: string; organizationId: string }): Promise<{ bound: MyDeviceView[]; invitationsSent: InvitationView[] }> {
    const members = await this.store.membershipsOf(user.organizationId, user.id, Number.MAX_SAFE_INTEGER);
    const bound = await this.viewsOfMembers(user.organizationId, members);
    const now = this.clock.now();
    const invitationsSent: InvitationView[] = [];
    for (const member of members)
      for (const invitation of await this.store.invitationsOf(member.device_id, now))
        if (invitation.invited_by === user.id) invitationsSent.push(invitationView(invitation));
    return { bound, invitationsSent };
  }

  async myDevice(actor: Actor, deviceId: string): Promise<MyDeviceView> {
    const member = await standingOf(this.store, actor, deviceId);
    const [device] = await this.devices.viewsOf(actor.organizationId, [deviceId]);
    if (!device) throw new NotFoundError('Device', { deviceId });
    return myView(member, device);
  }

  /** The consumer's own name for the device (each member has theirs); null clears it. */
  async rename(actor: Actor, deviceId: string, label: string | null): Promise<MyDeviceView> {
    await standingOf(this.store, actor, deviceId);
    const clean = label === null ? null : label.trim();
    if (clean !== null && (clean.length === 0 || clean.length > MAX_LABEL || /\p{Cc}/u.test(clean)))
      throw new ValidationError(`label must be 1-${MAX_LABEL} printable characters, or null`, { field: 'label' });
    await this.store.setLabel(deviceId, actor.userId, clean);
    return this.myDevice(actor, deviceId);
  }

  // --- sharing ---------------------------------------------------------------------------

  async shares(actor: Actor, deviceId: string): Promise<{ members: MemberView[]; invitations: InvitationView[] }> {
    await standingFor(this.store, this.audit, actor, deviceId, 'manage', 'see who the device is shared with');
    return {
      members: await this.memberViews(actor.organizationId, await this.store.membersOf(deviceId)),
      invitations: (await this.store.invitationsOf(deviceId, this.clock.now())).map(invitationView),
    };
  }

  /** Invites a consumer (by email) to the device with a role; they accept in their own account. */
  async invite(actor: Actor, deviceId: string, input: { email: string; role: ShareRole }): Promise<InvitationView> {
    return this.offer(actor, deviceId, 'share', input.role, input.email);
  }

  /** Offers the device to another consumer (by email); on their accept they become its owner and every share ends. */
  async transfer(actor: Actor, deviceId: string, email: string): Promise<InvitationView> {
    return this.offer(actor, deviceId, 'transfer', 'owner', email);
  }

  async cancelInvitation(actor: Actor, deviceId: string, invitationId: string): Promise<void> {
    await standingFor(this.store, this.audit, actor, deviceId, 'manage', 'cancel invitations');
    await this.store.db.transaction().execute(async (trx) => {
      const invitation = await this.store.invitation(invitationId, trx);
      if (!invitation || invitation.device_id !== deviceId) throw new NotFoundError('Invitation', { invitationId });
      await this.store.deleteInvitation(invitationId, trx);
      await this.record(actor, 'binding.invitation_cancelled', deviceId, { invitationId, kind: invitation.kind }, trx);
    });
  }

  /** Ends a member's or guest's access at once (their live streams close). */
  async revoke(actor: Actor, deviceId: string, userId: string): Promise<void> {
    await standingFor(this.store, this.audit, actor, deviceId, 'manage', 'revoke shares');
    if (userId === actor.userId)
      throw new ValidationError('The owner does not revoke themselves: unbind the device instead', { field: 'userId' });
    await this.store.db.transaction().execute(async (trx) => {
      if ((await this.store.deleteMember(deviceId, userId, trx)) === 0) throw new NotFoundError('Share', { userId });
      await this.record(actor, 'binding.share_revoked', deviceId, { userId }, trx);
    });
    this.live.bindingChanged(deviceId);
  }

  /** Invitations waiting for this consumer. */
  async myInvitations(actor: Actor): Promise<InvitationView[]> {
    const me = await this.accounts.contact(actor.organizationId, actor.userId);
    if (!me || actor.kind !== 'consumer') return [];
    return (await this.store.invitationsFor(actor.organizationId, me.email, this.clock.now())).map(invitationView);
  }

  /**
   * Accepts an invitation addressed to this consumer's email: a share adds them with its role; a
   * transfer makes them the owner, ends every other standing on the device and resets its user data.
   */
  async accept(actor: Actor, invitationId: string): Promise<MyDeviceView> {
    const me = await this.accounts.contact(actor.organizationId, actor.userId);
    const now = this.clock.now();
    const result = await this.store.db.transaction().execute(async (trx) => {
      const invitation = await this.invitationFor(actor, me?.email ?? null, invitationId, now, trx);
      // An offer stands only while its sender still owns the device (a share: still manages it).
      const owner = await this.store.owner(invitation.device_id, trx);
      if (!owner || owner.user_id !== invitation.invited_by) {
        await this.store.deleteInvitation(invitation.id, trx);
        return { refused: true as const, invitation };
      }
      await this.store.deleteInvitation(invitation.id, trx);
      let resetId: string | null = null;
      if (invitation.kind === 'transfer') {
        await this.store.deleteMembersOf(invitation.device_id, trx);
        await this.store.deleteInvitationsOf(invitation.device_id, trx);
        resetId = await this.requestReset(invitation.device_id, invitation.organization_id, trx);
      } else {
        // The owner (whose address the invitation names after an email change) is not demoted by it.
        if (owner.user_id === actor.userId) throw invalidInvitation();
        await this.store.deleteMember(invitation.device_id, actor.userId, trx);
      }
      await this.store.insertMember(
        {
          device_id: invitation.device_id,
          user_id: actor.userId,
          organization_id: actor.organizationId,
          role: invitation.role,
          label: null,
          invited_by: invitation.invited_by,
          since: now,
        },
        trx,
      );
      await this.record(
        actor,
        invitation.kind === 'transfer' ? 'binding.transferred' : 'binding.share_accepted',
        invitation.device_id,
        { invitationId: invitation.id, role: invitation.role, from: invitation.invited_by },
        trx,
      );
      return { refused: false as const, invitation, resetId };
    });
    if (result.refused) {
      await this.audit.record(
        this.event(actor, 'binding.invitation_refused', result.invitation.device_id, { code: ErrorCodes.invitationInvalid }, 'denied'),
      );
      throw invalidInvitation();
    }
    if (result.resetId) await this.sendReset(result.invitation.device_id, result.resetId);
    this.live.bindingChanged(result.invitation.device_id);
    return this.myDevice(actor, result.invitation.device_id);
  }

  async decline(actor: Actor, invitationId: string): Promise<void> {
    const me = await this.accounts.contact(actor.organizationId, actor.userId);
    await this.store.db.transaction().execute(async (trx) => {
      const invitation = await this.invitationFor(actor, me?.email ?? null, invitationId, this.clock.now(), trx);
      await this.store.deleteInvitation(invitation.id, trx);
      await this.record(actor, 'binding.invitation_declined', invitation.device_id, { invitationId, kind: invitation.kind }, trx);
    });
  }

  // --- leaving and unbinding ---------------------------------------------------------------

  /** A member or guest gives up their share of the device. */
  async leave(actor: Actor, deviceId: string): Promise<void> {
    const member = await standingOf(this.store, actor, deviceId);
    if (member.role === 'owner')
      throw new ConflictError(
        'The owner does not leave a device: unbind it or transfer it',
        { deviceId },
        ErrorCodes.bindingRoleInsufficient,
      );
    await this.store.db.transaction().execute(async (trx) => {
      await this.store.deleteMember(deviceId, actor.userId, trx);
      await this.record(actor, 'binding.share_left', deviceId, { role: member.role }, trx);
    });
    this.live.bindingChanged(deviceId);
  }

  /** The owner unbinds the device: every share ends, the device resets its user data and is free for a new owner. */
  async unbind(actor: Actor, deviceId: string): Promise<void> {
    await standingFor(this.store, this.audit, actor, deviceId, 'manage', 'unbind the device');
    const resetId = await this.store.db.transaction().execute(async (trx) => {
      const resetId = await this.unbindIn(deviceId, actor.organizationId, trx);
      await this.record(actor, 'binding.unbound', deviceId, { resetId }, trx);
      return resetId;
    });
    await this.sendReset(deviceId, resetId);
    this.live.bindingChanged(deviceId);
  }

  /** An operator frees a device (a consumer lost access, a returned unit): as an unbind by its owner. */
  async operatorReset(actor: Actor, deviceId: string): Promise<DeviceBindingView> {
    requirePermission(actor, 'devices:write');
    const [device] = await this.devices.viewsOf(actor.organizationId, [deviceId]);
    if (!device) throw new NotFoundError('Device', { deviceId });
    const resetId = await this.store.db.transaction().execute(async (trx) => {
      const owner = await this.store.owner(deviceId, trx);
      const resetId = await this.unbindIn(deviceId, actor.organizationId, trx);
      await this.record(actor, 'binding.reset_by_operator', deviceId, { resetId, previousOwner: owner?.user_id ?? null }, trx);
      return resetId;
    });
    await this.sendReset(deviceId, resetId);
    this.live.bindingChanged(deviceId);
    return this.operatorView(actor, deviceId);
  }

  /**
   * Part of deleting a consumer's account, in its transaction: the devices they own are unbound
   * (resets sent once it commits), their shares end, and so do the invitations they sent and those
   * addressed to them (a later account with the same address must not inherit them). Returns what
   * to do after the commit.
   */
  async releaseAllOf(user: { id: string; organizationId: string; email: string }, trx: Executor): Promise<() => Promise<void>> {
    const members = await this.store.membershipsOf(user.organizationId, user.id, Number.MAX_SAFE_INTEGER, trx);
    const resets: [string, string][] = [];
    for (const member of members) {
      if (member.role === 'owner') {
        const resetId = await this.unbindIn(member.device_id, user.organizationId, trx);
        resets.push([member.device_id, resetId]);
      } else await this.store.deleteMember(member.device_id, user.id, trx);
      await this.audit.record(
        {
          organizationId: user.organizationId,
          actor: { type: 'user', id: user.id },
          action: member.role === 'owner' ? 'binding.unbound' : 'binding.share_left',
          target: { type: 'device', id: member.device_id },
          details: { reason: 'account_deleted' },
        },
        trx,
      );
    }
    await this.store.deleteInvitationsBy(user.id, trx);
    await this.store.deleteInvitationsFor(user.organizationId, user.email, trx);
    return async () => {
      for (const [deviceId, resetId] of resets) await this.sendReset(deviceId, resetId);
      for (const member of members) this.live.bindingChanged(member.device_id);
    };
  }

  /** A device's binding as an operator sees it: owner, shares, invitations, when its code was made and used; never the code. */
  async operatorView(actor: Actor, deviceId: string): Promise<DeviceBindingView> {
    requirePermission(actor, 'devices:read');
    const [device] = await this.devices.viewsOf(actor.organizationId, [deviceId]);
    if (!device) throw new NotFoundError('Device', { deviceId });
    const members = await this.memberViews(actor.organizationId, await this.store.membersOf(deviceId));
    const claim = await this.store.claimOf(deviceId);
    return {
      deviceId,
      bound: members.some((m) => m.role === 'owner'),
      owner: members.find((m) => m.role === 'owner') ?? null,
      shares: members.filter((m) => m.role !== 'owner'),
      invitations: (await this.store.invitationsOf(deviceId, this.clock.now())).map(invitationView),
      claimCode: claim?.code_created_at != null ? { createdAt: iso(claim.code_created_at), usedAt: iso(claim.code_used_at) } : null,
      lastReset:
        claim?.reset_requested_at != null
          ? { requestedAt: iso(claim.reset_requested_at), confirmedAt: iso(claim.reset_confirmed_at) }
          : null,
    };
  }

  // --- the device's side of the reset -----------------------------------------------------

  /** The device confirms it erased its user data (`binding/reset/result`): recorded and audited. */
  async confirmReset(identity: DeviceIdentity, payload: unknown): Promise<void> {
    if (!isObject(payload) || typeof payload.resetId !== 'string' || (payload.status !== 'ok' && payload.status !== 'error'))
      throw new DeviceMessageRefusal(
        ErrorCodes.payloadInvalid,
        'A reset result is { "resetId": "…", "status": "ok" | "error", "error"?: "…" }',
      );
    const error = typeof payload.error === 'string' ? payload.error.slice(0, 1024) : null;
    const now = this.clock.now();
    await this.store.db.transaction().execute(async (trx) => {
      const claim = await this.store.claimOf(identity.deviceId, trx);
      if (!claim || claim.reset_id !== payload.resetId || claim.reset_confirmed_at !== null)
        throw new DeviceMessageRefusal(ErrorCodes.resetUnknown, 'No reset of this device is waiting for that ID');
      // A failed reset stays pending: it is sent again on the next connection.
      if (payload.status === 'ok') await this.store.confirmReset(identity.deviceId, payload.resetId as string, now, trx);
      await this.audit.record(
        {
          organizationId: identity.organizationId,
          actor: { type: 'system', id: null },
          action: payload.status === 'ok' ? 'binding.reset_confirmed' : 'binding.reset_failed',
          target: { type: 'device', id: identity.deviceId },
          outcome: payload.status === 'ok' ? 'success' : 'failure',
          details: { resetId: payload.resetId, by: 'device', ...(error ? { error } : {}) },
        },
        trx,
      );
    });
  }

  /** Sends the device its pending reset again (it subscribed to `binding/reset`: it may have been offline when it was sent). */
  async resendReset(identity: DeviceIdentity): Promise<void> {
    const claim = await this.store.claimOf(identity.deviceId);
    if (claim?.reset_id && claim.reset_confirmed_at === null) await this.sendReset(identity.deviceId, claim.reset_id);
  }

  // --- helpers -----------------------------------------------------------------------------

  private async offer(
    actor: Actor,
    deviceId: string,
    kind: 'share' | 'transfer',
    role: DeviceRole,
    email: string,
  ): Promise<InvitationView> {
    await standingFor(this.store, this.audit, actor, deviceId, 'manage', kind === 'share' ? 'share the device' : 'transfer the device');
    const invitee = validateEmail(email);
    const me = await this.accounts.contact(actor.organizationId, actor.userId);
    if (me?.email === invitee) throw new ValidationError('You cannot invite yourself', { field: 'email' });
    const now = this.clock.now();
    const row: InvitationRow = {
      id: newId(),
      organization_id: actor.organizationId,
      device_id: deviceId,
      kind,
      role,
      invitee_email: invitee,
      invited_by: actor.userId,
      created_at: now,
      expires_at: now + this.options.invitationHours * HOUR,
    };
    await this.store.db.transaction().execute(async (trx) => {
      await this.store.deleteExpiredInvitationsOf(deviceId, now, trx);
      const held = (await this.store.membersOf(deviceId, trx)).length + (await this.store.invitationsOf(deviceId, now, trx)).length;
      if (kind === 'share' && held >= this.options.maxMembersPerDevice + 1) throw new ShareLimitError(this.options.maxMembersPerDevice);
      if (kind === 'transfer' && (await this.store.invitationsOf(deviceId, now, trx)).some((i) => i.kind === 'transfer'))
        throw new ConflictError('A transfer of this device is already offered: cancel it first', { deviceId });
      await this.store.insertInvitation(row, trx);
      // The invitee's address is personal data: the audit entry names the invitation, not the address.
      await this.record(
        actor,
        kind === 'share' ? 'binding.share_invited' : 'binding.transfer_offered',
        deviceId,
        { invitationId: row.id, role },
        trx,
      );
    });
    return invitationView(row);
  }

  /** An invitation addressed to the actor, still standing; anything else is the same refusal. */
  private async invitationFor(
    actor: Actor,
    email: string | null,
    invitationId: string,
    now: number,
    trx: Executor,
  ): Promise<InvitationRow> {
    const invitation = await this.store.invitation(invitationId, trx);
    if (
      actor.kind !== 'consumer' ||
      !email ||
      !invitation ||
      invitation.organization_id !== actor.organizationId ||
      invitation.invitee_email !== email ||
      Number(invitation.expires_at) <= now
    )
      throw invalidInvitation();
    return invitation;
  }

  /** Ends every standing on the device and its invitations, and queues a user-data reset; returns its ID. */
  private async unbindIn(deviceId: string, organizationId: string, trx: Executor): Promise<string> {
    await this.store.deleteMembersOf(deviceId, trx);
    await this.store.deleteInvitationsOf(deviceId, trx);
    return this.requestReset(deviceId, organizationId, trx);
  }

  private async requestReset(deviceId: string, organizationId: string, trx: Executor): Promise<string> {
    const resetId = newId();
    await this.store.ensureClaim(deviceId, organizationId, trx);
    await this.store.updateClaim(
      deviceId,
      { reset_id: resetId, reset_requested_at: this.clock.now(), reset_confirmed_at: null, presence_until: null },
      trx,
    );
    return resetId;
  }

  private async sendReset(deviceId: string, resetId: string): Promise<void> {
    const message: UserDataReset = { resetId, issuedAt: this.clock.now() };
    await this.messenger.publishToDevice(deviceId, BINDING_RESET, message);
  }

  private async memberViews(organizationId: string, members: MemberRow[]): Promise<MemberView[]> {
    const views: MemberView[] = [];
    for (const m of members) {
      const contact = await this.accounts.contact(organizationId, m.user_id);
      views.push({ userId: m.user_id, email: contact?.email ?? '', role: m.role, since: iso(m.since) });
    }
    return views;
  }

  private event(
    actor: Actor,
    action: string,
    deviceId: string,
    details: Record<string, unknown>,
    outcome: AuditEvent['outcome'] = 'success',
  ): AuditEvent {
    return {
      organizationId: actor.organizationId,
      actor: auditActor(actor),
      action,
      target: { type: 'device', id: deviceId },
      sourceIp: actor.sourceIp,
      outcome,
      details: actor.app ? { ...details, clientId: actor.app.clientId } : details,
    };
  }

  private async record(actor: Actor, action: string, deviceId: string, details: Record<string, unknown>, trx: Executor): Promise<void> {
    await this.audit.record(this.event(actor, action, deviceId, details), trx);
  }
}

function invalidInvitation(): InvitationInvalidError {
  return new InvitationInvalidError();
}

function myView(member: MemberRow, device: { id: string; serial: string; productId: string; status: string }): MyDeviceView {
  return {
    id: device.id,
    serial: device.serial,
    productId: device.productId,
    status: device.status,
    role: member.role,
    label: member.label,
    since: iso(member.since),
  };
}

function invitationView(row: InvitationRow): InvitationView {
  return {
    id: row.id,
    deviceId: row.device_id,
    kind: row.kind,
    role: row.role,
    email: row.invitee_email,
    createdAt: iso(row.created_at),
    expiresAt: iso(row.expires_at),
  };
}
