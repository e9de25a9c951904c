/**
 * App authorization (issue 14): the OAuth clients each organization registers for its companion
 * apps, consumers' consents, authorization codes, refresh-token families and their rotating
 * tokens (every secret stored as its SHA-256 digest), and the Ed25519 keys access tokens are
 * signed with (private halves sealed under the master key).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('app_clients')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('redirect_uris', 'text', (c) => c.notNull()) // JSON string[]
    .addColumn('scopes', 'text', (c) => c.notNull()) // JSON AppScope[]
    .addColumn('first_party', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('app_clients_organization').on('app_clients').columns(['organization_id', 'created_at']).execute();

  await db.schema
    .createTable('app_consents')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull().references('app_clients.id'))
    .addColumn('scopes', 'text', (c) => c.notNull()) // JSON AppScope[]
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('app_consents_user_client', ['user_id', 'client_id'])
    .execute();

  await db.schema
    .createTable('app_authorization_codes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('code_hash', 'text', (c) => c.notNull().unique())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('session_id', 'text')
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('code_challenge', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .addColumn('family_id', 'text')
    .addColumn('auth_time', 'bigint')
    .execute();
  await db.schema.createIndex('app_authorization_codes_expiry').on('app_authorization_codes').columns(['expires_at']).execute();

  await db.schema
    .createTable('app_token_families')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('code_id', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .addColumn('revoked_reason', 'text')
    .addColumn('auth_time', 'bigint')
    .execute();
  await db.schema.createIndex('app_token_families_user').on('app_token_families').columns(['user_id', 'revoked_at']).execute();
  await db.schema.createIndex('app_token_families_client').on('app_token_families').columns(['client_id', 'revoked_at']).execute();
  await db.schema.createIndex('app_token_families_code').on('app_token_families').columns(['code_id']).execute();

  await db.schema
    .createTable('app_refresh_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('family_id', 'text', (c) => c.notNull().references('app_token_families.id'))
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .execute();
  await db.schema.createIndex('app_refresh_tokens_family').on('app_refresh_tokens').columns(['family_id']).execute();

  await db.schema
    .createTable('app_signing_keys')
    .addColumn('id', 'text', (c) => c.primaryKey()) // the JWK kid
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
    .addColumn('algorithm', 'text', (c) => c.notNull())
    .addColumn('public_jwk', 'text', (c) => c.notNull()) // JSON JWK (OKP, Ed25519)
    .addColumn('private_key', 'text', (c) => c.notNull()) // PKCS#8 PEM sealed under the master key
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('rotated_at', 'bigint')
    .addColumn('retired_at', 'bigint')
    .execute();
  await db.schema.createIndex('app_signing_keys_organization').on('app_signing_keys').columns(['organization_id', 'created_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('app_signing_keys').execute();
  await db.schema.dropTable('app_refresh_tokens').execute();
  await db.schema.dropTable('app_token_families').execute();
  await db.schema.dropTable('app_authorization_codes').execute();
  await db.schema.dropTable('app_consents').execute();
  await db.schema.dropTable('app_clients').execute();
}
