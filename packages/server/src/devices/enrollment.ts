/**
 * Device enrollment: a device's key pair stays on the device, which sends a CSR naming its ID (or
 * nothing) and gets its certificate back. The doors: factory provisioning (an operator or a scoped
 * API key submits CSRs for devices of its organization); EST `simpleenroll` authorized by a
 * one-time enrollment token an operator created for one device (single-use, hashed, expiring) or
 * by a bootstrap certificate from a registered manufacturer CA (once, while the device is pending);
 * and EST `simplereenroll`, authorized by the device's current certificate (renewal or re-key; the
 * previous certificate stays valid until it expires or is revoked). Credential rotation revokes
 * every certificate of a device and hands out a new enrollment token. Issuance is audited by the
 * PKI service; a pending device becomes active once enrolled.
 */
import { X509Certificate } from 'node:crypto';
import { ErrorCodes, errorBody } from '@bulwark/protocol';
import { InvalidTokenError } from '../accounts/errors.js';
import type { OneTimeTokens } from '../accounts/one-time-tokens.js';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import { RepeatSampler } from '../audit/repeat-sampler.js';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { AuthenticationError, BulwarkError, ValidationError } from '../errors.js';
import type { DeviceCertificateView, PkiService } from '../pki/service.js';
import type { BootstrapCaService } from './bootstrap-cas.js';
import { RegistrationRefusedError } from './errors.js';
import type { JitProvisioner } from './jit.js';
import { requireCredentialStepUp, type StepUpCheck } from './step-up.js';
import { DeviceAuthenticationError, type DeviceCertificateVerifier, type DeviceIdentity, type PresentedCertificate } from './identity.js';
import type { DevicesService } from './service.js';
import type { DevicesStore } from './store.js';
import type { Executor } from '../storage/executor.js';

export const ENROLLMENT_TOKEN_TTL_MS = 24 * 60 * 60 * 1000;
export const MAX_ENROLLMENT_BATCH = 500;

export interface EnrolledCertificate {
  deviceId: string;
  /** The device certificate (PEM). */
  certificate: string;
  /** The device issuing CA and the root (PEM). */
  chain: string;
  serial: string;
  notAfter: Date;
}

/** Why credentials are rotated: routine replacement, or a key that may be in someone else's hands. */
export const ROTATION_REASONS = ['superseded', 'keyCompromise'] as const;
export type RotationReason = (typeof ROTATION_REASONS)[number];

export interface RotatedCredentials {
  deviceId: string;
  /** Serials of the certificates revoked (now on the CRL). */
  revoked: string[];
  token: string;
  expiresAt: Date;
}

type AuditActor = { type: 'user' | 'api_key' | 'cli' | 'anonymous'; id: string };

/** True when both certificates carry the same public key (a renewal rather than a re-key). */
function sameKey(a: X509Certificate, bPem: string): boolean {
  const spki = (cert: X509Certificate) => cert.publicKey.export({ type: 'spki', format: 'der' });
  return spki(a).equals(spki(new X509Certificate(bPem)));
}

export type BatchResult = EnrolledCertificate | { deviceId: string; error: { code: string; message: string } };

export class EnrollmentService {
  /** Refused device certificates are anonymous: at most one audit entry per kind, address and minute. */
  private readonly refusals = new RepeatSampler();

  constructor(
    private readonly store: DevicesStore,
    private readonly devices: DevicesService,
    private readonly pki: PkiService,
    private readonly tokens: OneTimeTokens,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly identity: DeviceCertificateVerifier,
    private readonly bootstrapCas: BootstrapCaService,
    private readonly jit: JitProvisioner,
    private readonly requireStepUp: StepUpCheck,
  ) {}

  /**
   * EST simpleenroll with a certificate from the factory (the TLS client certificate): one chained
   * to a product's manufacturer CA registers its device just in time (jit.ts) and gets its platform
   * certificate; any other goes the bootstrap CA way (a device registered beforehand, pending).
   */
  async enrollWithDeviceCertificate(presented: PresentedCertificate, csrPem: string, sourceIp: string): Promise<EnrolledCertificate> {
    let cert: X509Certificate | null = null;
    try {
      cert = presented instanceof X509Certificate ? presented : new X509Certificate(presented);
    } catch {
      // Refused, with its reason, on the bootstrap path.
    }
    if (cert && (await this.jit.issuersOf(cert)).length > 0) return this.enrollJustInTime(cert, csrPem, sourceIp);
    return this.enrollWithBootstrapCertificate(presented, csrPem, sourceIp);
  }

