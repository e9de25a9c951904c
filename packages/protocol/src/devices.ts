/**
 * A device, its certificates, its shadow and the commands sent to it as the API serves them (`GET
 * /api/v1/devices`, a device's detail, its state, its commands), a product with the commands its
 * devices declare, and a device's rotated credentials: built by the server (server/src/devices/,
 * server/src/pki/service.ts) and read by the console and the apps.
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

/** The JSON types a declared command parameter may take. */
export const COMMAND_PARAM_TYPES = ['string', 'number', 'integer', 'boolean'] as const;
export type CommandParamType = (typeof COMMAND_PARAM_TYPES)[number];

export interface CommandParamDeclaration {
  name: string;
  type: CommandParamType;
  required: boolean;
  description: string;
}

/** A command a product's devices take, with its parameters (`PUT /api/v1/products/:id/commands`). */
export interface CommandDeclaration {
  name: string;
  description: string;
  params: CommandParamDeclaration[];
}

/** A product (a device model) as the API serves it (`GET /api/v1/products`). */
export interface ProductView {
  id: string;
  name: string;
  hardwareRevision: string | null;
  firmwareLine: string | null;
  /** End of the declared support period (security updates until then); null: none declared. */
  supportUntil: string | null;
  /** Days of telemetry kept; null: the deployment's default (telemetry.retentionDays). */
  telemetryRetentionDays: number | null;
  /** Readings each device may store per UTC day; null: the deployment's default (telemetry.dailyReadingsPerDevice). */
  telemetryDailyReadings: number | null;
  /** Telemetry payload bytes each device may store per UTC day; null: the deployment's default (telemetry.dailyBytesPerDevice). */
  telemetryDailyBytes: number | null;
  /** The commands its devices take, with their parameters; null: none declared (any command is sent). */
  commands: CommandDeclaration[] | null;
  createdAt: string;
}

/** A device's new enrollment token after its credentials were rotated (`POST …/credentials/rotate`). */
export interface RotatedCredentialsView {
  deviceId: string;
  /** Serials of the certificates revoked (now on the CRL). */
  revoked: string[];
  token: string;
  expiresAt: string;
}
