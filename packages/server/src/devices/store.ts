/**
 * The device registry's tables (products, devices, device_tags) through Kysely. Listing is keyset
 * pagination in serial order: each filter is one range of an index that ends with the serial, and
 * a tag filter walks device_tags (organization, tag, serial) and joins the device by its ID.
 */
import type { Kysely, Selectable, Updateable } from 'kysely';
import type { Database, DevicesTable, ProductsTable } from '../storage/schema.js';
import type { DeviceStatus } from './model.js';
import { SERIAL_END } from './model.js';
import type { Executor } from '../storage/executor.js';
import { PreparedQueries } from '../storage/prepared.js';

export type ProductRow = Selectable<ProductsTable>;
export type DeviceRow = Selectable<DevicesTable>;

export interface DeviceFilter {
  status?: DeviceStatus;
  productId?: string;
  group?: string;
  tag?: string;
  serialPrefix?: string;
  firmwareVersion?: string;
  /** Serials strictly after this one (the previous page's last). */
  afterSerial?: string;
  limit: number;
}

/** Rows per multi-row INSERT: 13 parameters a device, well under both engines' limits. */
const INSERT_BATCH = 500;
/** Serials per `in (…)` lookup. */
const LOOKUP_BATCH = 500;

export class DevicesStore {
  private readonly prepared = new PreparedQueries();

  constructor(readonly db: Kysely<Database>) {}

  async insertProduct(row: ProductRow, db: Executor = this.db): Promise<void> {
    await db.insertInto('products').values(row).execute();
  }

  productByName(organizationId: string, name: string, db: Executor = this.db): Promise<ProductRow | undefined> {
    return db.selectFrom('products').selectAll().where('organization_id', '=', organizationId).where('name', '=', name).executeTakeFirst();
  }

  listProducts(organizationId: string, db: Executor = this.db): Promise<ProductRow[]> {
    return db.selectFrom('products').selectAll().where('organization_id', '=', organizationId).orderBy('name').execute();
  }

  productInOrganization(organizationId: string, productId: string, db: Executor = this.db): Promise<ProductRow | undefined> {
    return db
      .selectFrom('products')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('id', '=', productId)
      .executeTakeFirst();
  }

  async updateProduct(productId: string, changes: Updateable<ProductsTable>, db: Executor = this.db): Promise<void> {
    await db.updateTable('products').set(changes).where('id', '=', productId).execute();
  }

  /** Every product of every organization (platform jobs such as telemetry retention). */
  allProducts(db: Executor = this.db): Promise<ProductRow[]> {
    return db.selectFrom('products').selectAll().orderBy('id').execute();
  }

  /** A page of a product's device IDs in serial order: one range of the (organization, product, serial) index. */
  deviceIdsOfProduct(
    organizationId: string,
    productId: string,
    afterSerial: string | null,
    limit: number,
    db: Executor = this.db,
  ): Promise<{ id: string; serial: string }[]> {
    return db
      .selectFrom('devices')
      .select(['id', 'serial'])
      .where('organization_id', '=', organizationId)
      .where('product_id', '=', productId)
      .$if(afterSerial !== null, (q) => q.where('serial', '>', afterSerial!))
      .orderBy('serial')
      .limit(limit)
      .execute();
  }

  /** Devices that became quarantined, disabled or retired (or changed while so) at or after `since`. */
  devicesOutOfServiceSince(since: number, db: Executor = this.db): Promise<{ id: string; status: DeviceStatus; updated_at: number }[]> {
    return db
      .selectFrom('devices')
      .select(['id', 'status', 'updated_at'])
      .where('updated_at', '>=', since)
      .where('status', 'in', ['quarantined', 'disabled', 'retired'])
      .execute();
  }

