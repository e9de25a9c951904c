/**
 * What devices report of their firmware, through Kysely: the latest signed version report of each
 * device (device_version_reports, stored only when its counter is above the last one's), the
 * firmware version the registry shows, and the certificate a report's signature is checked with.
 * Every method takes the executor so a caller's transaction is used throughout.
 */
import type { DeviceVersionReportsTable } from '../storage/rollout-tables.js';
import type { Executor } from '../storage/executor.js';
import { PreparedQueries } from '../storage/prepared.js';

export class DeviceReportStore {
  /** Every version report runs the statements below: built and compiled once (storage/prepared.ts). */
  private readonly prepared = new PreparedQueries();

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
    await this.prepared.execute(db, 'setFirmwareVersion', [version, now, deviceId, organizationId], (v, at, device, org) =>
      db.updateTable('devices').set({ firmware_version: v, updated_at: at }).where('id', '=', device).where('organization_id', '=', org),
    );
  }

  versionReport(deviceId: string, db: Executor = this.db): Promise<DeviceVersionReportsTable | undefined> {
    return db.selectFrom('device_version_reports').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
  }

  /**
   * Stores the report if its counter is above the stored one's (or none is stored), conditional on
   * the stored counter so two copies of one report racing each other store it once; whether it did.
   */
  async storeReport(row: DeviceVersionReportsTable, db: Executor = this.db): Promise<boolean> {
    const args = [row.organization_id, row.counter, row.report, row.signature, row.received_at, row.device_id] as const;
    const updated = await this.prepared.execute(db, 'updateReport', args, (org, counter, report, signature, at, device) =>
      db
        .updateTable('device_version_reports')
        .set({ organization_id: org, counter, report, signature, received_at: at })
        .where('device_id', '=', device)
        .where('counter', '<', counter),
    );
    if (Number(updated.numAffectedRows) === 1) return true;
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
    const active = (device: string, org: string) =>
      db
        .selectFrom('issued_certificates')
        .select('pem')
        .where('device_id', '=', device)
        .where('organization_id', '=', org)
        .where('status', '=', 'active')
        .orderBy('created_at', 'desc')
        .limit(1);
    const result =
      serial === null
        ? await this.prepared.execute(db, 'newestActivePem', [deviceId, organizationId], active)
        : await this.prepared.execute(db, 'activePem', [deviceId, organizationId, serial], (device, org, s) =>
            active(device, org).where('serial', '=', s),
          );
    return result.rows[0]?.pem ?? null;
  }
}
