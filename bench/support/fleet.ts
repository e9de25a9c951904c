/**
 * A large fleet for the benches that read it (device lists, the console's fleet page): four
 * products and `count` devices bulk-inserted straight through the store in batches of 10,000, with
 * statuses, firmware versions, tags, groups and last-seen times spread as a real fleet's would be,
 * then ANALYZE so the planner sees the table as it is.
 */
import { sql } from 'kysely';
import type { Actor } from '../../packages/server/src/accounts/roles.js';
import { selfRegisteredDevice } from '../../packages/server/src/devices/model.js';
import type { DeviceRow } from '../../packages/server/src/devices/store.js';
import type { Platform } from '../../packages/server/src/platform.js';

const STATUSES = ['active', 'active', 'active', 'active', 'active', 'active', 'active', 'pending', 'quarantined', 'disabled'] as const;

/** A device row as the store inserts it: active, with no firmware, tags, group or gateway, unless `fields` say otherwise. */
export function deviceRow(
  organizationId: string,
  productId: string,
  serial: string,
  now: number,
  fields: Partial<DeviceRow> = {},
): DeviceRow {
  const row = selfRegisteredDevice(
    { id: crypto.randomUUID(), organization_id: organizationId, serial, product_id: productId, status: 'active' },
    now,
  );
  return { ...row, ...fields };
}

/** Loads the fleet; returns its products, in the order the devices cycle through them. */
export async function loadFleet(platform: Platform, admin: Actor, count: number): Promise<{ id: string; name: string }[]> {
  const products = [];
  for (const name of ['Sensor', 'Gateway', 'Lock', 'Meter']) products.push(await platform.devices.service.createProduct(admin, { name }));
  const now = Date.now();
  for (let start = 0; start < count; start += 10_000) {
    const rows: DeviceRow[] = [];
    for (let i = start; i < Math.min(start + 10_000, count); i++) {
      // Serials in an order unrelated to insertion order, as a factory's batches would be.
      const n = (i * 7919) % count;
      rows.push(
        deviceRow(admin.organizationId, products[i % products.length]!.id, `SN-${String(n).padStart(7, '0')}`, now, {
          status: STATUSES[i % STATUSES.length]!,
          firmware_version: `2.0.${i % 10}`,
          last_seen_at: now - (i % 86_400) * 1000,
          attributes: JSON.stringify({ site: `site-${i % 50}` }),
          tags: JSON.stringify(i % 200 === 0 ? ['fleet-a', 'rare'] : i % 2 === 0 ? ['fleet-a'] : []),
          group_name: `group-${String(i % 100).padStart(3, '0')}`,
        }),
      );
    }
    await platform.db.transaction().execute((trx) => platform.devices.store.insertDevices(rows, trx));
  }
  await sql`analyze`.execute(platform.db);
  return products;
}
