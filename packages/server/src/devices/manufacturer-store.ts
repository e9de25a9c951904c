/**
 * The tables of just-in-time provisioning (migration 025): manufacturer CAs, the certificates
 * devices registered with, the allow-lists per product or enrollment group, their imported serial
 * lists and the daily registration counts. Every lookup on a device's path is one indexed read.
 */
import { sql, type Selectable } from 'kysely';
import type { EnrollmentPoliciesTable, EnrollmentScope, ManufacturerCasTable, ManufacturerRegistrationsTable } from '../storage/schema.js';
import type { DeviceRow } from './store.js';
import type { Executor } from '../storage/executor.js';

export type ManufacturerCaRow = Selectable<ManufacturerCasTable>;
export type EnrollmentPolicyRow = Selectable<EnrollmentPoliciesTable>;

/** A registered certificate with its device as it stands now. */
export interface RegisteredDevice {
  deviceId: string;
  organizationId: string;
  manufacturerCaId: string;
  serial: string;
  productId: string;
  status: DeviceRow['status'];
}

const SERIAL_IMPORT_BATCH = 500;

export class ManufacturerStore {
  constructor(readonly db: Executor) {}

  casByIssuer(subjectSha256: string): Promise<ManufacturerCaRow[]> {
    return this.db.selectFrom('manufacturer_cas').selectAll().where('subject_sha256', '=', subjectSha256).execute();
  }

  listCas(organizationId: string): Promise<ManufacturerCaRow[]> {
    return this.db.selectFrom('manufacturer_cas').selectAll().where('organization_id', '=', organizationId).orderBy('created_at').execute();
  }

  /** Live (not revoked) registrations of a CA certificate, in any organization. */
  liveByFingerprint(fingerprintSha256: string, db: Executor = this.db): Promise<ManufacturerCaRow[]> {
    return db
      .selectFrom('manufacturer_cas')
      .selectAll()
      .where('fingerprint_sha256', '=', fingerprintSha256)
      .where('revoked_at', 'is', null)
      .execute();
  }

