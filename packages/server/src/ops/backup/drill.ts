/**
 * `bulwark backup drill`: proves a backup restores, without touching the deployment. It restores
 * the archive into scratch space (a temporary data directory and, for PostgreSQL, a temporary
 * database on the same server), compares every table's row count and digest with what the
 * manifest recorded at backup time, opens the restored platform and verifies its audit chain,
 * then removes the scratch space. A backup that was never restored is only a hope.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { masterKeyPath } from '../../keys/master-key.js';
import { digestPostgres, digestSqlite, type TableDigests } from '../../storage/snapshot.js';
import type { Config } from '../config.js';
import type { BackupKeySource } from './envelope.js';
import { readHeader, restoreBackup } from './restore.js';

export interface DrillReport {
  ok: boolean;
  deployment: string;
  created: string;
  tables: number;
  rows: number;
  /** Tables whose restored rows differ from the manifest's digest (or are missing, or extra). */
  mismatches: { table: string; expected: TableDigests[string] | null; restored: TableDigests[string] | null }[];
  audit: { ok: boolean; entries: number; problems: number };
  seconds: number;
}

/** What the drill needs to open the restored platform's audit log: the caller's platform opener. */
export type AuditVerifier = (restoredConfig: {
  dataDir: string;
  databaseUrl: string;
}) => Promise<{ ok: boolean; entries: number; problems: number }>;

export async function restoreDrill(
  config: Config,
  options: { archive: string; key: BackupKeySource; deployment: string; scratch?: string },
  verifyAudit: AuditVerifier,
): Promise<DrillReport> {
  const started = performance.now();
  const scratch = mkdtempSync(join(options.scratch ?? tmpdir(), 'bulwark-drill-'));
  const { header } = await readHeader(options.archive);
  let drillDatabase: { admin: string; url: string; name: string } | null = null;
  try {
    if (!config.database.url.startsWith('sqlite')) {
      const name = `bulwark_drill_${randomBytes(6).toString('hex')}`;
      const url = new URL(config.database.url);
      url.pathname = `/${name}`;
      drillDatabase = { admin: config.database.url, url: url.toString(), name };
      await adminQuery(config.database.url, `create database ${name}`);
    }
    const dataDir = join(scratch, 'data');
    const ownKey = masterKeyPath(config.dataDir);
    const restored = await restoreBackup({
      archive: options.archive,
      key: options.key,
      deployment: options.deployment,
      dataDir,
      ...(drillDatabase ? { databaseUrl: drillDatabase.url } : {}),
      ...(existsSync(ownKey) ? { masterKeyFile: ownKey } : {}),
    });
    const digests = drillDatabase ? await digestPostgres(drillDatabase.url) : digestSqlite(join(dataDir, 'bulwark.db'));
    const mismatches: DrillReport['mismatches'] = [];
    for (const table of new Set([...Object.keys(restored.digests), ...Object.keys(digests)])) {
      const expected = restored.digests[table] ?? null;
      const got = digests[table] ?? null;
      if (!expected || !got || expected.rows !== got.rows || expected.sha256 !== got.sha256)
        mismatches.push({ table, expected, restored: got });
    }
    const audit = await verifyAudit({ dataDir, databaseUrl: drillDatabase?.url ?? 'sqlite' });
    return {
      ok: mismatches.length === 0 && audit.ok,
      deployment: header.deployment,
      created: restored.created,
      tables: restored.tables,
      rows: restored.rows,
      mismatches,
      audit,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    if (drillDatabase)
      await adminQuery(drillDatabase.admin, `drop database if exists ${drillDatabase.name} with (force)`).catch(() => undefined);
  }
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}
