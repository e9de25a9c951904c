/**
 * Gateways (issue 14): a device an operator made a gateway (`gateway_enabled_at`), and the child
 * devices it relays (`gateway_id`: the gateway a child is attached to). `gateway_changed_at` is
 * when a child was last attached, moved or detached: the brokers of every node poll it from a
 * watermark to cut a child from the gateway it left.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('devices').addColumn('gateway_enabled_at', 'bigint').execute();
  await db.schema.alterTable('devices').addColumn('gateway_id', 'text').execute();
  await db.schema.alterTable('devices').addColumn('gateway_changed_at', 'bigint').execute();
  await db.schema.createIndex('devices_gateway').on('devices').columns(['gateway_id', 'serial']).execute();
  await db.schema.createIndex('devices_gateway_changed').on('devices').column('gateway_changed_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('devices_gateway_changed').execute();
  await db.schema.dropIndex('devices_gateway').execute();
  await db.schema.alterTable('devices').dropColumn('gateway_changed_at').execute();
  await db.schema.alterTable('devices').dropColumn('gateway_id').execute();
  await db.schema.alterTable('devices').dropColumn('gateway_enabled_at').execute();
}
