/** The privacy tables through Kysely: each product's declaration, and each device's consent decisions. */
import type { Kysely, Selectable } from 'kysely';
import type { Database, DeviceConsentsTable, ProductPrivacyTable } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export type DeclarationRow = Selectable<ProductPrivacyTable>;
export type ConsentRow = Selectable<DeviceConsentsTable>;

export class PrivacyStore {
  constructor(readonly db: Kysely<Database>) {}

  declaration(organizationId: string, productId: string, db: Executor = this.db): Promise<DeclarationRow | undefined> {
    return db
      .selectFrom('product_privacy')
      .selectAll()
      .where('product_id', '=', productId)
      .where('organization_id', '=', organizationId)
      .executeTakeFirst();
  }

  async saveDeclaration(row: DeclarationRow, db: Executor = this.db): Promise<void> {
    await db
      .insertInto('product_privacy')
      .values(row)
      .onConflict((c) => c.column('product_id').doUpdateSet({ declaration: row.declaration, updated_at: row.updated_at }))
      .execute();
  }

  consents(deviceId: string, db: Executor = this.db): Promise<ConsentRow[]> {
    return db.selectFrom('device_consents').selectAll().where('device_id', '=', deviceId).orderBy('purpose').execute();
  }

  async saveConsent(row: ConsentRow, db: Executor = this.db): Promise<void> {
    await db
      .insertInto('device_consents')
      .values(row)
      .onConflict((c) =>
        c.columns(['device_id', 'purpose']).doUpdateSet({ granted: row.granted, decided_by: row.decided_by, decided_at: row.decided_at }),
      )
      .execute();
  }

  /** The decisions a deleted account made (they no longer count once the owner changes; this removes them too). */
  async deleteConsentsBy(userId: string, db: Executor = this.db): Promise<void> {
    await db.deleteFrom('device_consents').where('decided_by', '=', userId).execute();
  }
}
