/**
 * A device's proven identity: what every door a device knocks on (EST re-enrollment, the MQTT
 * broker, device-facing HTTP) gets back once a credential checks out, whatever the credential
 * was (an X.509 certificate presented over TLS, or a short-lived HMAC token signed with the
 * device's symmetric key). Callers decide what a status allows: a quarantined device may still
 * reach its update topics, a disabled or retired one nothing.
 */
import { ErrorCodes } from '@bulwark/protocol';
import { AuthenticationError } from '../errors.js';
import type { DeviceStatus } from '../storage/schema.js';

export interface DeviceIdentity {
  organizationId: string;
  /** The platform's device ID (the certificate's CN and urn:bulwark:device: SAN). */
  deviceId: string;
  /** The brand serial. */
  serial: string;
  productId: string;
  status: DeviceStatus;
  credential:
    | { type: 'certificate'; certificateSerial: string; notAfter: number }
    | { type: 'symmetric_key'; keyVersion: number; tokenExpiresAt: number };
}

/** Why a device credential was refused; stable, and safe to log (never echoed to the device in detail). */
export type DeviceAuthFailure =
  | 'malformed'
  | 'unknown_issuer'
  | 'unknown_certificate'
  | 'expired'
  | 'not_yet_valid'
  | 'revoked'
  | 'bad_signature'
  | 'lifetime_too_long'
  | 'unknown_device'
  | 'device_disabled'
  | 'device_retired';

/** A device credential did not prove an identity. `reason` is for logs and audit; the message stays generic. */
export class DeviceAuthenticationError extends AuthenticationError {
  constructor(
    readonly reason: DeviceAuthFailure,
    message = 'Device authentication failed',
  ) {
    super(message, ErrorCodes.deviceAuthFailed);
  }
}