  async countLive(organizationId: string, db: Executor = this.db): Promise<number> {
    const row = await db
      .selectFrom('manufacturer_cas')
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .where('organization_id', '=', organizationId)
      .where('revoked_at', 'is', null)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async insertCa(row: ManufacturerCaRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('manufacturer_cas').values(row).execute();
  }

  caInOrganization(organizationId: string, id: string, db: Executor = this.db): Promise<ManufacturerCaRow | undefined> {
    return db
      .selectFrom('manufacturer_cas')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .executeTakeFirst();
  }

  async revokeCa(id: string, now: number, db: Executor = this.db): Promise<boolean> {
    const result = await db
      .updateTable('manufacturer_cas')
      .set({ revoked_at: now })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Quarantines the active devices registered through a CA; returns their IDs. */
  async quarantineRegistered(caId: string, now: number, db: Executor): Promise<string[]> {
    const registered = db.selectFrom('manufacturer_registrations').select('device_id').where('manufacturer_ca_id', '=', caId);
    const ids = (await db.selectFrom('devices').select('id').where('id', 'in', registered).where('status', '=', 'active').execute()).map(
      (r) => r.id,
    );
    if (ids.length > 0)
      await db
        .updateTable('devices')
        .set({ status: 'quarantined', updated_at: now })
        .where('id', 'in', registered)
        .where('status', '=', 'active')
        .execute();
    return ids;
  }

  async countRegistered(caId: string): Promise<number> {
    const row = await this.db
      .selectFrom('manufacturer_registrations')
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .where('manufacturer_ca_id', '=', caId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async registration(fingerprintSha256: string): Promise<RegisteredDevice | undefined> {
    const row = await this.db
      .selectFrom('manufacturer_registrations as r')
      .innerJoin('devices as d', 'd.id', 'r.device_id')
      .select(['r.device_id', 'r.organization_id', 'r.manufacturer_ca_id', 'd.serial', 'd.product_id', 'd.status'])
      .where('r.fingerprint_sha256', '=', fingerprintSha256)
      .executeTakeFirst();
    return row
      ? {
          deviceId: row.device_id,
          organizationId: row.organization_id,
          manufacturerCaId: row.manufacturer_ca_id,
          serial: row.serial,
          productId: row.product_id,
          status: row.status,
        }
      : undefined;
  }

  async deviceExists(deviceId: string, organizationId: string, serial: string, db: Executor): Promise<boolean> {
    const row = await db
      .selectFrom('devices')
      .select('id')
      .where((eb) => eb.or([eb('id', '=', deviceId), eb.and([eb('organization_id', '=', organizationId), eb('serial', '=', serial)])]))
      .executeTakeFirst();
    return row !== undefined;
  }

  async insertRegistration(row: Selectable<ManufacturerRegistrationsTable>, db: Executor): Promise<void> {
    await db.insertInto('manufacturer_registrations').values(row).execute();
  }

  policy(scope: EnrollmentScope, scopeId: string, db: Executor = this.db): Promise<EnrollmentPolicyRow | undefined> {
    return db.selectFrom('enrollment_policies').selectAll().where('scope', '=', scope).where('scope_id', '=', scopeId).executeTakeFirst();
  }

  async savePolicy(row: EnrollmentPolicyRow, db: Executor = this.db): Promise<void> {
    await db
      .insertInto('enrollment_policies')
      .values(row)
      .onConflict((oc) =>
        oc.columns(['scope', 'scope_id']).doUpdateSet({
          serial_patterns: row.serial_patterns,
          source_cidrs: row.source_cidrs,
          daily_quota: row.daily_quota,
          serial_list: row.serial_list,
          updated_at: row.updated_at,
        }),
      )
      .execute();
  }

  async serialAllowed(scope: EnrollmentScope, scopeId: string, serial: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('enrollment_allowed_serials')
      .select('serial')
      .where('scope', '=', scope)
      .where('scope_id', '=', scopeId)
      .where('serial', '=', serial)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** Adds serials to a scope's list (those already there are kept once); returns how many the list holds. */
  async importSerials(scope: EnrollmentScope, scopeId: string, serials: string[], replace: boolean, db: Executor): Promise<number> {
    if (replace) await db.deleteFrom('enrollment_allowed_serials').where('scope', '=', scope).where('scope_id', '=', scopeId).execute();
    for (let i = 0; i < serials.length; i += SERIAL_IMPORT_BATCH)
      await db
        .insertInto('enrollment_allowed_serials')
        .values(serials.slice(i, i + SERIAL_IMPORT_BATCH).map((serial) => ({ scope, scope_id: scopeId, serial })))
        .onConflict((oc) => oc.doNothing())
        .execute();
    return this.countSerials(scope, scopeId, db);
  }

  async countSerials(scope: EnrollmentScope, scopeId: string, db: Executor = this.db): Promise<number> {
    const row = await db
      .selectFrom('enrollment_allowed_serials')
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .where('scope', '=', scope)
      .where('scope_id', '=', scopeId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Counts one registration against the scope's quota for the day, atomically on both engines: the
   * row is created at 0 if absent, then raised only while below the quota. False when the quota is reached.
   */
  async countRegistration(scope: EnrollmentScope, scopeId: string, day: number, quota: number, db: Executor): Promise<boolean> {
    await db
      .insertInto('enrollment_daily_counts')
      .values({ scope, scope_id: scopeId, day, registrations: 0 })
      .onConflict((oc) => oc.doNothing())
      .execute();
    const result = await db
      .updateTable('enrollment_daily_counts')
      .set({ registrations: sql`registrations + 1` })
      .where('scope', '=', scope)
      .where('scope_id', '=', scopeId)
      .where('day', '=', day)
      .where('registrations', '<', quota)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  groupInOrganization(organizationId: string, groupId: string): Promise<{ id: string } | undefined> {
    return this.db
      .selectFrom('enrollment_groups')
      .select('id')
      .where('organization_id', '=', organizationId)
      .where('id', '=', groupId)
      .executeTakeFirst();
  }

  async registrationsOn(scope: EnrollmentScope, scopeId: string, day: number): Promise<number> {
    const row = await this.db
      .selectFrom('enrollment_daily_counts')
      .select('registrations')
      .where('scope', '=', scope)
      .where('scope_id', '=', scopeId)
      .where('day', '=', day)
      .executeTakeFirst();
    return row ? Number(row.registrations) : 0;
  }
}
