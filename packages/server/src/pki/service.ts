/**
 * The PKI domain: issues device certificates from CSRs, records them, revokes them, and keeps the
 * device issuing CA's CRL fresh (rebuilt on every revocation, and whenever half its lifetime has
 * passed). Every issuance, refusal and revocation is audited in the same transaction.
 */
import type { DeviceCertificateView } from '@bulwark/protocol';
import type { AuditEvent, AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { BulwarkError, ValidationError } from '../errors.js';
import type { IssuingCa } from './ca.js';
import { buildCrlPem, REVOCATION_REASONS, type RevocationReason } from './crl.js';
import { AlreadyRevokedError, CertificateNotFoundError } from './errors.js';
import { CertificateIssuer, type DeviceCertificate } from './issuer.js';
import * as x509 from '@peculiar/x509';
import { PkiStore, type StoredCrl } from './store.js';
import type { Executor } from '../storage/executor.js';

export const DEFAULT_CRL_LIFETIME_MS = 24 * 60 * 60 * 1000;

export interface PkiOptions {
  /** The CRL distribution point written into device certificates. */
  crlUrl: string;
  validityDays?: number;
  crlLifetimeMs?: number;
}

export interface IssueRequest {
  organizationId: string;
  deviceId: string;
  csrPem: string;
  validityDays?: number;
}

export interface RevokeRequest {
  organizationId: string;
  serial: string;
  reason: RevocationReason;
}

type Actor = AuditEvent['actor'];

/** Serials are stored as lowercase hex without separators; accept `AB:CD…` as OpenSSL prints them. */
export function normalizeSerial(serial: string): string {
  const hex = serial.replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{1,40}$/.test(hex))
    throw new ValidationError('Serial must be up to 20 bytes of hexadecimal', { serial }, 'pki.serial_invalid');
  return hex;
}

/** A device certificate as the API shows it: a wire shape the console reads too (@bulwark/protocol). */
export type { DeviceCertificateView };

export class PkiService {
  private issuerReady: Promise<{ issuer: CertificateIssuer; material: IssuingCa }> | null = null;

  constructor(
    private readonly store: PkiStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    /** Opens the device issuing CA (its key in software or on the token) on first use, after `bulwark init` has made it. */
    private readonly loadIssuingCa: () => Promise<IssuingCa>,
    private readonly options: PkiOptions,
  ) {}

  private ready(): Promise<{ issuer: CertificateIssuer; material: IssuingCa }> {
    this.issuerReady ??= (async () => {
      const material = await this.loadIssuingCa();
      const issuer = await CertificateIssuer.create(material.cert, material.signer, {
        crlUrl: this.options.crlUrl,
        ...(this.options.validityDays ? { validityDays: this.options.validityDays } : {}),
      });
      await this.republishIfSignedByAnotherCa(issuer);
      return { issuer, material };
    })();
    this.issuerReady.catch(() => (this.issuerReady = null));
    return this.issuerReady;
  }

  /** The device issuing CA and the root (PEM), as a device or relying party needs them. */
  async caChain(): Promise<string> {
    return (await this.ready()).material.chain;
  }

