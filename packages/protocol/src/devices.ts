/**
 * A device, its certificates, its shadow and the commands sent to it as the API serves them (`GET
 * /api/v1/devices`, a device's detail, its state, its commands): built by the server
 * (server/src/devices/, server/src/pki/service.ts) and read by the console and the apps.
 */

/** Where a device stands in its life: only `active` devices connect, publish and enroll. */
export const DEVICE_STATUSES = ['pending', 'active', 'quarantined', 'disabled', 'retired'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

export interface DeviceView {
  id: string;
  serial: string;
  productId: string;
  status: DeviceStatus;
  firmwareVersion: string | null;
  lastSeenAt: string | null;
  attributes: Record<string, unknown>;
  tags: string[];
  group: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A device certificate as the API shows it (no PEM: the fingerprint identifies it). */
export interface DeviceCertificateView {
  serial: string;
  fingerprintSha256: string;
  notBefore: string;
  notAfter: string;
  status: 'active' | 'revoked';
  revokedAt: string | null;
  revocationReason: string | null;
}

/** Where a command to a device stands: a command not answered before its deadline is `timed_out`. */
export type CommandStatus = 'pending' | 'succeeded' | 'failed' | 'rejected' | 'timed_out';

/** A command sent to a device, with its outcome once the device answered (docs/protocol.md §3.4). */
export interface CommandView {
  id: string;
  deviceId: string;
  name: string;
  params: Record<string, unknown>;
  status: CommandStatus;
  result: unknown;
  error: string | null;
  createdAt: string;
  expiresAt: string;
  completedAt: string | null;
}

/** A device's shadow: the state it reported, the state wanted of it, and the difference. */
export interface ShadowView {
  deviceId: string;
  reported: { state: Record<string, unknown>; version: number; updatedAt: string | null };
  desired: { state: Record<string, unknown>; version: number; updatedAt: string | null };
  delta: Record<string, unknown>;
}