  /**
   * The device of a manufacturer certificate (registered now, or by an earlier request) gets a
   * platform certificate naming its ID; its status stays as the CA's policy left it (active, or
   * pending an operator's approval, when the certificate is issued but the broker refuses it).
   */
  private async enrollJustInTime(cert: X509Certificate, csrPem: string, sourceIp: string): Promise<EnrolledCertificate> {
    const { device, created, fingerprintSha256 } = await this.jit.resolve(cert, sourceIp, 'est');
    if (device.status === 'disabled' || device.status === 'retired')
      throw new RegistrationRefusedError(ErrorCodes.jitDeviceNotEnrollable, `The device is ${device.status}: it enrolls nothing`);
    const actor: AuditActor = { type: 'anonymous', id: `manufacturer_certificate:${fingerprintSha256}` };
    // A known device asking again (it lost the answer) is held to the same per-node bounds as a new one.
    const issue = () =>
      this.pki.issueDeviceCertificate(
        { organizationId: device.organizationId, deviceId: device.deviceId, csrPem },
        actor,
        async (trx, issued) => {
          await this.audit.record(
            {
              organizationId: device.organizationId,
              actor,
              action: 'device.jit_enrolled',
              target: { type: 'device', id: device.deviceId },
              sourceIp,
              details: { serial: issued.serial, registered: created, status: device.status, manufacturerCaId: device.manufacturerCaId },
            },
            trx,
          );
        },
      );
    const issued = created ? await issue() : await this.jit.bounded(issue);
    return {
      deviceId: device.deviceId,
      certificate: issued.pem,
      chain: await this.pki.caChain(),
      serial: issued.serial,
      notAfter: issued.notAfter,
    };
  }

  /** Factory provisioning: issues the certificate of a device of the actor's organization. */
  async provision(actor: Actor, deviceId: string, csrPem: string): Promise<EnrolledCertificate> {
    requirePermission(actor, 'devices:write');
    await this.devices.enrollable(actor.organizationId, deviceId);
    return this.issue(actor.organizationId, deviceId, csrPem, auditActor(actor), actor.sourceIp);
  }

  /** The device's certificates (newest first) for an operator who may read it. */
  async certificatesOf(actor: Actor, deviceId: string): Promise<DeviceCertificateView[]> {
    await this.devices.get(actor, deviceId);
    return this.pki.certificatesOfDevice(actor.organizationId, deviceId);
  }

  /** Factory provisioning of many devices; each item succeeds or fails on its own. */
  async provisionBatch(actor: Actor, items: { deviceId: string; csr: string }[]): Promise<BatchResult[]> {
    requirePermission(actor, 'devices:write');
    if (items.length === 0 || items.length > MAX_ENROLLMENT_BATCH)
      throw new ValidationError(`A batch holds 1 to ${MAX_ENROLLMENT_BATCH} items`, { items: items.length });
    const results: BatchResult[] = [];
    for (const item of items) {
      try {
        results.push(await this.provision(actor, item.deviceId, item.csr));
      } catch (error) {
        if (!(error instanceof BulwarkError)) throw error;
        results.push({ deviceId: item.deviceId, ...errorBody(error.code, error.message) });
      }
    }
    return results;
  }

  /**
   * Creates the one-time token with which one device may enroll over EST; a newer token voids older
   * ones. A pending device's token is its first credential (provisioning); for a device already
   * enrolled, the token enrolls a second key beside its certificate, so a person steps up first, as
   * for rotation (requireRotationStepUp).
   */
  async createEnrollmentToken(actor: Actor, deviceId: string): Promise<{ token: string; expiresAt: Date }> {
    requirePermission(actor, 'devices:write');
    const device = await this.devices.enrollable(actor.organizationId, deviceId);
    if (device.status !== 'pending') this.requireRotationStepUp(actor);
    return this.store.db.transaction().execute(async (trx) => {
      const created = await this.issueToken(actor, deviceId, trx);
      await this.audit.recordBy(
        actor,
        'device.enrollment_token_created',
        { type: 'device', id: deviceId },
        { expiresAt: created.expiresAt.toISOString() },
        trx,
      );
      return created;
    });
  }