  /** The organization's devices counted by status, by product and by firmware version (the `firmwareLimit` most common). */
  async fleetCounts(organizationId: string, firmwareLimit: number) {
    const [byStatus, byProduct, byFirmware] = await Promise.all([
      this.db
        .selectFrom('devices')
        .select((eb) => ['status', eb.fn.countAll<number | string>().as('count')])
        .where('organization_id', '=', organizationId)
        .groupBy('status')
        .execute(),
      this.db
        .selectFrom('devices')
        .select((eb) => ['product_id', eb.fn.countAll<number | string>().as('count')])
        .where('organization_id', '=', organizationId)
        .groupBy('product_id')
        .execute(),
      this.db
        .selectFrom('devices')
        .select((eb) => ['firmware_version', eb.fn.countAll<number | string>().as('count')])
        .where('organization_id', '=', organizationId)
        .groupBy('firmware_version')
        .orderBy('count', 'desc')
        .orderBy('firmware_version')
        .limit(firmwareLimit)
        .execute(),
    ]);
    return {
      byStatus: byStatus.map((r) => ({ status: r.status, count: Number(r.count) })),
      byProduct: byProduct.map((r) => ({ productId: r.product_id, count: Number(r.count) })),
      byFirmware: byFirmware.map((r) => ({ version: r.firmware_version, count: Number(r.count) })),
    };
  }

  async statusOf(deviceId: string, db: Executor = this.db): Promise<DeviceStatus | undefined> {
    const row = await db.selectFrom('devices').select('status').where('id', '=', deviceId).executeTakeFirst();
    return row?.status;
  }

  /** A device's status, gateway flag and gateway (the broker's check of a gateway session). */
  async statusAndGateway(
    deviceId: string,
    db: Executor = this.db,
  ): Promise<{ status: DeviceStatus; gateway_enabled_at: number | null; gateway_id: string | null } | undefined> {
    // Run on every device connect: compiled once (storage/prepared.ts).
    const result = await this.prepared.execute(db, 'statusAndGateway', [deviceId], (id) =>
      db.selectFrom('devices').select(['status', 'gateway_enabled_at', 'gateway_id']).where('id', '=', id),
    );
    return result.rows[0];
  }

  /** A device of the organization; another organization's device is simply not found. */
  deviceInOrganization(organizationId: string, deviceId: string, db: Executor = this.db): Promise<DeviceRow | undefined> {
    return db.selectFrom('devices').selectAll().where('organization_id', '=', organizationId).where('id', '=', deviceId).executeTakeFirst();
  }

  /** Devices of the organization among `ids` (at most a few hundred: callers bound the list). */
  devicesInOrganization(organizationId: string, ids: string[], db: Executor = this.db): Promise<DeviceRow[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return db.selectFrom('devices').selectAll().where('organization_id', '=', organizationId).where('id', 'in', ids).execute();
  }

  deviceBySerial(organizationId: string, serial: string, db: Executor = this.db): Promise<DeviceRow | undefined> {
    return db
      .selectFrom('devices')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('serial', '=', serial)
      .executeTakeFirst();
  }

  /** The pending devices with this serial in any of these organizations (bootstrap enrollment: exactly one may match). */
  pendingBySerial(organizationIds: string[], serial: string): Promise<Pick<DeviceRow, 'id' | 'organization_id'>[]> {
    return this.db
      .selectFrom('devices')
      .select(['id', 'organization_id'])
      .where('organization_id', 'in', organizationIds)
      .where('serial', '=', serial)
      .where('status', '=', 'pending')
      .execute();
  }

