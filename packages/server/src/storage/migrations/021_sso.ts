/**
 * Operators' single sign-on (issue 18): each organization's OpenID Connect provider and its policy
 * (`sso_configs`: issuer, client, the client secret sealed under the master key, claim → role
 * mapping, which `acr` values count as MFA, SSO only with one break-glass owner, the bounds on an
 * SSO session's life and on an SSO operator's API keys), the provider identities operators signed in with (`sso_identities`: issuer +
 * subject, never the email alone), and the short-lived sign-ins in flight (`sso_logins`: state,
 * nonce and PKCE verifier, bound to the browser that started them, used once).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('sso_configs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().unique())
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('client_secret', 'text', (c) => c.notNull())
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('role_claim', 'text', (c) => c.notNull())
    .addColumn('role_mapping', 'text', (c) => c.notNull())
    .addColumn('default_role', 'text')
    .addColumn('mfa_acr_values', 'text', (c) => c.notNull())
    .addColumn('sso_only', 'integer', (c) => c.notNull())
    .addColumn('break_glass_user_id', 'text')
    .addColumn('max_session_minutes', 'integer', (c) => c.notNull())
    .addColumn('api_key_reauth_days', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('sso_identities')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('email', 'text')
    .addColumn('last_sign_in_at', 'bigint')
    .addColumn('last_mfa_asserted', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('sso_identities_subject')
    .on('sso_identities')
    .columns(['organization_id', 'issuer', 'subject'])
    .unique()
    .execute();
  await db.schema.createIndex('sso_identities_user').on('sso_identities').column('user_id').execute();

  await db.schema
    .createTable('sso_logins')
    .addColumn('state_hash', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('browser_hash', 'text', (c) => c.notNull())
    .addColumn('nonce', 'text', (c) => c.notNull())
    .addColumn('code_verifier', 'text', (c) => c.notNull())
    .addColumn('transport', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .execute();
  await db.schema.createIndex('sso_logins_expiry').on('sso_logins').column('expires_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('sso_logins').execute();
  await db.schema.dropTable('sso_identities').execute();
  await db.schema.dropTable('sso_configs').execute();
}
