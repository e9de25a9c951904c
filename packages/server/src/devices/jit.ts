/**
 * Just-in-time provisioning, the device's side: a certificate chained to a product's manufacturer
 * CA (manufacturer-cas.ts), presented on a first MQTT connect (mutual TLS) or a first EST request,
 * registers its device. The device ID comes from the certificate (subject CN, subject serialNumber
 * or the SHA-256 of its public key, after the CA's prefix), so the same certificate always maps to
 * the same record (manufacturer_registrations, keyed by the certificate's fingerprint).
 *
 * The checks run before any row is written, cheapest first: the issuer (one indexed read; the
 * signature and validity in memory), the certificate's registration (one indexed read: a known
 * device goes no further), then admission on this node (at most `concurrency` registrations at
 * once and `perSecond` a second, refused at once with jit.busy, never queued, so a flood of new
 * devices never delays anyone else's connect), the CA's state, the allow-list (enrollment-policy.ts:
 * address ranges, serial patterns and list), and last, inside the registration's transaction, the
 * daily quota and the device ID's uniqueness. A refusal carries a stable code (jit.*); it is
 * audited once per code, address and minute (the count of the unrecorded ones rides on the next).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { DEVICE_ID, ErrorCodes } from '@bulwark/protocol';
import { RepeatSampler } from '../audit/repeat-sampler.js';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { commonName } from './bootstrap-cas.js';
import { DeviceAuthenticationError, type DeviceIdentity } from './identity.js';
import { RegistrationRefusedError } from './errors.js';
import { utcDay, type EnrollmentPolicyService } from './enrollment-policy.js';
import type { ManufacturerCaRow, ManufacturerStore, RegisteredDevice } from './manufacturer-store.js';
import { SERIAL, selfRegisteredDevice } from './model.js';
import { isUniqueViolation } from '../storage/unique-violation.js';
import type { DevicesStore } from './store.js';

export interface JitOptions {
  /** Registrations this node runs at once (config mqtt.jitConcurrency). */
  concurrency: number;
  /** Registrations this node starts per second (config mqtt.jitRegistrationsPerSecond). */
  perSecond: number;
}

/** Where the device knocked: the MQTT broker or EST simpleenroll. */
export type JitDoor = 'mqtt' | 'est';

/** The device a manufacturer certificate stands for, and whether this request registered it. */
export interface JitResult {
  device: RegisteredDevice;
  created: boolean;
  fingerprintSha256: string;
  /** The manufacturer certificate's end of validity (ms). */
  notAfter: number;
}

/** How long an issuer no manufacturer CA has is taken as unknown without asking storage again. */
export const UNKNOWN_ISSUER_MS = 5_000;

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const refuse = (code: ConstructorParameters<typeof RegistrationRefusedError>[0], message: string, status?: number) =>
  new RegistrationRefusedError(code, message, status);

/** The value the CA's policy takes from the certificate, or null when the certificate has none usable. */
function derivedValue(cert: X509Certificate, from: ManufacturerCaRow['device_id_from']): string | null {
  if (from === 'key_sha256') return sha256(cert.publicKey.export({ type: 'spki', format: 'der' }));
  return commonName(cert, from === 'cn' ? 'CN' : '2.5.4.5');
}

export class JitProvisioner {
  private readonly refusals = new RepeatSampler();
  /** Parsed CA certificates by registration ID (a registration's PEM never changes). */
  private readonly parsed = new Map<string, X509Certificate>();
  /** Issuer-name hashes no manufacturer CA has, until when (wall clock). */
  private readonly unknownIssuers = new Map<string, number>();
  private running = 0;
  private tokens: number;
  private refilledAt = Date.now();

  constructor(
    private readonly store: ManufacturerStore,
    private readonly policies: EnrollmentPolicyService,
    private readonly devices: DevicesStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly options: JitOptions,
  ) {
    this.tokens = options.perSecond;
  }

