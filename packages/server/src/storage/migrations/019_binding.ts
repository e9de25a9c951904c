/**
 * Device binding (docs/binding.md): who a consumer device belongs to and who it is shared with
 * (`device_members`, one owner row at most per device: the one truth of "bound"), invitations to
 * share or take over a device (`binding_invitations`), each device's claim code, presence window
 * and user-data reset (`device_claims`), and the failed-claim counters that lock out guessing
 * (`claim_failures`, per account and per source address, shared by every node).
 * `devices.owner_user_id`, the placeholder of issue 5 that nothing ever wrote, is dropped.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('device_members')
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('label', 'text')
    .addColumn('invited_by', 'text')
    .addColumn('since', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('device_members_pk', ['device_id', 'user_id'])
    .execute();
  await db.schema.createIndex('device_members_user').on('device_members').columns(['user_id', 'device_id']).execute();
  await db.schema
    .createIndex('device_members_one_owner')
    .on('device_members')
    .column('device_id')
    .unique()
    .where(sql.ref('role'), '=', 'owner')
    .execute();

  await db.schema
    .createTable('binding_invitations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('invitee_email', 'text', (c) => c.notNull())
    .addColumn('invited_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('binding_invitations_device').on('binding_invitations').column('device_id').execute();
  await db.schema
    .createIndex('binding_invitations_invitee')
    .on('binding_invitations')
    .columns(['organization_id', 'invitee_email'])
    .execute();

  await db.schema
    .createTable('device_claims')
    .addColumn('device_id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('code_hash', 'text')
    .addColumn('code_created_at', 'bigint')
    .addColumn('code_used_at', 'bigint')
    .addColumn('presence_until', 'bigint')
    .addColumn('nonce_hash', 'text')
    .addColumn('nonce_user_id', 'text')
    .addColumn('nonce_until', 'bigint')
    .addColumn('reset_id', 'text')
    .addColumn('reset_requested_at', 'bigint')
    .addColumn('reset_confirmed_at', 'bigint')
    .execute();
  await db.schema.createIndex('device_claims_code').on('device_claims').columns(['organization_id', 'code_hash']).unique().execute();

  await db.schema
    .createTable('claim_failures')
    .addColumn('subject', 'text', (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('window_started_at', 'bigint', (c) => c.notNull())
    .addColumn('locked_until', 'bigint')
    .execute();

  await db.schema.alterTable('devices').dropColumn('owner_user_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('devices').addColumn('owner_user_id', 'text').execute();
  for (const table of ['claim_failures', 'device_claims', 'binding_invitations', 'device_members'])
    await db.schema.dropTable(table).execute();
}
