/**
 * The binding domain's words and views: a consumer's role on a device (owner; member: control;
 * guest: view), what a consumer sees of their devices, of shares and invitations, and what an
 * operator sees of a device's binding (never a claim code: only when one was made and used).
 */
import type { DeviceBindingView, InvitationView, MemberView, MyDeviceView } from '@bulwark/protocol';
import type { BindingInvitationsTable, DeviceMembersTable } from '../storage/schema.js';

/** A consumer's device, its members and invitations, an operator's binding view: wire shapes the apps and the console read too (@bulwark/protocol). */
export type { DeviceBindingView, InvitationView, MemberView, MyDeviceView };

export type DeviceRole = DeviceMembersTable['role'];
export type InvitationKind = BindingInvitationsTable['kind'];
export const SHARE_ROLES = ['member', 'guest'] as const;
export type ShareRole = (typeof SHARE_ROLES)[number];

/** What a role may do on its device. */
export const ROLE_CAN = {
  /** Read state, telemetry and the live stream. */
  view: new Set<DeviceRole>(['owner', 'member', 'guest']),
  /** Set desired state, send allowed commands. */
  control: new Set<DeviceRole>(['owner', 'member']),
  /** Share, revoke, transfer, unbind. */
  manage: new Set<DeviceRole>(['owner']),
} as const;

/** A claim code as it is shown once, when made, with the link its box label's QR code holds. */
export interface IssuedClaimCode {
  deviceId: string;
  serial: string;
  productId: string;
  code: string;
  /** `https://<platform>/app/add?product=<productId>#code=<code>` (protocol's claimLabelLink). */
  link: string;
}