  /**
   * The registered manufacturer CAs (live or revoked) that signed the certificate, valid now. An
   * issuer name no CA has is remembered for UNKNOWN_ISSUER_MS, so a flood of certificates from
   * unknown issuers costs no storage read per attempt (a CA registered since is seen after that).
   */
  async issuersOf(cert: X509Certificate): Promise<ManufacturerCaRow[]> {
    const now = this.clock.now();
    const issuer = sha256(cert.issuer);
    const unknownUntil = this.unknownIssuers.get(issuer);
    if (unknownUntil !== undefined && unknownUntil > Date.now()) return [];
    const rows = await this.store.casByIssuer(issuer);
    if (rows.length === 0) {
      if (this.unknownIssuers.size >= 10_000) this.unknownIssuers.clear();
      this.unknownIssuers.set(issuer, Date.now() + UNKNOWN_ISSUER_MS);
    } else this.unknownIssuers.delete(issuer);
    return rows.filter((row) => {
      let ca = this.parsed.get(row.id);
      if (!ca) {
        ca = new X509Certificate(row.pem);
        if (this.parsed.size > 1000) this.parsed.clear();
        this.parsed.set(row.id, ca);
      }
      return now <= Number(row.not_after) && cert.checkIssued(ca) && cert.verify(ca.publicKey);
    });
  }

  /** A CA was registered on this node: certificates it issued are looked up again at once. */
  issuerRegistered(subjectSha256: string): void {
    this.unknownIssuers.delete(subjectSha256);
  }

  /**
   * The device a manufacturer certificate stands for, registering it if this certificate never
   * registered one; RegistrationRefusedError (audited, sampled) when it may not.
   */
  async resolve(presented: X509Certificate | Buffer, sourceIp: string, door: JitDoor): Promise<JitResult> {
    let cert: X509Certificate | null = null;
    let organizationId: string | null = null;
    try {
      try {
        cert = presented instanceof X509Certificate ? presented : new X509Certificate(presented);
      } catch {
        throw refuse(ErrorCodes.jitCertificateInvalid, 'The certificate does not parse');
      }
      const issuers = await this.issuersOf(cert);
      if (issuers.length === 0) throw refuse(ErrorCodes.jitUnknownCa, 'No manufacturer CA registered here issued this certificate');
      organizationId = issuers[0]!.organization_id;
      const now = this.clock.now();
      const notAfter = Date.parse(cert.validTo);
      if (now < Date.parse(cert.validFrom) || now > notAfter)
        throw refuse(ErrorCodes.jitCertificateInvalid, `The certificate is not valid now (valid ${cert.validFrom} to ${cert.validTo})`);
      const fingerprintSha256 = sha256(cert.raw);
      const known = await this.store.registration(fingerprintSha256);
      if (known && issuers.some((ca) => ca.id === known.manufacturerCaId))
        return { device: known, created: false, fingerprintSha256, notAfter };
      const ca = issuers.find((row) => row.revoked_at === null);
      if (!ca) throw refuse(ErrorCodes.jitCaRevoked, 'The manufacturer CA that issued this certificate was revoked');
      organizationId = ca.organization_id;
      const value = derivedValue(cert, ca.device_id_from);
      const deviceId = value === null ? null : `${ca.device_id_prefix}${value}`;
      if (deviceId === null || !DEVICE_ID.test(deviceId) || !SERIAL.test(deviceId))
        throw refuse(
          ErrorCodes.jitIdentityInvalid,
          `The certificate's ${ca.device_id_from} does not make a device ID (1-128 of A-Z a-z 0-9 . _ -)`,
        );
      return await this.admitted(() => this.register(ca, cert!, deviceId, fingerprintSha256, notAfter, sourceIp, door));
    } catch (error) {
      if (error instanceof RegistrationRefusedError) await this.refused(error, organizationId, cert, sourceIp, door);
      throw error;
    }
  }