  /**
   * Issues and records a device certificate. `within` runs in the recording transaction (pass it
   * the transaction for every query), so a caller's own checks and audit commit or roll back with
   * the issuance.
   */
  async issueDeviceCertificate(
    request: IssueRequest,
    actor: Actor,
    within?: (trx: Executor, cert: DeviceCertificate) => Promise<void>,
  ): Promise<DeviceCertificate> {
    const { issuer } = await this.ready();
    const now = this.clock.now();
    let cert: DeviceCertificate;
    try {
      cert = await issuer.issueDeviceCertificate(request.deviceId, request.csrPem, new Date(now), request.validityDays);
    } catch (error) {
      if (error instanceof BulwarkError) {
        await this.audit.record({
          organizationId: request.organizationId,
          actor,
          action: 'pki.certificate_issued',
          target: { type: 'device', id: request.deviceId },
          outcome: 'denied',
          details: { code: error.code, reason: error.message },
        });
      }
      throw error;
    }
    await this.store.db.transaction().execute(async (trx) => {
      await new PkiStore(trx).insertCertificate({
        serial: cert.serial,
        organization_id: request.organizationId,
        device_id: cert.deviceId,
        subject: cert.subject,
        not_before: cert.notBefore.getTime(),
        not_after: cert.notAfter.getTime(),
        fingerprint_sha256: cert.fingerprintSha256,
        pem: cert.pem,
        status: 'active',
        revoked_at: null,
        revocation_reason: null,
        created_at: now,
      });
      await this.audit.record(
        {
          organizationId: request.organizationId,
          actor,
          action: 'pki.certificate_issued',
          target: { type: 'certificate', id: cert.serial },
          details: { deviceId: cert.deviceId, notAfter: cert.notAfter.toISOString(), fingerprintSha256: cert.fingerprintSha256 },
        },
        trx,
      );
      if (within) await within(trx, cert);
    });
    return cert;
  }

  /** The device issuing CA's certificate (PEM): what a device certificate must be issued by. */
  async deviceCaCertificate(): Promise<string> {
    return (await this.ready()).material.cert;
  }

  /**
   * Revokes every active certificate of a device and publishes the new CRL, in one transaction;
   * `within` runs in it too (pass it the transaction). Returns the revoked serials.
   */
  async revokeDeviceCertificates<T>(
    request: { organizationId: string; deviceId: string; reason: RevocationReason },
    actor: Actor,
    within: (trx: Executor, serials: string[]) => Promise<T>,
  ): Promise<{ serials: string[]; result: T }> {
    if (!REVOCATION_REASONS.includes(request.reason)) {
      throw new ValidationError(
        `Revocation reason must be one of ${REVOCATION_REASONS.join(', ')}`,
        { reason: request.reason },
        'pki.reason_invalid',
      );
    }
    const ready = await this.ready();
    const now = this.clock.now();
    return this.store.db.transaction().execute(async (trx) => {
      const store = new PkiStore(trx);
      const serials: string[] = [];
      for (const serial of await store.activeSerialsOfDevice(request.organizationId, request.deviceId)) {
        if (!(await store.markRevoked(serial, now, request.reason))) continue;
        serials.push(serial);
        await this.audit.record(
          {
            organizationId: request.organizationId,
            actor,
            action: 'pki.certificate_revoked',
            target: { type: 'certificate', id: serial },
            details: { deviceId: request.deviceId, reason: request.reason },
          },
          trx,
        );
      }
      if (serials.length > 0) await this.rebuildCrl(store, ready.issuer, now);
      return { serials, result: await within(trx, serials) };
    });
  }

  /** Revokes a certificate of the organization and publishes a new CRL in the same transaction. */
  async revoke(request: RevokeRequest, actor: Actor): Promise<{ serial: string; revokedAt: Date }> {
    if (!REVOCATION_REASONS.includes(request.reason)) {
      throw new ValidationError(
        `Revocation reason must be one of ${REVOCATION_REASONS.join(', ')}`,
        { reason: request.reason },
        'pki.reason_invalid',
      );
    }
    const serial = normalizeSerial(request.serial);
    const ready = await this.ready();
    const now = this.clock.now();
    await this.store.db.transaction().execute(async (trx) => {
      const store = new PkiStore(trx);
      const cert = await store.findCertificate(serial);
      if (!cert || cert.organization_id !== request.organizationId) throw new CertificateNotFoundError(serial);
      if (!(await store.markRevoked(serial, now, request.reason))) throw new AlreadyRevokedError(serial);
      await this.rebuildCrl(store, ready.issuer, now);
      await this.audit.record(
        {
          organizationId: request.organizationId,
          actor,
          action: 'pki.certificate_revoked',
          target: { type: 'certificate', id: serial },
          details: { deviceId: cert.device_id, reason: request.reason },
        },
        trx,
      );
    });
    return { serial, revokedAt: new Date(now) };
  }

