/**
 * Moving a SQLite database into PostgreSQL (storage/engine-copy.ts): rows arrive column by name,
 * identity sequences continue after the copied values, and a copy that cannot be completed leaves
 * the target database as empty as it was.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { BulwarkError } from '../errors.js';
import { createEmptyDatabase, dropDatabase, ENGINES } from '../testing/engines.js';
import { openDatabase } from './database.js';
import { copySqliteIntoPostgres } from './engine-copy.js';
import { migrateToLatest } from './migrate.js';
import { postgresTableCount } from './snapshot.js';

const postgres = ENGINES.find((e) => e.engine === 'postgres')!;

describe('copying a SQLite database into PostgreSQL', { skip: postgres.skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-engine-copy-'));
  const databases: string[] = [];
  let file: string;
  let migration: string;

  const emptyDatabase = async (): Promise<string> => {
    const { name, url } = await createEmptyDatabase('bulwark_c');
    databases.push(name);
    return url;
  };

  before(async () => {
    const handle = openDatabase({ url: 'sqlite', dataDir: dir });
    await migrateToLatest(handle);
    for (let i = 0; i < 1200; i++) {
      await sql`insert into telemetry (organization_id, device_id, ts, received_at, data)
        values ('org', ${`dev-${i % 7}`}, ${1_700_000_000_000 + i}, ${1_700_000_000_000 + i}, ${JSON.stringify({ values: { t: i / 3 } })})`.execute(
        handle.db,
      );
    }
    migration = (await sql<{ name: string }>`select max(name) as name from kysely_migration`.execute(handle.db)).rows[0]!.name;
    file = handle.file!;
    await handle.close();
  });
  after(async () => {
    for (const name of databases) await dropDatabase(name).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies every row (more than one INSERT batch), reads them back, and continues the identity after them', async () => {
    const url = await emptyDatabase();
    const report = await copySqliteIntoPostgres(file, url, migration);
    assert.equal(report.migration, migration);
    assert.equal(report.tables.telemetry?.rows, 1200);
    assert.equal(
      report.rows,
      Object.values(report.tables).reduce((sum, table) => sum + table.rows, 0),
    );
    const target = openDatabase({ url, dataDir: dir });
    try {
      const rows = await sql<{ seq: number; data: string }>`select seq, data from telemetry order by seq`.execute(target.db);
      assert.equal(rows.rows.length, 1200);
      assert.deepEqual(JSON.parse(rows.rows[1199]!.data), { values: { t: 1199 / 3 } });
      // A new reading gets the next number: the identity continues after the copied values.
      const inserted = await sql<{ seq: number }>`insert into telemetry (organization_id, device_id, ts, received_at, data)
        values ('org', 'dev-0', 1, 1, '{}') returning seq`.execute(target.db);
      assert.equal(Number(inserted.rows[0]!.seq), Number(rows.rows[1199]!.seq) + 1);
    } finally {
      await target.close();
    }
  });

  it('refuses a database whose tables the migrations do not make, and leaves the target empty', async () => {
    const strayDir = mkdtempSync(join(dir, 'stray-'));
    const handle = openDatabase({ url: 'sqlite', dataDir: strayDir });
    await migrateToLatest(handle);
    await sql`create table stray (x integer)`.execute(handle.db);
    const strayFile = handle.file!;
    await handle.close();
    const url = await emptyDatabase();
    await assert.rejects(copySqliteIntoPostgres(strayFile, url, migration), (error: unknown) => {
      assert.ok(error instanceof BulwarkError, String(error));
      assert.equal(error.code, 'backup.copy_failed');
      assert.match(error.message, /stray only in the backup/);
      return true;
    });
    assert.equal(await postgresTableCount(url), 0, 'the target is left as it was found');
  });

  it('refuses a migration this build does not know, before it creates anything', async () => {
    const url = await emptyDatabase();
    await assert.rejects(
      copySqliteIntoPostgres(file, url, '999_from_the_future'),
      (error: unknown) => error instanceof BulwarkError && error.code === 'backup.engine_mismatch',
    );
    assert.equal(await postgresTableCount(url), 0);
  });
});
