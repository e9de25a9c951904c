/**
 * A device's proven identity: what every door a device knocks on (EST re-enrollment, the MQTT
 * broker, device-facing HTTP) gets back once a credential checks out, whatever the credential
 * was (an X.509 certificate presented over TLS, or a short-lived HMAC token signed with the
 * device's symmetric key). Callers decide what a status allows: a quarantined device may still
 * reach its update topics, a disabled or retired one nothing. `DeviceCertificateVerifier` is the
 * certificate half.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { ErrorCodes } from '@bulwark/protocol';
import type { Clock } from '../clock.js';
import { BoundedCache } from '../bounded-cache.js';
import { AuthenticationError } from '../errors.js';
import type { DeviceStatus } from './model.js';
import type { DevicesStore } from './store.js';

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
    | { type: 'symmetric_key'; keyVersion: number; tokenExpiresAt: number }
    /** A certificate from a product's manufacturer CA, through which the device registered just in time (issue 18). */
    | { type: 'manufacturer_certificate'; fingerprintSha256: string; notAfter: number }
    /** A child device speaks through its gateway's session and has no credential of its own (issue 14). */
    | { type: 'via_gateway'; gatewayId: string; expiresAt: number };
}

/** The strings an identity shares with many others, one copy of each per process (at most this many kept). */
const SHARED_STRINGS_MAX = 10_000;
const sharedStrings = new Map<string, string>();

function shared<T extends string>(value: T): T {
  const known = sharedStrings.get(value);
  if (known !== undefined) return known as T;
  if (sharedStrings.size >= SHARED_STRINGS_MAX) sharedStrings.clear();
  sharedStrings.set(value, value);
  return value;
}

/**
 * An identity to hold for as long as a connection lasts: its organization, product and status are
 * the same strings as every other identity's with the same values. Each identity read from the
 * database carries its own copies (some 80 bytes), and a node holds one identity per connection,
 * tens of thousands of a few organizations and products (issue 21). Changes `identity` in place.
 */
export function heldIdentity(identity: DeviceIdentity): DeviceIdentity {
  identity.organizationId = shared(identity.organizationId);
  identity.productId = shared(identity.productId);
  identity.status = shared(identity.status);
  return identity;
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

/** DER bytes or a parsed certificate: what a TLS socket's getPeerCertificate().raw or a test hands in. */
export type PresentedCertificate = X509Certificate | Buffer;

/**
 * Proves a device's identity from the X.509 certificate it presented: issued by the device issuing
 * CA (chain and signature), within its validity at the platform clock, one we issued and recorded
 * (serial and fingerprint), not revoked, of a device that is not disabled or retired. Runs on every
 * MQTT connect, EST re-enrollment and device-facing HTTP request: the CA is parsed once, a
 * certificate once per process (while it stays among the last 10,000 seen), and the rest is one
 * primary-key lookup joining the certificate's record with its device.
 */
export class DeviceCertificateVerifier {
  private ca: Promise<X509Certificate> | null = null;
  /**
   * Certificates whose chain and signature checked out, by the SHA-256 of their DER bytes: what
   * those checks say depends on the bytes alone, so a device's second request (a director fetch
   * after its connect, each request of a keep-alive connection) skips the parse and the ECDSA
   * verification. Validity dates, the record, revocation and the device's status are checked
   * every time.
   */
  private readonly verified = new BoundedCache<{ serial: string; validFrom: number; validTo: number }>(10_000);

  constructor(
    private readonly devices: DevicesStore,
    private readonly clock: Clock,
    /** The device issuing CA's certificate (PEM), loaded on first use. */
    private readonly loadCa: () => Promise<string>,
  ) {}

  private issuingCa(): Promise<X509Certificate> {
    this.ca ??= this.loadCa().then((pem) => new X509Certificate(pem));
    this.ca.catch(() => (this.ca = null));
    return this.ca;
  }

  async fromCertificate(presented: PresentedCertificate): Promise<DeviceIdentity> {
    const raw = presented instanceof X509Certificate ? presented.raw : presented;
    const fingerprint = createHash('sha256').update(raw).digest('hex');
    const cert = this.verified.get(fingerprint) ?? (await this.verify(presented, fingerprint));
    const now = this.clock.now();
    if (now < cert.validFrom) throw new DeviceAuthenticationError('not_yet_valid');
    if (now > cert.validTo) throw new DeviceAuthenticationError('expired');

    const row = await this.devices.certificateWithDevice(cert.serial);
    // Same serial but other bytes: signed by our CA key yet never recorded (or a record altered).
    if (!row || row.fingerprint_sha256 !== fingerprint) throw new DeviceAuthenticationError('unknown_certificate');
    if (row.certificate_status !== 'active') throw new DeviceAuthenticationError('revoked');
    if (!row.device_status || row.serial === null || row.product_id === null) throw new DeviceAuthenticationError('unknown_device');
    if (row.device_status === 'disabled') throw new DeviceAuthenticationError('device_disabled');
    if (row.device_status === 'retired') throw new DeviceAuthenticationError('device_retired');
    return {
      organizationId: row.organization_id,
      deviceId: row.device_id,
      serial: row.serial,
      productId: row.product_id,
      status: row.device_status,
      credential: { type: 'certificate', certificateSerial: cert.serial, notAfter: Number(row.not_after) },
    };
  }

  /** Parses the certificate and checks it was issued and signed by the device issuing CA; remembers it when it was. */
  private async verify(presented: PresentedCertificate, fingerprint: string) {
    let cert: X509Certificate;
    try {
      cert = presented instanceof X509Certificate ? presented : new X509Certificate(presented);
    } catch {
      throw new DeviceAuthenticationError('malformed');
    }
    const ca = await this.issuingCa();
    if (!cert.checkIssued(ca)) throw new DeviceAuthenticationError('unknown_issuer');
    if (!cert.verify(ca.publicKey)) throw new DeviceAuthenticationError('bad_signature');
    const checked = { serial: certificateSerial(cert), validFrom: Date.parse(cert.validFrom), validTo: Date.parse(cert.validTo) };
    this.verified.set(fingerprint, checked);
    return checked;
  }
}

/** The serial as issued_certificates keys it: lowercase hex, no leading zero octets. */
export function certificateSerial(cert: X509Certificate): string {
  return cert.serialNumber.toLowerCase().replace(/^(00)+(?=[0-9a-f]{2})/, '');
}
