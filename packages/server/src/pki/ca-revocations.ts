/**
 * CA certificates recorded as revoked: an intermediate (issuing) CA the offline root revoked,
 * recorded deployment-wide from the CLI, or a manufacturer's bootstrap CA an organization learnt
 * was compromised. The record is what the audit checks `revoked-ca-issued-active` (device
 * certificates it signed still active) and `revoked-ca-still-active` (still the issuing CA, or a
 * bootstrap CA still registered) read; it changes no trust decision by itself. Audited.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { ConflictError, ValidationError } from '../errors.js';
import { newId } from '../tokens.js';
import type { CaRevocationRow, CaRevocationStore } from './ca-revocation-store.js';

/** RFC 5280 reasons that apply to a CA certificate. */
export const CA_REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
] as const;
export type CaRevocationReason = (typeof CA_REVOCATION_REASONS)[number];

export interface CaRevocationView {
  id: string;
  organizationId: string | null;
  fingerprintSha256: string;
  subject: string;
  reason: string;
  revokedAt: string;
  pem: string;
}

const view = (row: CaRevocationRow): CaRevocationView => ({
  id: row.id,
  organizationId: row.organization_id,
  fingerprintSha256: row.fingerprint_sha256,
  subject: row.subject,
  reason: row.reason,
  revokedAt: new Date(Number(row.revoked_at)).toISOString(),
  pem: row.pem,
});

export class CaRevocationService {
  constructor(
    private readonly store: CaRevocationStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  /**
   * Records a CA certificate as revoked, for the actor's organization, or (actor null: the CLI on the
   * deployment) deployment-wide.
   */
  async revoke(actor: Actor | null, input: { certificate: string; reason: CaRevocationReason }): Promise<CaRevocationView> {
    if (actor) requirePermission(actor, 'org:manage');
    if (!CA_REVOCATION_REASONS.includes(input.reason))
      throw new ValidationError(
        `reason must be one of ${CA_REVOCATION_REASONS.join(', ')}`,
        { reason: input.reason },
        'pki.reason_invalid',
      );
    const blocks = input.certificate.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length !== 1) throw new ValidationError('Send exactly one PEM certificate: the CA certificate that is revoked');
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(blocks[0]!);
    } catch (error) {
      throw new ValidationError(`The certificate does not parse: ${(error as Error).message}`);
    }
    if (!cert.ca) throw new ValidationError('The certificate is not a CA certificate (basicConstraints CA:TRUE)');
    const row: CaRevocationRow = {
      id: newId(),
      organization_id: actor?.organizationId ?? null,
      fingerprint_sha256: createHash('sha256').update(cert.raw).digest('hex'),
      subject: cert.subject,
      pem: cert.toString(),
      reason: input.reason,
      revoked_by: actor?.userId ?? null,
      revoked_at: this.clock.now(),
    };
    if (!(await this.store.insert(row)))
      throw new ConflictError('This CA is already recorded as revoked', { fingerprintSha256: row.fingerprint_sha256 });
    await this.audit.record({
      organizationId: row.organization_id,
      actor: actor ? auditActor(actor) : { type: 'cli', id: process.env.USER ?? 'cli' },
      action: 'pki.ca_revoked',
      target: { type: 'ca_certificate', id: row.fingerprint_sha256 },
      ...(actor ? { sourceIp: actor.sourceIp } : {}),
      details: { subject: row.subject, reason: row.reason, scope: row.organization_id === null ? 'deployment' : 'organization' },
    });
    return view(row);
  }
}
