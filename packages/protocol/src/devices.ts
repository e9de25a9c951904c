/**
 * A device and its certificates as the API serves them (`GET /api/v1/devices`, a device's detail):
 * built by the server (server/src/devices/model.ts, server/src/pki/service.ts) and read by the
 * console.
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
