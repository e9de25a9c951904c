/**
 * What advisory matching reads from the updates and devices domains: each release's stored SBOM,
 * and the devices reporting a firmware version of a product. Read-only and bounded, the same known
 * exception as assessment/evidence-store.ts (docs/architecture.md); each query is a candidate for a
 * read method of its owning domain's service.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';

export interface ReleaseSbom {
  id: string;
  productId: string;
  version: string;
  sbom: string;
}

/** Devices that still run firmware: retired devices are out of the fleet. */
const IN_FLEET = ['pending', 'active', 'quarantined', 'disabled'] as const;

export class FleetStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Releases of the organization with their SBOM text, oldest first. */
  async releases(organizationId: string): Promise<ReleaseSbom[]> {
    const rows = await this.db
      .selectFrom('firmware_releases')
      .select(['id', 'product_id', 'version', 'sbom'])
      .where('organization_id', '=', organizationId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ id: r.id, productId: r.product_id, version: r.version, sbom: r.sbom }));
  }

  /** Devices in the fleet by product and reported firmware version. */
  async devicesByVersion(organizationId: string): Promise<{ productId: string; version: string; devices: number }[]> {
    const rows = await this.db
      .selectFrom('devices')
      .select(['product_id', 'firmware_version', (eb) => eb.fn.countAll<number>().as('n')])
      .where('organization_id', '=', organizationId)
      .where('status', 'in', IN_FLEET)
      .where('firmware_version', 'is not', null)
      .groupBy(['product_id', 'firmware_version'])
      .execute();
    return rows.map((r) => ({ productId: r.product_id, version: r.firmware_version!, devices: Number(r.n) }));
  }

  /** At most `limit` devices of a product running one of `versions`, by ID. */
  async devicesRunning(
    organizationId: string,
    productId: string,
    versions: string[],
    limit: number,
  ): Promise<{ id: string; version: string }[]> {
    if (versions.length === 0 || limit <= 0) return [];
    const rows = await this.db
      .selectFrom('devices')
      .select(['id', 'firmware_version'])
      .where('organization_id', '=', organizationId)
      .where('product_id', '=', productId)
      .where('status', 'in', IN_FLEET)
      .where('firmware_version', 'in', versions)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ id: r.id, version: r.firmware_version! }));
  }
}
