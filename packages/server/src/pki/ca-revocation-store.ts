/** The `ca_revocations` table: CA certificates recorded as revoked, deployment-wide or per organization. */
import type { Kysely } from 'kysely';
import type { CaRevocationsTable, Database } from '../storage/schema.js';

export type CaRevocationRow = CaRevocationsTable;

export class CaRevocationStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Inserts the record unless the same CA is already recorded in that scope; whether it was inserted. */
  async insert(row: CaRevocationRow): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('ca_revocations')
        .select('id')
        .where('fingerprint_sha256', '=', row.fingerprint_sha256)
        .where((eb) => (row.organization_id === null ? eb('organization_id', 'is', null) : eb('organization_id', '=', row.organization_id)))
        .executeTakeFirst();
      if (existing) return false;
      await trx.insertInto('ca_revocations').values(row).execute();
      return true;
    });
  }
}
