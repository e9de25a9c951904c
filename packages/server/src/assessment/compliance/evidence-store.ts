/**
 * The counts the compliance report cites, read-only over other domains' tables (devices,
 * certificates, products, releases, consents, the audit log): the same named exception as
 * ../evidence-store.ts (docs/architecture.md). Every query is a count or a grouped count, so a
 * report costs the same whatever the fleet's size (indexes on organization_id).
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from '../../storage/schema.js';
import type { ComplianceEvidence } from './evidence.js';

type CountedTable =
  | 'devices'
  | 'issued_certificates'
  | 'device_symmetric_keys'
  | 'products'
  | 'product_privacy'
  | 'firmware_releases'
  | 'rollouts'
  | 'users'
  | 'disclosure_reports'
  | 'device_consents';

export class ComplianceEvidenceStore {
  constructor(private readonly db: Kysely<Database>) {}

  async organization(organizationId: string): Promise<ComplianceEvidence['organization'] | null> {
    const row = await this.db
      .selectFrom('organizations')
      .select(['id', 'slug', 'name', 'mfa_required_roles'])
      .where('id', '=', organizationId)
      .executeTakeFirst();
    if (!row) return null;
    return { id: row.id, slug: row.slug, name: row.name, mfaRequiredRoles: JSON.parse(row.mfa_required_roles) as string[] };
  }

  async counts(organizationId: string): Promise<ComplianceEvidence['counts']> {
    const n = async (table: CountedTable, condition: RawBuilder<unknown> = sql`1 = 1`): Promise<number> => {
      const { rows } = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}
        where organization_id = ${organizationId} and ${condition}`.execute(this.db);
      return Number(rows[0]?.n ?? 0);
    };
    const [devices, activeCertificates, symmetricKeys, products, productsWithSupportPeriod, productsWithPrivacyDeclaration] =
      await Promise.all([
        n('devices'),
        n('issued_certificates', sql`status = 'active'`),
        n('device_symmetric_keys', sql`valid_until is null`),
        n('products'),
        n('products', sql`support_until is not null`),
        n('product_privacy'),
      ]);
    const [releases, rollouts, operators, disclosures, consentDecisions] = await Promise.all([
      n('firmware_releases'),
      n('rollouts'),
      n('users', sql`kind = 'operator' and status = 'active'`),
      n('disclosure_reports'),
      n('device_consents'),
    ]);
    return {
      devices,
      activeCertificates,
      symmetricKeys,
      products,
      productsWithSupportPeriod,
      productsWithPrivacyDeclaration,
      releases,
      rollouts,
      operators,
      disclosures,
      consentDecisions,
    };
  }

  /** Entries of the organization, and deployment-wide ones (no organization), per action: how many and the newest. */
  async auditActions(organizationId: string, actions: readonly string[]): Promise<ComplianceEvidence['audit']> {
    const rows = await this.db
      .selectFrom('audit_log')
      .select((eb) => ['action', eb.fn.countAll<number>().as('n'), eb.fn.max('ts').as('last')])
      .where('action', 'in', [...actions])
      .where((eb) => eb.or([eb('organization_id', '=', organizationId), eb('organization_id', 'is', null)]))
      .groupBy('action')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.action, { count: Number(r.n), last: r.last === null ? null : Number(r.last) }]));
  }
}
