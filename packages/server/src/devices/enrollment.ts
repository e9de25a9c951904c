/**
 * Device enrollment: a device's key pair stays on the device, which sends a CSR naming its ID and
 * gets its certificate back. Two doors: factory provisioning (an operator or a scoped API key
 * submits CSRs for devices of its organization) and EST `simpleenroll`, authorized by a one-time
 * enrollment token that an operator created for one device (single-use, hashed, expiring).
 * Issuance is audited by the PKI service; a pending device becomes active once enrolled.
 */
import { ErrorCodes } from '@bulwark/protocol';
import { InvalidTokenError } from '../accounts/errors.js';
import type { OneTimeTokens } from '../accounts/one-time-tokens.js';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { AuthenticationError, BulwarkError, ValidationError } from '../errors.js';
import type { PkiService } from '../pki/service.js';
import type { DevicesService } from './service.js';

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

export type BatchResult = EnrolledCertificate | { deviceId: string; error: { code: string; message: string } };

export class EnrollmentService {
  constructor(
    private readonly devices: DevicesService,
    private readonly pki: PkiService,
    private readonly tokens: OneTimeTokens,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  /** Factory provisioning: issues the certificate of a device of the actor's organization. */
  async provision(actor: Actor, deviceId: string, csrPem: string): Promise<EnrolledCertificate> {
    requirePermission(actor, 'devices:write');
    await this.devices.enrollable(actor.organizationId, deviceId);
    return this.issue(actor.organizationId, deviceId, csrPem, auditActor(actor), actor.sourceIp);
  }

  /** Factory provisioning of many devices; each item succeeds or fails on its own. */
  async provisionBatch(actor: Actor, items: { deviceId: string; csr: string }[]): Promise<BatchResult[]> {
    requirePermission(actor, 'devices:write');
    if (items.length === 0 || items.length > MAX_ENROLLMENT_BATCH) throw new ValidationError(`A batch holds 1 to ${MAX_ENROLLMENT_BATCH} items`, { items: items.length });
    const results: BatchResult[] = [];
    for (const item of items) {
      try {
        results.push(await this.provision(actor, item.deviceId, item.csr));
      } catch (error) {
        if (!(error instanceof BulwarkError)) throw error;
        results.push({ deviceId: item.deviceId, error: { code: error.code, message: error.message } });
      }
    }
    return results;
  }

  /** Creates the one-time token with which one device may enroll over EST; a newer token voids older ones. */
  async createEnrollmentToken(actor: Actor, deviceId: string): Promise<{ token: string; expiresAt: Date }> {
    requirePermission(actor, 'devices:write');
    await this.devices.enrollable(actor.organizationId, deviceId);
    const token = await this.tokens.issue({
      purpose: 'device_enrollment',
      organizationId: actor.organizationId,
      userId: null,
      // Keyed by device, so issuing a new token voids the device's earlier unused ones.
      email: `device:${deviceId}`,
      payload: { deviceId, createdBy: actor.userId },
      ttlMs: ENROLLMENT_TOKEN_TTL_MS,
    });
    const expiresAt = new Date(this.clock.now() + ENROLLMENT_TOKEN_TTL_MS);
    await this.audit.record({
      organizationId: actor.organizationId,
      actor: auditActor(actor),
      action: 'device.enrollment_token_created',
      target: { type: 'device', id: deviceId },
      sourceIp: actor.sourceIp,
      details: { expiresAt: expiresAt.toISOString() },
    });
    return { token, expiresAt };
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
      if (error instanceof InvalidTokenError) throw new AuthenticationError('The enrollment token is invalid, already used, replaced by a newer one, or expired; ask an operator for a new one', ErrorCodes.tokenInvalid);
      throw error;
    }
    const { deviceId } = JSON.parse(row.payload) as { deviceId: string };
    await this.devices.enrollable(row.organization_id, deviceId);
    return this.issue(row.organization_id, deviceId, csrPem, { type: 'anonymous', id: `enrollment_token:${row.id}` }, sourceIp);
  }

  private async issue(organizationId: string, deviceId: string, csrPem: string, actor: { type: 'user' | 'api_key' | 'cli' | 'anonymous'; id: string }, sourceIp: string): Promise<EnrolledCertificate> {
    const cert = await this.pki.issueDeviceCertificate({ organizationId, deviceId, csrPem }, actor);
    await this.devices.activateIfPending(organizationId, deviceId, actor, sourceIp);
    return { deviceId, certificate: cert.pem, chain: await this.pki.caChain(), serial: cert.serial, notAfter: cert.notAfter };
  }
}