  /** Which of these serials are already registered in the organization. */
  async existingSerials(organizationId: string, serials: string[], db: Executor = this.db): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < serials.length; i += LOOKUP_BATCH) {
      const rows = await db
        .selectFrom('devices')
        .select('serial')
        .where('organization_id', '=', organizationId)
        .where('serial', 'in', serials.slice(i, i + LOOKUP_BATCH))
        .execute();
      for (const row of rows) found.add(row.serial);
    }
    return found;
  }

  /** Inserts devices and their tag rows, in batches; the caller holds the transaction. */
  async insertDevices(rows: DeviceRow[], db: Executor = this.db): Promise<void> {
    for (let i = 0; i < rows.length; i += INSERT_BATCH) {
      const batch = rows.slice(i, i + INSERT_BATCH);
      await db.insertInto('devices').values(batch).execute();
      const tags = batch.flatMap((d) =>
        (JSON.parse(d.tags) as string[]).map((tag) => ({ organization_id: d.organization_id, tag, serial: d.serial, device_id: d.id })),
      );
      for (let j = 0; j < tags.length; j += INSERT_BATCH * 3)
        await db
          .insertInto('device_tags')
          .values(tags.slice(j, j + INSERT_BATCH * 3))
          .execute();
    }
  }

  async updateDevice(device: DeviceRow, changes: Updateable<DevicesTable>, db: Executor = this.db): Promise<void> {
    await db.updateTable('devices').set(changes).where('id', '=', device.id).execute();
    if (changes.tags !== undefined) {
      await db.deleteFrom('device_tags').where('device_id', '=', device.id).execute();
      const tags = (JSON.parse(changes.tags as string) as string[]).map((tag) => ({
        organization_id: device.organization_id,
        tag,
        serial: device.serial,
        device_id: device.id,
      }));
      if (tags.length > 0) await db.insertInto('device_tags').values(tags).execute();
    }
  }

  /**
   * The record of the certificate with this serial joined with its device (null device columns when
   * the device is gone): the one primary-key lookup of every device connection (identity.ts).
   */
  async certificateWithDevice(serial: string, db: Executor = this.db) {
    // Run on every device connect and every director request: compiled once (storage/prepared.ts).
    const result = await this.prepared.execute(db, 'certificateWithDevice', [serial], (s) =>
      db
        .selectFrom('issued_certificates as c')
        .leftJoin('devices as d', (join) => join.onRef('d.id', '=', 'c.device_id').onRef('d.organization_id', '=', 'c.organization_id'))
        .select([
          'c.organization_id',
          'c.device_id',
          'c.fingerprint_sha256',
          'c.status as certificate_status',
          'c.not_after',
          'd.serial',
          'd.product_id',
          'd.status as device_status',
        ])
        .where('c.serial', '=', s),
    );
    return result.rows[0];
  }

  /** Makes the device active if it is still pending (its first credential arrived), in the organization when given; whether it was. */
  async activatePending(deviceId: string, at: number, db: Executor = this.db, organizationId?: string): Promise<boolean> {
    let query = db.updateTable('devices').set({ status: 'active', updated_at: at }).where('id', '=', deviceId);
    if (organizationId !== undefined) query = query.where('organization_id', '=', organizationId);
    const result = await query.where('status', '=', 'pending').executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Moves the device from status `from` to `to` if it is still `from` (two concurrent changes cannot both apply); whether it moved. */
  async setStatusIf(deviceId: string, from: DeviceStatus, to: DeviceStatus, at: number, db: Executor = this.db): Promise<boolean> {
    const result = await db
      .updateTable('devices')
      .set({ status: to, updated_at: at })
      .where('id', '=', deviceId)
      .where('status', '=', from)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * One page in serial order. The serial range (prefix and cursor) applies to the sort key of the
   * index being walked: devices' own serial, or device_tags' when filtering by tag.
   */
  listDevices(organizationId: string, filter: DeviceFilter, db: Executor = this.db) {
    const low =
      filter.afterSerial !== undefined && (filter.serialPrefix === undefined || filter.afterSerial >= filter.serialPrefix)
        ? { op: '>' as const, value: filter.afterSerial }
        : filter.serialPrefix !== undefined
          ? { op: '>=' as const, value: filter.serialPrefix }
          : undefined;
    const high = filter.serialPrefix !== undefined ? filter.serialPrefix + SERIAL_END : undefined;
    return db
      .selectFrom('devices')
      .selectAll('devices')
      .where('devices.organization_id', '=', organizationId)
      .$if(filter.status !== undefined, (q) => q.where('devices.status', '=', filter.status!))
      .$if(filter.productId !== undefined, (q) => q.where('devices.product_id', '=', filter.productId!))
      .$if(filter.group !== undefined, (q) => q.where('devices.group_name', '=', filter.group!))
      .$if(filter.firmwareVersion !== undefined, (q) => q.where('devices.firmware_version', '=', filter.firmwareVersion!))
      .$if(filter.tag === undefined, (q) =>
        q
          .$if(low !== undefined, (r) => r.where('devices.serial', low!.op, low!.value))
          .$if(high !== undefined, (r) => r.where('devices.serial', '<', high!))
          .orderBy('devices.serial'),
      )
      .$if(filter.tag !== undefined, (q) =>
        q
          .innerJoin('device_tags', 'device_tags.device_id', 'devices.id')
          .where('device_tags.organization_id', '=', organizationId)
          .where('device_tags.tag', '=', filter.tag!)
          .$if(low !== undefined, (r) => r.where('device_tags.serial', low!.op, low!.value))
          .$if(high !== undefined, (r) => r.where('device_tags.serial', '<', high!))
          .orderBy('device_tags.serial'),
      )
      .limit(filter.limit);
  }
}
