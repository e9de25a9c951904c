/**
 * What devices report of their firmware, through Kysely: the latest signed version report of each
 * device (device_version_reports, stored only when its counter is above the last one's), the
 * firmware version the registry shows, and the certificate a report's signature is checked with.
 * Every method takes the executor so a caller's transaction is used throughout.
 */
import type { DeviceVersionReportsTable } from '../storage/rollout-tables.js';
import type { Executor } from '../storage/executor.js';

export class DeviceReportStore {
  constructor(readonly db: Executor) {}

  /** The device of the organization with the firmware version it last reported, if it exists. */
  device(organizationId: string, deviceId: string, db: Executor = this.db) {
    return db
      .selectFrom('devices')
      .select(['id', 'firmware_version'])
      .where('id', '=', deviceId)
      .where('organization_id', '=', organizationId)
      .executeTakeFirst();
  }

  /** The devices domain has no service method for a device-reported version yet: written here. */
  async setFirmwareVersion(organizationId: string, deviceId: string, version: string, now: number, db: Executor = this.db): Promise<void> {
    await db
      .updateTable('devices')
      .set({ firmware_version: version, updated_at: now })
      .where('id', '=', deviceId)
      .where('organization_id', '=', organizationId)
      .execute();
  }

  versionReport(deviceId: string, db: Executor = this.db): Promise<DeviceVersionReportsTable | undefined> {
    return db.selectFrom('device_version_reports').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
  }

  /**
   * Stores the report if its counter is above the stored one's (or none is stored), conditional on
   * the stored counter so two copies of one report racing each other store it once; whether it did.
   */
  async storeReport(row: DeviceVersionReportsTable, db: Executor = this.db): Promise<boolean> {
    const { device_id: deviceId, ...fields } = row;
    const updated = await db
      .updateTable('device_version_reports')
      .set(fields)
      .where('device_id', '=', deviceId)
      .where('counter', '<', row.counter)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 1) return true;
    const inserted = await db
      .insertInto('device_version_reports')
      .values(row)
      .onConflict((oc) => oc.column('device_id').doNothing())
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /** The PEM of the device's active certificate with this serial, or (serial null) of its newest active one. */
  async activeCertificatePem(
    organizationId: string,
    deviceId: string,
    serial: string | null,
    db: Executor = this.db,
  ): Promise<string | null> {
    const row = await db
      .selectFrom('issued_certificates')
      .select('pem')
      .where('device_id', '=', deviceId)
      .where('organization_id', '=', organizationId)
      .where('status', '=', 'active')
      .$if(serial !== null, (q) => q.where('serial', '=', serial!))
      .orderBy('created_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row?.pem ?? null;
  }
}
