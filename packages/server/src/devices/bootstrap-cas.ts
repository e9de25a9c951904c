/**
 * Bootstrap (manufacturer) CAs: an organization registers the CA that signs the certificates its
 * factory puts on devices, and a device presenting such a certificate may enroll over EST once,
 * without a token. A bootstrap certificate proves only "this is the device with serial S"; it is
 * accepted when issued directly by a registered, not deleted CA of an organization, valid at the
 * platform clock, and its subject CN is the serial of a device of that organization that is still
 * pending. Registering and deleting are audited; deleting keeps the row for the record.
 */
import 'reflect-metadata';
import { createHash, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { ErrorCodes } from '@bulwark/protocol';
import { requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import { sequenceElements } from '../pki/der.js';
import { newId } from '../tokens.js';
import type { BootstrapCaRow, BootstrapCaStore } from './bootstrap-ca-store.js';
import { DeviceAuthenticationError } from './identity.js';
import type { DevicesStore } from './store.js';

export const MAX_BOOTSTRAP_CAS = 50;
const MIN_RSA_BITS = 2048;
const ACCEPTED_CURVES = new Set(['prime256v1', 'secp384r1']);

export interface BootstrapCaView {
  id: string;
  name: string;
  subject: string;
  fingerprintSha256: string;
  notAfter: string;
  createdAt: string;
}

/** What a bootstrap certificate proved: the pending device it names, and the CA that vouched for it. */
export interface BootstrapProof {
  organizationId: string;
  deviceId: string;
  serial: string;
  bootstrapCaId: string;
  fingerprintSha256: string;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

function view(row: BootstrapCaRow): BootstrapCaView {
  return {
    id: row.id,
    name: row.name,
    subject: row.subject,
    fingerprintSha256: row.fingerprint_sha256,
    notAfter: new Date(Number(row.not_after)).toISOString(),
    createdAt: new Date(Number(row.created_at)).toISOString(),
  };
}

/** The certificate is not a usable CA certificate. */
export class BootstrapCaInvalidError extends ValidationError {
  constructor(message: string) {
    super(message, undefined, ErrorCodes.bootstrapCaInvalid);
  }
}

/** What a registered CA's row records of its certificate (bootstrap and manufacturer CAs alike). */
export function caCertificateColumns(cert: X509Certificate) {
  return {
    subject: cert.subject,
    subject_sha256: sha256(cert.subject),
    fingerprint_sha256: sha256(cert.raw),
    pem: cert.toString(),
    not_after: Date.parse(cert.validTo),
  };
}

/** Parses and checks a CA certificate (one PEM, CA:TRUE, valid now, a strong key); `invalid` makes the caller's error. */
export function parseCa(
  pem: string,
  now: number,
  invalid: (message: string) => Error = (message) => new BootstrapCaInvalidError(message),
): X509Certificate {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length !== 1) throw invalid("Send exactly one PEM certificate: the CA that issues your devices' certificates");
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(blocks[0]!);
  } catch (error) {
    throw invalid(`The certificate does not parse: ${(error as Error).message}`);
  }
  if (!cert.ca) throw invalid('The certificate is not a CA certificate (basicConstraints CA:TRUE is required)');
  if (now > Date.parse(cert.validTo) || now < Date.parse(cert.validFrom))
    throw invalid(`The CA certificate is not valid now (valid ${cert.validFrom} to ${cert.validTo})`);
  const key = cert.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  const strong =
    key.asymmetricKeyType === 'ed25519' ||
    (key.asymmetricKeyType === 'ec' && ACCEPTED_CURVES.has(details.namedCurve ?? '')) ||
    (key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= MIN_RSA_BITS);
  if (!strong)
    throw invalid(
      `The CA key (${key.asymmetricKeyType} ${details.namedCurve ?? details.modulusLength ?? ''}) is not accepted: use P-256, P-384, Ed25519 or RSA of at least ${MIN_RSA_BITS} bits`,
    );
  return cert;
}

/**
 * The subject CN (or another single field) of a certificate, decoded (serials may hold characters
 * node:crypto would escape). Only the subject Name is parsed (its DER found by pki/der.ts): parsing
 * the whole certificate with @peculiar/x509 cost several times as much, on every just-in-time
 * registration and bootstrap enrollment.
 */
export function commonName(cert: X509Certificate, field = 'CN'): string | null {
  try {
    const tbs = sequenceElements(sequenceElements(cert.raw)[0]!.bytes);
    // TBSCertificate: [0] version (absent in v1), serialNumber, signature, issuer, validity, subject, …
    const subject = tbs[tbs[0]!.tag === 0xa0 ? 5 : 4];
    if (subject?.tag !== 0x30) return null;
    const names = new x509.Name(Uint8Array.from(subject.bytes)).getField(field);
    return names.length === 1 ? names[0]! : null;
  } catch {
    return null;
  }
}

export class BootstrapCaService {
  constructor(
    private readonly store: BootstrapCaStore,
    private readonly devices: DevicesStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  async register(actor: Actor, input: { name: string; certificate: string }): Promise<BootstrapCaView> {
    requirePermission(actor, 'devices:write');
    const name = input.name.trim();
    if (!name || name.length > 100) throw new ValidationError('name must be 1-100 characters', { field: 'name' });
    const now = this.clock.now();
    const cert = parseCa(input.certificate, now);
    const row: BootstrapCaRow = {
      id: newId(),
      organization_id: actor.organizationId,
      name,
      ...caCertificateColumns(cert),
      created_at: now,
      deleted_at: null,
    };
    await this.store.db.transaction().execute(async (trx) => {
      const live = await this.store.live(actor.organizationId, trx);
      if (live.some((r) => r.fingerprint_sha256 === row.fingerprint_sha256))
        throw new ConflictError(
          'This CA is already registered in the organization',
          { fingerprintSha256: row.fingerprint_sha256 },
          ErrorCodes.bootstrapCaExists,
        );
      if (live.length >= MAX_BOOTSTRAP_CAS)
        throw new ConflictError(`An organization may register at most ${MAX_BOOTSTRAP_CAS} bootstrap CAs; delete one first`, {
          limit: MAX_BOOTSTRAP_CAS,
        });
      await this.store.insert(row, trx);
      await this.audit.recordBy(
        actor,
        'pki.bootstrap_ca_registered',
        { type: 'bootstrap_ca', id: row.id },
        { name, subject: row.subject, fingerprintSha256: row.fingerprint_sha256 },
        trx,
      );
    });
    return view(row);
  }

  async list(actor: Actor): Promise<BootstrapCaView[]> {
    requirePermission(actor, 'devices:read');
    return (await this.store.live(actor.organizationId)).map(view);
  }

  /** Stops trusting the CA at once: its certificates enroll nothing more (devices already enrolled keep their certificates). */
  async delete(actor: Actor, id: string): Promise<void> {
    requirePermission(actor, 'devices:write');
    await this.store.db.transaction().execute(async (trx) => {
      if (!(await this.store.markDeleted(actor.organizationId, id, this.clock.now(), trx))) throw new NotFoundError('Bootstrap CA', { id });
      await this.audit.recordBy(actor, 'pki.bootstrap_ca_deleted', { type: 'bootstrap_ca', id }, undefined, trx);
    });
  }

  /**
   * The pending device a bootstrap certificate vouches for, or DeviceAuthenticationError. The same
   * manufacturer CA may be registered by several organizations: the certificate must then name a
   * pending device in exactly one of them.
   */
  async authenticate(presented: X509Certificate | Buffer): Promise<BootstrapProof> {
    let cert: X509Certificate;
    try {
      cert = presented instanceof X509Certificate ? presented : new X509Certificate(presented);
    } catch {
      throw new DeviceAuthenticationError('malformed');
    }
    const now = this.clock.now();
    const candidates = await this.store.bySubject(sha256(cert.issuer));
    const issuers = candidates.filter((row) => {
      const ca = new X509Certificate(row.pem);
      return now <= Date.parse(ca.validTo) && cert.checkIssued(ca) && cert.verify(ca.publicKey);
    });
    if (issuers.length === 0) throw new DeviceAuthenticationError('unknown_issuer');
    if (now < Date.parse(cert.validFrom)) throw new DeviceAuthenticationError('not_yet_valid');
    if (now > Date.parse(cert.validTo)) throw new DeviceAuthenticationError('expired');
    const serial = commonName(cert);
    if (serial === null) throw new DeviceAuthenticationError('malformed');
    const devices = await this.devices.pendingBySerial([...new Set(issuers.map((i) => i.organization_id))], serial);
    if (devices.length !== 1) throw new DeviceAuthenticationError('unknown_device');
    const device = devices[0]!;
    return {
      organizationId: device.organization_id,
      deviceId: device.id,
      serial,
      bootstrapCaId: issuers.find((i) => i.organization_id === device.organization_id)!.id,
      fingerprintSha256: sha256(cert.raw),
    };
  }
}