  /**
   * Credential rotation: revokes every certificate of the device (the CRL is republished) and
   * creates a fresh one-time enrollment token, in one transaction. The device enrolls again with
   * the token, over EST, with a new key. A person needs a recent step-up (requireRotationStepUp).
   */
  async rotateCredentials(actor: Actor, deviceId: string, reason: RotationReason = 'superseded'): Promise<RotatedCredentials> {
    requirePermission(actor, 'devices:write');
    if (!ROTATION_REASONS.includes(reason))
      throw new ValidationError(`reason must be one of ${ROTATION_REASONS.join(', ')}`, { field: 'reason' });
    // Found first: another organization's device ID answers the 404 of an unknown one, whatever the session.
    await this.devices.enrollable(actor.organizationId, deviceId);
    this.requireRotationStepUp(actor);
    const { serials, result } = await this.pki.revokeDeviceCertificates(
      { organizationId: actor.organizationId, deviceId, reason },
      auditActor(actor),
      async (trx, revoked) => {
        const created = await this.issueToken(actor, deviceId, trx);
        await this.audit.recordBy(
          actor,
          'device.credentials_rotated',
          { type: 'device', id: deviceId },
          { reason, revoked, tokenExpiresAt: created.expiresAt.toISOString() },
          trx,
        );
        return created;
      },
    );
    return { deviceId, revoked: serials, ...result };
  }

  /**
   * Rotation cuts a device off until it enrolls again, and hands out the token that enrolls it:
   * the rule of every credential hand-out (step-up.ts requireCredentialStepUp).
   */
  requireRotationStepUp(actor: Actor): void {
    requireCredentialStepUp(actor, this.requireStepUp);
  }

  private async issueToken(actor: Actor, deviceId: string, trx: Executor): Promise<{ token: string; expiresAt: Date }> {
    const token = await this.tokens.issue(
      {
        purpose: 'device_enrollment',
        organizationId: actor.organizationId,
        userId: null,
        // Keyed by device, so issuing a new token voids the device's earlier unused ones.
        email: `device:${deviceId}`,
        payload: { deviceId, createdBy: actor.userId },
        ttlMs: ENROLLMENT_TOKEN_TTL_MS,
      },
      trx,
    );
    return { token, expiresAt: new Date(this.clock.now() + ENROLLMENT_TOKEN_TTL_MS) };
  }

  /**
   * EST simpleenroll: spends the token (even when the CSR is then refused, so a token is never
   * tried twice) and issues the certificate of the device the token names.
   */
  async enrollWithToken(token: string, csrPem: string, sourceIp: string): Promise<EnrolledCertificate> {
    let row;
    try {
      row = await this.tokens.consume('device_enrollment', token);
    } catch (error) {
      if (error instanceof InvalidTokenError)
        throw new AuthenticationError(
          'The enrollment token is invalid, already used, replaced by a newer one, or expired; ask an operator for a new one',
          ErrorCodes.tokenInvalid,
        );
      throw error;
    }
    const { deviceId } = JSON.parse(row.payload) as { deviceId: string };
    await this.devices.enrollable(row.organization_id, deviceId);
    return this.issue(row.organization_id, deviceId, csrPem, { type: 'anonymous', id: `enrollment_token:${row.id}` }, sourceIp);
  }

  /**
   * EST simpleenroll with a bootstrap certificate (the TLS client certificate): the certificate must
   * come from a registered bootstrap CA and name a pending device, which becomes active in the same
   * transaction as the issuance, so a bootstrap certificate enrolls its device once even when sent
   * twice at the same moment.
   */
  async enrollWithBootstrapCertificate(presented: PresentedCertificate, csrPem: string, sourceIp: string): Promise<EnrolledCertificate> {
    let proof;
    try {
      proof = await this.bootstrapCas.authenticate(presented);
    } catch (error) {
      if (error instanceof DeviceAuthenticationError) await this.refused('device.bootstrap_enrolled', null, presented, error, sourceIp);
      throw error;
    }
    const actor: AuditActor = { type: 'anonymous', id: `bootstrap_certificate:${proof.fingerprintSha256}` };
    const cert = await this.pki.issueDeviceCertificate(
      { organizationId: proof.organizationId, deviceId: proof.deviceId, csrPem },
      actor,
      async (trx) => {
        const now = this.clock.now();
        // Another request with the same certificate won: this one rolls back, its certificate unrecorded.
        if (!(await this.store.activatePending(proof.deviceId, now, trx, proof.organizationId)))
          throw new DeviceAuthenticationError('unknown_device');
        const target = { type: 'device', id: proof.deviceId };
        await this.audit.record(
          {
            organizationId: proof.organizationId,
            actor,
            action: 'device.status_changed',
            target,
            sourceIp,
            details: { from: 'pending', to: 'active', reason: 'enrolled' },
          },
          trx,
        );
        await this.audit.record(
          {
            organizationId: proof.organizationId,
            actor,
            action: 'device.bootstrap_enrolled',
            target,
            sourceIp,
            details: { serial: proof.serial, bootstrapCaId: proof.bootstrapCaId, bootstrapFingerprintSha256: proof.fingerprintSha256 },
          },
          trx,
        );
      },
    );
    return {
      deviceId: proof.deviceId,
      certificate: cert.pem,
      chain: await this.pki.caChain(),
      serial: cert.serial,
      notAfter: cert.notAfter,
    };
  }

