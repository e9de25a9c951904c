/**
 * The repository's table (tuf_metadata): every version of every role's signed metadata per
 * organization, as served. Rows are only inserted; a lost race on a version is a ConcurrentChangeError.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.js';
import { isUniqueViolation } from '../../storage/unique-violation.js';
import type { TufMetadataTable } from '../../storage/repository-tables.js';
import { ConcurrentChangeError } from '../errors.js';

export type MetadataRow = TufMetadataTable;

export async function latest(db: Kysely<Database>, organizationId: string, role: string): Promise<MetadataRow | undefined> {
  return db
    .selectFrom('tuf_metadata')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('role', '=', role)
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export async function byVersion(
  db: Kysely<Database>,
  organizationId: string,
  role: string,
  version: number,
): Promise<MetadataRow | undefined> {
  return db
    .selectFrom('tuf_metadata')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('role', '=', role)
    .where('version', '=', version)
    .executeTakeFirst();
}

export async function insert(db: Kysely<Database>, row: MetadataRow): Promise<void> {
  try {
    await db.insertInto('tuf_metadata').values(row).execute();
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConcurrentChangeError(`The ${row.role} metadata`);
    throw error;
  }
}

/** The latest version of each role of the organization, with its expiry and when it was written. */
export async function latestOfEachRole(db: Kysely<Database>, organizationId: string): Promise<MetadataRow[]> {
  const versions = await db
    .selectFrom('tuf_metadata')
    .select(['role', (eb) => eb.fn.max('version').as('version')])
    .where('organization_id', '=', organizationId)
    .groupBy('role')
    .execute();
  const rows: MetadataRow[] = [];
  for (const { role, version } of versions) {
    const row = await byVersion(db, organizationId, role, Number(version));
    if (row) rows.push(row);
  }
  return rows.sort((a, b) => a.role.localeCompare(b.role));
}

/** Organizations whose repository has online metadata (the ones the refresh timer looks after). */
export async function organizationsWithTimestamp(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('tuf_metadata').select('organization_id').where('role', '=', 'timestamp').distinct().execute();
  return rows.map((r) => r.organization_id);
}
