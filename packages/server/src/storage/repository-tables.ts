/**
 * Kysely table interfaces of the TUF image repository (009_update_repository).
 */

/** One version of one role's signed metadata in an organization's repository (never updated). */
export interface TufMetadataTable {
  organization_id: string;
  /** `root`, `targets`, `snapshot`, `timestamp`, `product-<productId>`, or `director-root`. */
  role: string;
  version: number;
  /** The signed metadata as served (JSON text of Metadata.toJSON()). */
  json: string;
  expires_at: number;
  created_at: number;
}