  /**
   * EST simplereenroll: the device's current certificate (from the TLS handshake) authorizes a new
   * one for the same device; the CSR may keep the key (renewal) or bring a new one (re-key). The
   * presented certificate is not revoked, so a device that loses the answer can try again.
   */
  async reenroll(
    presented: PresentedCertificate,
    csrPem: string,
    sourceIp: string,
  ): Promise<EnrolledCertificate & { rekeyed: boolean; previousSerial: string }> {
    let identity: DeviceIdentity;
    try {
      identity = await this.identity.fromCertificate(presented);
    } catch (error) {
      if (error instanceof DeviceAuthenticationError) await this.refused('pki.certificate_renewed', null, presented, error, sourceIp);
      throw error;
    }
    const previous = presented instanceof X509Certificate ? presented : new X509Certificate(presented);
    const previousSerial = identity.credential.type === 'certificate' ? identity.credential.certificateSerial : '';
    const actor: AuditActor = { type: 'anonymous', id: `certificate:${previousSerial}` };
    let rekeyed = false;
    const cert = await this.pki.issueDeviceCertificate(
      { organizationId: identity.organizationId, deviceId: identity.deviceId, csrPem },
      actor,
      async (trx, issued) => {
        rekeyed = !sameKey(previous, issued.pem);
        await this.audit.record(
          {
            organizationId: identity.organizationId,
            actor,
            action: 'pki.certificate_renewed',
            target: { type: 'certificate', id: issued.serial },
            sourceIp,
            details: { deviceId: identity.deviceId, previousSerial, rekeyed },
          },
          trx,
        );
      },
    );
    return {
      deviceId: identity.deviceId,
      certificate: cert.pem,
      chain: await this.pki.caChain(),
      serial: cert.serial,
      notAfter: cert.notAfter,
      rekeyed,
      previousSerial,
    };
  }

  /**
   * Audits a refused device credential with its real reason (the device itself gets a generic
   * answer): the first refusal of an action for a reason from an address in a minute, with the count
   * of those left unrecorded before it (the route logs every one).
   */
  private async refused(
    action: string,
    organizationId: string | null,
    presented: PresentedCertificate,
    error: DeviceAuthenticationError,
    sourceIp: string,
  ): Promise<void> {
    const { record, unrecorded } = this.refusals.admit(`${action}\n${error.reason}\n${sourceIp}`, this.clock.now());
    if (!record) return;
    let presentedCert: { subject: string; issuer: string; serial: string } | null = null;
    try {
      const cert = presented instanceof X509Certificate ? presented : new X509Certificate(presented);
      presentedCert = { subject: cert.subject, issuer: cert.issuer, serial: cert.serialNumber.toLowerCase() };
    } catch {
      // A certificate that does not parse is recorded by its reason alone.
    }
    await this.audit.record({
      organizationId,
      actor: { type: 'anonymous', id: null },
      action,
      sourceIp,
      outcome: 'denied',
      details: { reason: error.reason, certificate: presentedCert, ...(unrecorded > 0 ? { refusalsNotRecorded: unrecorded } : {}) },
    });
  }

  private async issue(
    organizationId: string,
    deviceId: string,
    csrPem: string,
    actor: AuditActor,
    sourceIp: string,
  ): Promise<EnrolledCertificate> {
    const cert = await this.pki.issueDeviceCertificate({ organizationId, deviceId, csrPem }, actor);
    await this.devices.activateIfPending(organizationId, deviceId, actor, sourceIp);
    return { deviceId, certificate: cert.pem, chain: await this.pki.caChain(), serial: cert.serial, notAfter: cert.notAfter };
  }
}