  /** Certificates revoked at or after `since`, on any node: the broker drops the sessions they opened. */
  async revokedSince(since: number): Promise<{ serial: string; deviceId: string; revokedAt: number }[]> {
    const rows = await this.store.revokedSince(since);
    return rows.map((r) => ({ serial: r.serial, deviceId: r.device_id, revokedAt: r.revoked_at ?? 0 }));
  }

  /** The device's certificates valid now (PEM), not revoked: what a signature by the device is checked against. */
  async currentCertificates(organizationId: string, deviceId: string): Promise<string[]> {
    return this.store.currentPemsOfDevice(organizationId, deviceId, this.clock.now());
  }

  /** The device's certificates, newest first (at most 20): serial, fingerprint, validity and revocation. */
  async certificatesOfDevice(organizationId: string, deviceId: string): Promise<DeviceCertificateView[]> {
    const rows = await this.store.certificatesOfDevice(organizationId, deviceId, 20);
    return rows.map((row) => ({
      serial: row.serial,
      fingerprintSha256: row.fingerprint_sha256,
      notBefore: new Date(row.not_before).toISOString(),
      notAfter: new Date(row.not_after).toISOString(),
      status: row.status,
      revokedAt: row.revoked_at === null ? null : new Date(row.revoked_at).toISOString(),
      revocationReason: row.revocation_reason,
    }));
  }

  /** Whether the certificate with this serial is recorded and not revoked. */
  async isActive(serial: string): Promise<boolean> {
    return (await this.store.findCertificate(serial))?.status === 'active';
  }

  /** The current CRL (PEM), rebuilt first when it is missing or past half its lifetime. */
  async crlFor(now = this.clock.now()): Promise<string> {
    const current = await this.store.readCrl();
    if (current && !this.isStale(current, now)) return current.pem;
    const { issuer } = await this.ready();
    return this.store.db.transaction().execute(async (trx) => {
      const store = new PkiStore(trx);
      await store.lockCrl(now);
      const latest = await store.readCrl();
      if (latest && !this.isStale(latest, now)) return latest.pem;
      return (await this.rebuildCrl(store, issuer, now)).pem;
    });
  }

  private isStale(crl: StoredCrl, now: number): boolean {
    return now >= crl.thisUpdate + (crl.nextUpdate - crl.thisUpdate) / 2 || now < crl.thisUpdate;
  }

  /** After a new device issuing CA was imported, the stored CRL is the old CA's: publish one signed by the new CA at once. */
  private async republishIfSignedByAnotherCa(issuer: CertificateIssuer): Promise<void> {
    const current = await this.store.readCrl();
    if (!current || (await new x509.X509Crl(current.pem).verify({ publicKey: issuer.caCertificate }).catch(() => false))) return;
    const now = this.clock.now();
    await this.store.db.transaction().execute(async (trx) => {
      await this.rebuildCrl(new PkiStore(trx), issuer, now);
    });
  }

  private async rebuildCrl(store: PkiStore, issuer: CertificateIssuer, now: number): Promise<StoredCrl> {
    await store.lockCrl(now);
    const previous = await store.readCrl();
    const revoked = await store.listRevoked(now);
    const lifetime = this.options.crlLifetimeMs ?? DEFAULT_CRL_LIFETIME_MS;
    const crl: StoredCrl = { number: (previous?.number ?? 0) + 1, thisUpdate: now, nextUpdate: now + lifetime, pem: '' };
    crl.pem = await buildCrlPem({
      ca: issuer.caCertificate,
      signer: issuer.caSigner,
      number: crl.number,
      thisUpdate: new Date(crl.thisUpdate),
      nextUpdate: new Date(crl.nextUpdate),
      entries: revoked.map((r) => ({
        serial: r.serial,
        revokedAt: new Date(r.revoked_at ?? now),
        reason: (r.revocation_reason ?? 'unspecified') as RevocationReason,
      })),
    });
    await store.writeCrl(crl, now);
    return crl;
  }
}
