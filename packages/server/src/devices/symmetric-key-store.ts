/**
 * The symmetric-key tables: `device_symmetric_keys` (sealed keys, one row per version, with how
 * long each stays valid) and `enrollment_groups` (a product's group key, sealed). The service
 * (devices/symmetric-keys.ts) holds the rules, the sealing and the transaction; each method takes
 * the transaction's executor when it runs inside one.
 */
import type { Kysely } from 'kysely';
import type { Database, DeviceSymmetricKeysTable, EnrollmentGroupsTable } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export class SymmetricKeyStore {
  constructor(readonly db: Kysely<Database>) {}

  /** The device's keys still valid at `now`, newest first, each with the device's identity (the broker's hot path: one indexed read). */
  validKeysWithDevice(deviceId: string, now: number) {
    return this.db
      .selectFrom('device_symmetric_keys as k')
      .innerJoin('devices as d', 'd.id', 'k.device_id')
      .select(['k.version', 'k.sealed_key', 'd.organization_id', 'd.serial', 'd.product_id', 'd.status'])
      .where('k.device_id', '=', deviceId)
      .where((eb) => eb.or([eb('k.valid_until', 'is', null), eb('k.valid_until', '>', now)]))
      .orderBy('k.version', 'desc')
      .execute();
  }

  /** The device's current key (no end of validity), if any. */
  currentKey(deviceId: string, db: Executor = this.db) {
    return db
      .selectFrom('device_symmetric_keys')
      .select(['version', 'sealed_key', 'enrollment_group_id'])
      .where('device_id', '=', deviceId)
      .where('valid_until', 'is', null)
      .executeTakeFirst();
  }

  /** Every version the device holds, with its end of validity. */
  keyVersions(deviceId: string, db: Executor = this.db) {
    return db.selectFrom('device_symmetric_keys').select(['version', 'valid_until']).where('device_id', '=', deviceId).execute();
  }

  async deleteKeys(deviceId: string, db: Executor): Promise<void> {
    await db.deleteFrom('device_symmetric_keys').where('device_id', '=', deviceId).execute();
  }

  /** Deletes the device's keys whose validity ended by `now`. */
  async deleteExpiredKeys(deviceId: string, now: number, db: Executor): Promise<void> {
    await db.deleteFrom('device_symmetric_keys').where('device_id', '=', deviceId).where('valid_until', '<=', now).execute();
  }

  /** Ends the validity of the device's keys at `until`, unless one already ends earlier. */
  async endValidity(deviceId: string, until: number, db: Executor): Promise<void> {
    await db
      .updateTable('device_symmetric_keys')
      .set({ valid_until: until })
      .where('device_id', '=', deviceId)
      .where((eb) => eb.or([eb('valid_until', 'is', null), eb('valid_until', '>', until)]))
      .execute();
  }

  async insertKey(row: DeviceSymmetricKeysTable, db: Executor): Promise<void> {
    await db.insertInto('device_symmetric_keys').values(row).execute();
  }

  group(groupId: string, db: Executor = this.db): Promise<EnrollmentGroupsTable | undefined> {
    return db.selectFrom('enrollment_groups').selectAll().where('id', '=', groupId).executeTakeFirst();
  }

  groupInOrganization(organizationId: string, groupId: string, db: Executor = this.db): Promise<EnrollmentGroupsTable | undefined> {
    return db
      .selectFrom('enrollment_groups')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('id', '=', groupId)
      .executeTakeFirst();
  }

  async groupNameTaken(organizationId: string, name: string, db: Executor = this.db): Promise<boolean> {
    return !!(await db
      .selectFrom('enrollment_groups')
      .select('id')
      .where('organization_id', '=', organizationId)
      .where('name', '=', name)
      .executeTakeFirst());
  }

  async insertGroup(row: EnrollmentGroupsTable, db: Executor): Promise<void> {
    await db.insertInto('enrollment_groups').values(row).execute();
  }

  /** The organization's groups by name. */
  groups(organizationId: string): Promise<EnrollmentGroupsTable[]> {
    return this.db.selectFrom('enrollment_groups').selectAll().where('organization_id', '=', organizationId).orderBy('name').execute();
  }

  /** Marks the group disabled at `at`; false when it already was. */
  async disableGroup(groupId: string, at: number, db: Executor): Promise<boolean> {
    const result = await db
      .updateTable('enrollment_groups')
      .set({ disabled_at: at })
      .where('id', '=', groupId)
      .where('disabled_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
}
