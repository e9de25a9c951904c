/**
 * Anomaly detection (issue 15, docs/assessment.md, section "Anomaly detection"): each device's
 * behaviour per minute (`device_behaviour_minutes`: messages, bytes, connects, authentication
 * failures, ACL denials, payload errors, takeovers, reboots and update failures it reported,
 * distinct source addresses), the source
 * addresses each device was seen from per hour (`device_behaviour_addresses`, bounded per device
 * and hour by the broker), the connections that took over a live session of the same device
 * (`device_connection_conflicts`: the evidence of a shared certificate or conflicting client
 * IDs) and each product's anomaly rules (`anomaly_product_rules`). Rows are kept
 * `anomaly.retentionDays`.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('device_behaviour_minutes')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('minute', 'bigint', (c) => c.notNull())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('product_id', 'text', (c) => c.notNull())
    .addColumn('messages', 'integer', (c) => c.notNull())
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    .addColumn('connects', 'integer', (c) => c.notNull())
    .addColumn('auth_failures', 'integer', (c) => c.notNull())
    .addColumn('acl_denials', 'integer', (c) => c.notNull())
    .addColumn('payload_errors', 'integer', (c) => c.notNull())
    .addColumn('takeovers', 'integer', (c) => c.notNull())
    .addColumn('reboots', 'integer', (c) => c.notNull())
    .addColumn('update_failures', 'integer', (c) => c.notNull())
    .addColumn('addresses', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('device_behaviour_minutes_pk', ['device_id', 'minute'])
    .execute();
  await db.schema.createIndex('device_behaviour_minutes_minute').on('device_behaviour_minutes').columns(['minute']).execute();

  await db.schema
    .createTable('device_behaviour_addresses')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('hour', 'bigint', (c) => c.notNull())
    .addColumn('address', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('device_behaviour_addresses_pk', ['device_id', 'hour', 'address'])
    .execute();
  await db.schema.createIndex('device_behaviour_addresses_hour').on('device_behaviour_addresses').columns(['hour']).execute();

  await db.schema
    .createTable('device_connection_conflicts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('previous_address', 'text', (c) => c.notNull())
    .addColumn('credential', 'text', (c) => c.notNull())
    .addColumn('previous_credential', 'text', (c) => c.notNull())
    .addColumn('previous_age_ms', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('device_connection_conflicts_org')
    .on('device_connection_conflicts')
    .columns(['organization_id', 'at'])
    .execute();

  await db.schema
    .createTable('anomaly_product_rules')
    .addColumn('product_id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('rules', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('anomaly_product_rules').execute();
  await db.schema.dropTable('device_connection_conflicts').execute();
  await db.schema.dropTable('device_behaviour_addresses').execute();
  await db.schema.dropTable('device_behaviour_minutes').execute();
}
