/**
 * Applies the migrations (one set for both engines) in order. Run by `bulwark migrate` and at start.
 * The migration list is static so the build carries it; no directory scanning at run time.
 */
import { DEFAULT_MIGRATION_TABLE, Migrator, sql, type Migration, type MigrationResultSet } from 'kysely';
import * as foundation from './migrations/001_foundation.js';
import * as devices from './migrations/002_devices.js';
import * as pki from './migrations/003_pki.js';
import * as telemetry from './migrations/006_telemetry.js';
import * as telemetryRetention from './migrations/007_telemetry_retention.js';
import * as shadowCommands from './migrations/008_shadow_commands.js';
import * as symmetricKeys from './migrations/005_symmetric_keys.js';
import * as bootstrapCas from './migrations/004_bootstrap_cas.js';
import * as updateRepository from './migrations/009_update_repository.js';
import * as releases from './migrations/010_releases.js';
import * as rollouts from './migrations/011_rollouts.js';
import * as rolloutOfferTimeout from './migrations/012_rollout_offer_timeout.js';
import * as telemetryQuota from './migrations/013_telemetry_quota.js';
import * as firmwareBlobs from './migrations/014_firmware_blobs.js';
import * as rolloutRetries from './migrations/015_rollout_retries.js';
import * as releaseProvenance from './migrations/016_release_provenance.js';
import * as appAuth from './migrations/017_app_auth.js';
import * as gateways from './migrations/018_gateways.js';
import * as binding from './migrations/019_binding.js';
import * as privacy from './migrations/020_privacy.js';
import * as sso from './migrations/021_sso.js';
import * as assessment from './migrations/022_assessment.js';
import * as auditPersonal from './migrations/023_audit_personal.js';
import * as disclosures from './migrations/024_disclosures.js';
import * as manufacturerCas from './migrations/025_manufacturer_cas.js';
import * as advisories from './migrations/026_advisories.js';
import * as anomaly from './migrations/027_anomaly.js';
import * as activeCertificates from './migrations/028_active_certificates.js';
import * as jobLeases from './migrations/029_job_leases.js';
import * as passkeys from './migrations/030_passkeys.js';
import * as productCommands from './migrations/033_product_commands.js';
import * as telemetryLog from './migrations/034_telemetry_log.js';
import { ErrorCodes } from '@bulwark/protocol';
import { BulwarkError } from '../errors.js';
import type { DatabaseHandle } from './database.js';

const migrations: Record<string, Migration> = {
  '001_foundation': foundation,
  '002_devices': devices,
  '003_pki': pki,
  '006_telemetry': telemetry,
  '007_telemetry_retention': telemetryRetention,
  '008_shadow_commands': shadowCommands,
  '005_symmetric_keys': symmetricKeys,
  '004_bootstrap_cas': bootstrapCas,
  '009_update_repository': updateRepository,
  '010_releases': releases,
  '011_rollouts': rollouts,
  '012_rollout_offer_timeout': rolloutOfferTimeout,
  '013_telemetry_quota': telemetryQuota,
  '014_firmware_blobs': firmwareBlobs,
  '015_rollout_retries': rolloutRetries,
  '016_release_provenance': releaseProvenance,
  '017_app_auth': appAuth,
  '018_gateways': gateways,
  '019_binding': binding,
  '020_privacy': privacy,
  '021_sso': sso,
  '022_assessment': assessment,
  '023_audit_personal': auditPersonal,
  '024_disclosures': disclosures,
  '025_manufacturer_cas': manufacturerCas,
  '026_advisories': advisories,
  '027_anomaly': anomaly,
  '028_active_certificates': activeCertificates,
  '029_job_leases': jobLeases,
  '030_passkeys': passkeys,
  '033_product_commands': productCommands,
  '034_telemetry_log': telemetryLog,
};

export interface MigrationReport {
  applied: string[];
  pending: string[];
}

/**
 * Kysely looks for its bookkeeping tables in every schema unless told which one is ours: the
 * handle's schema, or on PostgreSQL the first schema of the search path (the default `public`, or
 * one set in the URL with `?options=-c search_path=…`), so another schema's tables in the same
 * database are never mistaken for this deployment's.
 */
async function migrationSchema(handle: DatabaseHandle): Promise<string | undefined> {
  if (handle.schema || handle.engine !== 'postgres') return handle.schema;
  const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(handle.db);
  return rows[0]?.schema ?? undefined;
}

function migrator(handle: DatabaseHandle, schema: string | undefined): Migrator {
  return new Migrator({
    db: handle.db,
    provider: { getMigrations: async () => migrations },
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
}

/**
 * Whether the bookkeeping table records exactly this build's migrations: one read. Every start, CLI
 * command and platform opened checks; Kysely's own check reads every table's columns (a
 * pragma_table_info per table on SQLite) and commits a transaction under its lock, each time, to find
 * nothing to do. Anything else (no table yet, a migration pending, one this build does not know) is
 * left to Kysely, under its lock, as before.
 */
async function allApplied(handle: DatabaseHandle, schema: string | undefined): Promise<boolean> {
  try {
    const table = sql.table(schema ? `${schema}.${DEFAULT_MIGRATION_TABLE}` : DEFAULT_MIGRATION_TABLE);
    const { rows } = await sql<{ name: string }>`select name from ${table}`.execute(handle.db);
    const applied = new Set(rows.map((row) => row.name));
    return applied.size === Object.keys(migrations).length && Object.keys(migrations).every((name) => applied.has(name));
  } catch {
    return false;
  }
}

export async function migrateToLatest(handle: DatabaseHandle): Promise<MigrationReport> {
  const schema = await migrationSchema(handle);
  if (await allApplied(handle, schema)) return { applied: [], pending: [] };
  const result: MigrationResultSet = await migrator(handle, schema).migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`Migration ${failed} failed: ${(result.error as Error).message}`, { cause: result.error });
  }
  return { applied: (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName), pending: [] };
}

/**
 * Applies the migrations up to and including `name` (a restore into PostgreSQL builds the schema the
 * copied database had). Refuses a name this build does not know (an archive from a newer build).
 */
export async function migrateTo(handle: DatabaseHandle, name: string): Promise<MigrationReport> {
  if (!(name in migrations)) {
    throw new BulwarkError(
      ErrorCodes.backupEngineMismatch,
      `The database is at migration ${name}, which this build does not know: restore it with the build that wrote it, or a newer one`,
      400,
    );
  }
  const result: MigrationResultSet = await migrator(handle, await migrationSchema(handle)).migrateTo(name);
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`Migration ${failed} failed: ${(result.error as Error).message}`, { cause: result.error });
  }
  return { applied: (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName), pending: [] };
}

export async function pendingMigrations(handle: DatabaseHandle): Promise<string[]> {
  return (await migrator(handle, await migrationSchema(handle)).getMigrations()).filter((m) => !m.executedAt).map((m) => m.name);
}

/** Every migration's name, in the order they apply (the upgrade test builds the previous release's schema with migrateTo). */
export function migrationNames(): string[] {
  return Object.keys(migrations).sort();
}
