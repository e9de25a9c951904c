/**
 * Upgrading a database the previous release made (docs/operations.md, "Upgrades"), on both engines:
 *
 * - a database built with every migration but the newest (what the previous release ran), filled
 *   with a populated platform's rows (only the columns that release had), migrates to the head,
 *   keeps every row, and the platform runs on it: sealed keys open, the audit chain verifies,
 *   devices and rollouts are read and written;
 * - the schema rule that lets two releases run side by side during a rolling upgrade: the newest
 *   migration only adds. Every table and column the previous release knew is still there, and
 *   every column it added to an existing table is nullable or has a default, so the previous
 *   release's inserts (which do not name it) still work.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql, type Kysely, type TableMetadata } from 'kysely';
import { cliActor } from '../accounts/roles.js';
import { openPlatform } from '../platform.js';
import { organizationIdOf, provisionTestDevice } from '../testing/devices.js';
import { ENGINES } from '../testing/engines.js';
import { hardwareProduct, insertRelease, registerDevices, ROLLOUTS_TICKED_BY_TEST } from '../testing/rollout-fixtures.js';
import { startTestPlatform, type TestPlatform } from '../testing/server.js';
import { openDatabase, type DatabaseHandle } from './database.js';
import { migrateTo, migrateToLatest, migrationNames } from './migrate.js';

const names = migrationNames();
const newest = names[names.length - 1]!;
const previous = names[names.length - 2]!;

/** The tables of a database (of one schema on PostgreSQL), by name. */
async function tablesOf(handle: DatabaseHandle): Promise<Map<string, TableMetadata>> {
  const schema = handle.engine === 'postgres' ? (handle.schema ?? 'public') : undefined;
  const tables = await handle.db.introspection.getTables();
  return new Map(tables.filter((t) => !t.isView && (schema === undefined || t.schema === schema)).map((t) => [t.name, t]));
}

/** Copies every row of the tables `into` has, only the columns it has, foreign keys checked at commit (SQLite) or not at all (PostgreSQL). */
async function copyRows(from: DatabaseHandle, into: DatabaseHandle): Promise<Map<string, number>> {
  const source = await tablesOf(from);
  const target = await tablesOf(into);
  const counts = new Map<string, number>();
  const db = into.db as unknown as Kysely<Record<string, Record<string, unknown>>>;
  await db.transaction().execute(async (trx) => {
    if (into.engine === 'postgres') await sql`set local session_replication_role = replica`.execute(trx);
    else await sql`pragma defer_foreign_keys = on`.execute(trx);
    for (const [name, table] of target) {
      if (!source.has(name)) continue;
      const columns = table.columns.map((c) => c.name);
      const rows = await (from.db as unknown as Kysely<Record<string, Record<string, unknown>>>).selectFrom(name).select(columns).execute();
      counts.set(name, rows.length);
      for (let i = 0; i < rows.length; i += 100)
        await trx
          .insertInto(name)
          .values(rows.slice(i, i + 100))
          .execute();
      if (into.engine === 'postgres')
        for (const column of table.columns.filter((c) => c.isAutoIncrementing))
          await sql`select setval(pg_get_serial_sequence(${`${into.schema}.${name}`}, ${column.name}), coalesce(max(${sql.ref(column.name)}), 0) + 1, false) from ${sql.table(name)}`.execute(
            trx,
          );
    }
  });
  return counts;
}

