/**
 * A consumer's devices as the consumer API serves them (`/api/v1/my/…`, docs/binding.md): the
 * device with the consumer's role on it, its members and invitations, what its product collects and
 * why, and an operator's view of a device's binding. Built by the server (server/src/binding/) and
 * read by @bulwark/app-sdk, the companion app and the console.
 */

/** A consumer's role on a device: owner; member (control); guest (view). */
export type DeviceRole = 'owner' | 'member' | 'guest';
export type InvitationKind = 'share' | 'transfer';

/** A device as its consumer sees it. */
export interface MyDeviceView {
  id: string;
  serial: string;
  productId: string;
  status: string;
  role: DeviceRole;
  /** The consumer's own name for the device. */
  label: string | null;
  since: string;
}

/** Whether a consumer's device is connected now, and since when (null: it never connected); the node and protocol stay the operators'. */
export interface MyPresenceView {
  online: boolean;
  since: string | null;
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

/** One reason a product collects data. */
export interface PurposeDeclaration {
  /** `operation`, `analytics`, ...: lower case, digits, `_` and `-`. */
  id: string;
  /** Why, in words a consumer reads before claiming. */
  description: string;
  /** Needed for the device to work: accepted by claiming, ended only by unbinding. */
  required: boolean;
  /** The telemetry value names collected for this purpose. */
  telemetry: string[];
}

export interface PrivacyDeclaration {
  /** What the device senses (`temperature`, `sound`, `presence`, ...). */
  senses: string[];
  purposes: PurposeDeclaration[];
}

/** What a product senses and collects, and why (read it before claiming). */
export interface PrivacyView extends PrivacyDeclaration {
  productId: string;
  /** False: the product declares nothing (and then every value it sends is stored). */
  declared: boolean;
  updatedAt: string | null;
}

/** A device's declaration with the owner's decisions, and what is stored now. */
export interface DevicePrivacyView {
  deviceId: string;
  productId: string;
  declared: boolean;
  senses: string[];
  purposes: (PurposeDeclaration & { granted: boolean; decidedAt: string | null })[];
  /** The telemetry names stored now (null: everything, the product declares nothing). */
  collected: string[] | null;
}
