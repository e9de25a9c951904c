/**
 * Manufacturer CAs for just-in-time provisioning: a product trusts the CA that signs the
 * certificates a factory puts on its devices, and a device presenting such a certificate is
 * registered on first contact (jit.ts). Registering a CA needs proof of possession of its key: the
 * operator asks for a single-use challenge (ten minutes) and sends it back signed with the CA key
 * (`openssl dgst -sha256 -sign ca.key`), so nobody registers a CA they only hold the certificate of
 * (and then claims every device it ever signed). A CA certificate is live in one organization at a
 * time. Registering and revoking need devices:write and a fresh step-up; revoking stops new
 * registrations through the CA at once and, as an option, quarantines every device it registered.
 */
import { verify } from 'node:crypto';
import { ErrorCodes } from '@bulwark/protocol';
import { InvalidTokenError } from '../accounts/errors.js';
import type { OneTimeTokens } from '../accounts/one-time-tokens.js';
import { requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import type { ManufacturerCasTable } from '../storage/schema.js';
import { newId } from '../tokens.js';
import { caCertificateColumns, parseCa } from './bootstrap-cas.js';
import type { ManufacturerCaRow, ManufacturerStore } from './manufacturer-store.js';
import type { StepUpCheck } from './step-up.js';
import type { DevicesStore } from './store.js';

export const MAX_MANUFACTURER_CAS = 50;
export const CHALLENGE_TTL_MS = 10 * 60 * 1000;
export const DEVICE_ID_SOURCES = ['cn', 'serial_number', 'key_sha256'] as const;
export const ACTIVATIONS = ['active', 'pending'] as const;
const PREFIX = /^[A-Za-z0-9._-]{0,32}$/;

export type DeviceIdSource = ManufacturerCasTable['device_id_from'];

export interface ManufacturerCaView {
  id: string;
  name: string;
  productId: string;
  subject: string;
  fingerprintSha256: string;
  deviceIdFrom: DeviceIdSource;
  deviceIdPrefix: string;
  activation: ManufacturerCasTable['activation'];
  notAfter: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface RegisterManufacturerCa {
  name: string;
  productId: string;
  /** The CA certificate (PEM). */
  certificate: string;
  /** A challenge from `challenge()`. */
  challenge: string;
  /** The challenge's UTF-8 bytes signed with the CA key (SHA-256; Ed25519 signs the bytes), base64. */
  signature: string;
  deviceIdFrom?: DeviceIdSource;
  deviceIdPrefix?: string;
  activation?: ManufacturerCasTable['activation'];
}

export function manufacturerCaView(row: ManufacturerCaRow): ManufacturerCaView {
  return {
    id: row.id,
    name: row.name,
    productId: row.product_id,
    subject: row.subject,
    fingerprintSha256: row.fingerprint_sha256,
    deviceIdFrom: row.device_id_from,
    deviceIdPrefix: row.device_id_prefix,
    activation: row.activation,
    notAfter: new Date(Number(row.not_after)).toISOString(),
    createdAt: new Date(Number(row.created_at)).toISOString(),
    revokedAt: row.revoked_at === null ? null : new Date(Number(row.revoked_at)).toISOString(),
  };
}

const invalid = (message: string) => new ValidationError(message, { field: 'certificate' }, ErrorCodes.manufacturerCaInvalid);
const proofInvalid = (message: string) => new ValidationError(message, { field: 'signature' }, ErrorCodes.manufacturerCaProofInvalid);

export class ManufacturerCaService {
  constructor(
    private readonly store: ManufacturerStore,
    private readonly devices: DevicesStore,
    private readonly tokens: OneTimeTokens,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly requireStepUp: StepUpCheck,
    /** Told the subject hash of each CA registered (the device path's cache of unknown issuers). */
    private readonly onRegistered: (subjectSha256: string) => void = () => undefined,
  ) {}

  /** A single-use challenge to sign with the CA key; a newer one voids the organization's older ones. */
  async challenge(actor: Actor): Promise<{ challenge: string; expiresAt: Date }> {
    requirePermission(actor, 'devices:write');
    const challenge = await this.tokens.issue({
      purpose: 'manufacturer_ca_proof',
      organizationId: actor.organizationId,
      userId: null,
      email: `manufacturer-ca:${actor.organizationId}`,
      ttlMs: CHALLENGE_TTL_MS,
    });
    return { challenge, expiresAt: new Date(this.clock.now() + CHALLENGE_TTL_MS) };
  }

  async register(actor: Actor, input: RegisterManufacturerCa): Promise<ManufacturerCaView> {
    requirePermission(actor, 'devices:write');
    this.requireStepUp(actor);
    const name = input.name.trim();
    if (!name || name.length > 100) throw new ValidationError('name must be 1-100 characters', { field: 'name' });
    const deviceIdFrom = input.deviceIdFrom ?? 'cn';
    if (!DEVICE_ID_SOURCES.includes(deviceIdFrom))
      throw new ValidationError(`deviceIdFrom must be one of ${DEVICE_ID_SOURCES.join(', ')}`, { field: 'deviceIdFrom' });
    const prefix = input.deviceIdPrefix ?? '';
    if (!PREFIX.test(prefix)) throw new ValidationError('deviceIdPrefix is at most 32 of A-Z a-z 0-9 . _ -', { field: 'deviceIdPrefix' });
    const activation = input.activation ?? 'active';
    if (!ACTIVATIONS.includes(activation)) throw new ValidationError('activation must be active or pending', { field: 'activation' });
    if (!(await this.devices.productInOrganization(actor.organizationId, input.productId)))
      throw new ValidationError('productId must name a product of this organization', { field: 'productId' });
    const now = this.clock.now();
    const cert = parseCa(input.certificate, now, invalid);
    // The challenge is spent before the signature is checked: each challenge gets one try.
    try {
      const row = await this.tokens.consume('manufacturer_ca_proof', input.challenge);
      if (row.organization_id !== actor.organizationId) throw new InvalidTokenError('manufacturer CA proof of possession');
    } catch (error) {
      if (error instanceof InvalidTokenError)
        throw proofInvalid('The challenge is unknown, used, replaced by a newer one or expired: ask for a new one');
      throw error;
    }
    const signature = Buffer.from(input.signature, 'base64');
    let proven: boolean;
    try {
      const algorithm = cert.publicKey.asymmetricKeyType === 'ed25519' ? null : 'sha256';
      proven = signature.length > 0 && verify(algorithm, Buffer.from(input.challenge, 'utf8'), cert.publicKey, signature);
    } catch {
      proven = false;
    }
    if (!proven)
      throw proofInvalid(
        "The signature does not verify with the CA certificate's key: sign the challenge's bytes with the CA key (SHA-256)",
      );
    const row: ManufacturerCaRow = {
      id: newId(),
      organization_id: actor.organizationId,
      product_id: input.productId,
      name,
      ...caCertificateColumns(cert),
      device_id_from: deviceIdFrom,
      device_id_prefix: prefix,
      activation,
      created_at: now,
      revoked_at: null,
    };
    await this.store.db.transaction().execute(async (trx) => {
      if ((await this.store.liveByFingerprint(row.fingerprint_sha256, trx)).length > 0)
        throw new ConflictError(
          'This CA is already registered for just-in-time provisioning (here or in another organization); revoke it there first',
          { fingerprintSha256: row.fingerprint_sha256 },
          ErrorCodes.manufacturerCaExists,
        );
      if ((await this.store.countLive(actor.organizationId, trx)) >= MAX_MANUFACTURER_CAS)
        throw new ConflictError(`An organization may trust at most ${MAX_MANUFACTURER_CAS} manufacturer CAs; revoke one first`, {
          limit: MAX_MANUFACTURER_CAS,
        });
      await this.store.insertCa(row, trx);
      await this.audit.recordBy(
        actor,
        'pki.manufacturer_ca_registered',
        { type: 'manufacturer_ca', id: row.id },
        {
          name,
          productId: row.product_id,
          subject: row.subject,
          fingerprintSha256: row.fingerprint_sha256,
          deviceIdFrom,
          deviceIdPrefix: prefix,
          activation,
          proof: 'signed_challenge',
        },
        trx,
      );
    });
    this.onRegistered(row.subject_sha256);
    return manufacturerCaView(row);
  }

  async list(actor: Actor): Promise<(ManufacturerCaView & { devicesRegistered: number })[]> {
    requirePermission(actor, 'devices:read');
    const rows = await this.store.listCas(actor.organizationId);
    return Promise.all(
      rows.map(async (row) => ({ ...manufacturerCaView(row), devicesRegistered: await this.store.countRegistered(row.id) })),
    );
  }

  /**
   * Stops registrations through the CA at once (every node reads the CA on each registration).
   * With `quarantine`, every active device it registered is quarantined in the same transaction
   * (live sessions are re-checked by the brokers' credential watchers).
   */
  async revoke(actor: Actor, id: string, options: { quarantine?: boolean } = {}): Promise<{ quarantined: string[] }> {
    requirePermission(actor, 'devices:write');
    this.requireStepUp(actor);
    return this.store.db.transaction().execute(async (trx) => {
      const ca = await this.store.caInOrganization(actor.organizationId, id, trx);
      if (!ca) throw new NotFoundError('Manufacturer CA', { id });
      const now = this.clock.now();
      if (!(await this.store.revokeCa(id, now, trx)))
        throw new ConflictError('This manufacturer CA is already revoked', { id }, ErrorCodes.manufacturerCaRevoked);
      const quarantined = options.quarantine ? await this.store.quarantineRegistered(id, now, trx) : [];
      await this.audit.recordBy(
        actor,
        'pki.manufacturer_ca_revoked',
        { type: 'manufacturer_ca', id },
        {
          name: ca.name,
          fingerprintSha256: ca.fingerprint_sha256,
          quarantine: options.quarantine === true,
          quarantined: quarantined.length,
        },
        trx,
      );
      return { quarantined };
    });
  }
}