for (const engine of ENGINES) {
  describe(
    `upgrading from the previous release's database [${engine.engine}] (${previous} → ${newest})`,
    { skip: engine.skip, concurrency: 1 },
    () => {
      let t: TestPlatform;
      let old: DatabaseHandle;
      let scratch: string | undefined;

      before(async () => {
        t = await startTestPlatform(engine, ROLLOUTS_TICKED_BY_TEST);
        const org = await organizationIdOf(t.platform, t.org);
        const product = await hardwareProduct(t.platform, org, 'Upgrade sensor');
        for (let i = 0; i < 3; i++) await provisionTestDevice(t.platform, org, product, `UPGRADE-${i}`);
        const deviceIds = await registerDevices(t.platform, org, product, 'UPGRADE-R', 4);
        const release = await insertRelease(t.platform, org, product, '1.1.0');
        await t.platform.updates.rollouts.create(cliActor(org, 'test'), { releaseId: release.id, selector: { deviceIds } });
        await t.platform.updates.rollouts.tick();
        await t.platform.telemetry.store.insertBatch(
          deviceIds.map((deviceId, i) => ({
            organization_id: org,
            device_id: deviceId,
            ts: 1000 + i,
            received_at: 1000 + i,
            data: '{"t":21.5}',
          })),
        );
        await t.platform.audit.checkpoint();

        if (engine.engine === 'postgres') {
          await sql`create schema previous_release`.execute(t.database.db);
          old = openDatabase({ url: t.database.url, dataDir: t.database.dataDir, schema: 'previous_release', poolSize: 2 });
        } else {
          scratch = mkdtempSync(join(tmpdir(), 'bulwark-upgrade-'));
          old = openDatabase({ url: 'sqlite', dataDir: scratch });
        }
      });
      after(async () => {
        await old?.close();
        if (scratch) rmSync(scratch, { recursive: true, force: true });
        await t?.close();
      });

      it('the newest migration only adds: every table and column the previous release used is still there, and what it added to them is nullable or has a default', async () => {
        await migrateTo(old, previous);
        const before = await tablesOf(old);
        const head = await tablesOf(t.database);
        for (const [name, table] of before) {
          const now = head.get(name);
          assert.ok(now, `${newest} drops or renames table ${name}: keep it one more release (docs/operations.md, "Upgrades")`);
          const columns = new Map(now.columns.map((c) => [c.name, c]));
          for (const column of table.columns)
            assert.ok(columns.has(column.name), `${newest} drops or renames ${name}.${column.name}: the previous release still reads it`);
          for (const added of now.columns.filter((c) => !table.columns.some((o) => o.name === c.name)))
            assert.ok(
              added.isNullable || added.hasDefaultValue,
              `${newest} adds ${name}.${added.name} NOT NULL without a default: the previous release's inserts would fail`,
            );
        }
      });

      it('migrates a populated database of the previous release to the head, keeping every row, and the platform runs on it', async () => {
        // (The first test left `old` at the previous release's schema.)
        const copied = await copyRows(t.database, old);
        assert.ok((copied.get('devices') ?? 0) >= 7 && (copied.get('audit_log') ?? 0) > 0, JSON.stringify(Object.fromEntries(copied)));
        const report = await migrateToLatest(old);
        assert.deepEqual(report.applied, [newest]);

        const db = old.db as unknown as Kysely<Record<string, Record<string, unknown>>>;
        for (const [name, count] of copied) {
          const row = await db
            .selectFrom(name)
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow();
          assert.equal(Number(row.n), count, `rows of ${name} after the upgrade`);
        }

        const platform = await openPlatform(t.config, { database: { ...old, close: async () => undefined }, clock: t.clock, env: {} });
        try {
          const verified = await platform.audit.verify();
          assert.equal(verified.ok, true, JSON.stringify(verified.problems));
          const org = await organizationIdOf(platform, t.org);
          const actor = cliActor(org, 'test');
          const rollouts = await platform.updates.rollouts.list(actor, {});
          assert.equal(rollouts.rollouts.length, 1);
          assert.equal((await platform.updates.rollouts.devicesOf(actor, rollouts.rollouts[0]!.id, { limit: 10 })).devices.length, 4);
          assert.ok(await platform.signingKeys.current('audit-checkpoint'), 'sealed signing keys open');
          const product = await hardwareProduct(platform, org, 'After upgrade');
          await provisionTestDevice(platform, org, product, 'AFTER-UPGRADE');
          await platform.audit.checkpoint();
          assert.equal((await platform.audit.verify()).ok, true);
        } finally {
          await platform.close();
        }
      });
    },
  );
}
