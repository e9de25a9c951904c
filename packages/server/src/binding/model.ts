/**
 * The binding domain's words and views: a consumer's role on a device (owner; member: control;
 * guest: view), what a consumer sees of their devices, of shares and invitations, and what an
 * operator sees of a device's binding (never a claim code: only when one was made and used).
 */
import type { BindingInvitationsTable, DeviceMembersTable } from '../storage/schema.js';

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

/** A device as its consumer sees it. */
export interface MyDeviceView {
  id: string;
  serial: string;
  productId: string;
  status: string;
  role: DeviceRole;
  label: string | null;
  since: string;
}

export interface MemberView {
  userId: string;
  email: string;
  role: DeviceRole;
  since: string;
}

export interface InvitationView {
  id: string;
  deviceId: string;
  kind: InvitationKind;
  role: DeviceRole;
  email: string;
  createdAt: string;
  expiresAt: string;
}

/** A device's binding as an operator sees it. */
export interface DeviceBindingView {
  deviceId: string;
  bound: boolean;
  owner: MemberView | null;
  shares: MemberView[];
  invitations: InvitationView[];
  claimCode: { createdAt: string; usedAt: string | null } | null;
  lastReset: { requestedAt: string; confirmedAt: string | null } | null;
}

/** A claim code as it is shown once, when made. */
export interface IssuedClaimCode {
  deviceId: string;
  serial: string;
  code: string;
}