  private async register(
    ca: ManufacturerCaRow,
    cert: X509Certificate,
    deviceId: string,
    fingerprintSha256: string,
    notAfter: number,
    sourceIp: string,
    door: JitDoor,
  ): Promise<JitResult> {
    const quota = await this.policies.admit('product', ca.product_id, deviceId, sourceIp);
    const now = this.clock.now();
    const actor = { type: 'anonymous' as const, id: `manufacturer_certificate:${fingerprintSha256}` };
    const device: RegisteredDevice = {
      deviceId,
      organizationId: ca.organization_id,
      manufacturerCaId: ca.id,
      serial: deviceId,
      productId: ca.product_id,
      status: ca.activation,
    };
    try {
      await this.store.db.transaction().execute(async (trx) => {
        if (await this.store.deviceExists(deviceId, ca.organization_id, deviceId, trx))
          throw refuse(
            ErrorCodes.jitIdentityConflict,
            'A device with this ID is already registered with another certificate; an operator must resolve it',
            409,
          );
        if (!(await this.store.countRegistration('product', ca.product_id, utcDay(now), quota, trx)))
          throw refuse(ErrorCodes.jitQuotaExceeded, `The product registers at most ${quota} new devices a day; try again tomorrow`, 429);
        await this.devices.insertDevices(
          [
            selfRegisteredDevice(
              { id: deviceId, organization_id: ca.organization_id, serial: deviceId, product_id: ca.product_id, status: ca.activation },
              now,
            ),
          ],
          trx,
        );
        await this.store.insertRegistration(
          {
            fingerprint_sha256: fingerprintSha256,
            organization_id: ca.organization_id,
            device_id: deviceId,
            manufacturer_ca_id: ca.id,
            not_after: notAfter,
            created_at: now,
          },
          trx,
        );
        await this.audit.record(
          {
            organizationId: ca.organization_id,
            actor,
            action: 'device.jit_registered',
            target: { type: 'device', id: deviceId },
            sourceIp,
            details: {
              door,
              manufacturerCaId: ca.id,
              productId: ca.product_id,
              status: ca.activation,
              certificate: { subject: cert.subject, serial: cert.serialNumber.toLowerCase(), fingerprintSha256 },
            },
          },
          trx,
        );
      });
    } catch (error) {
      // The same certificate twice at once: the loser finds the winner's device.
      if (isUniqueViolation(error)) {
        const winner = await this.store.registration(fingerprintSha256);
        if (winner) return { device: winner, created: false, fingerprintSha256, notAfter };
        throw refuse(
          ErrorCodes.jitIdentityConflict,
          'A device with this ID was registered at the same moment with another certificate',
          409,
        );
      }
      throw error;
    }
    return { device, created: true, fingerprintSha256, notAfter };
  }

  /**
   * The MQTT door: the identity a manufacturer certificate proves, registering its device on first
   * connect. A device held pending an operator's approval is refused (jit.pending_approval).
   */
  async authenticate(presented: X509Certificate | Buffer, sourceIp: string): Promise<DeviceIdentity> {
    const { device, fingerprintSha256, notAfter } = await this.resolve(presented, sourceIp, 'mqtt');
    if (device.status === 'disabled') throw new DeviceAuthenticationError('device_disabled');
    if (device.status === 'retired') throw new DeviceAuthenticationError('device_retired');
    if (device.status === 'pending') {
      const error = refuse(ErrorCodes.jitPendingApproval, 'The device is registered and waits for an operator to activate it');
      await this.refused(error, device.organizationId, null, sourceIp, 'mqtt');
      throw error;
    }
    return {
      organizationId: device.organizationId,
      deviceId: device.deviceId,
      serial: device.serial,
      productId: device.productId,
      status: device.status,
      credential: { type: 'manufacturer_certificate', fingerprintSha256, notAfter },
    };
  }

  /** Runs work within this node's registration bounds (EST issuance for a known device uses them too), or refuses at once. */
  bounded<T>(work: () => Promise<T>): Promise<T> {
    return this.admitted(work);
  }

  /** Runs a registration within this node's bounds, or refuses at once. */
  private async admitted<T>(work: () => Promise<T>): Promise<T> {
    const now = Date.now();
    this.tokens = Math.min(this.options.perSecond, this.tokens + ((now - this.refilledAt) / 1000) * this.options.perSecond);
    this.refilledAt = now;
    if (this.running >= this.options.concurrency || this.tokens < 1)
      throw refuse(ErrorCodes.jitBusy, 'Too many devices are registering right now; try again in a few seconds', 503);
    this.tokens -= 1;
    this.running++;
    try {
      return await work();
    } finally {
      this.running--;
    }
  }

  private async refused(
    error: RegistrationRefusedError,
    organizationId: string | null,
    cert: X509Certificate | null,
    sourceIp: string,
    door: JitDoor,
  ): Promise<void> {
    const { record, unrecorded } = this.refusals.admit(`${error.code}\n${sourceIp}`, this.clock.now());
    if (!record) return;
    await this.audit.record({
      organizationId,
      actor: { type: 'anonymous', id: null },
      action: 'device.jit_refused',
      sourceIp,
      outcome: 'denied',
      details: {
        code: error.code,
        door,
        certificate: cert ? { subject: cert.subject, issuer: cert.issuer, serial: cert.serialNumber.toLowerCase() } : null,
        ...(unrecorded > 0 ? { refusalsNotRecorded: unrecorded } : {}),
      },
    });
  }
}
