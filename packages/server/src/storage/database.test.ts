import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql, type KyselyPlugin } from 'kysely';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENGINES, PG_URL } from '../testing/engines.js';
import { NetworkFault } from '../testing/network-fault.js';
import { isReachable, openDatabase } from './database.js';
import { migrateToLatest, pendingMigrations } from './migrate.js';

for (const engine of ENGINES) {
  describe(`storage [${engine.engine}]`, { skip: engine.skip }, () => {
    it('applies every migration and leaves none pending', async () => {
      const handle = await engine.create();
      try {
        assert.deepEqual(await pendingMigrations(handle), []);
        const again = await migrateToLatest(handle);
        assert.deepEqual(again.applied, [], 'a second run applies nothing');
        assert.equal(await isReachable(handle.db), true);
      } finally {
        await handle.close();
      }
    });

    it('finds a current schema with one read of the migrations table: no introspection, no transaction', async () => {
      const handle = await engine.create();
      try {
        const statements: string[] = [];
        const counting: KyselyPlugin = {
          transformQuery: (args) => (statements.push(handle.db.getExecutor().compileQuery(args.node, args.queryId).sql), args.node),
          transformResult: async (args) => args.result,
        };
        const report = await migrateToLatest({ ...handle, db: handle.db.withPlugin(counting) });
        assert.deepEqual(report.applied, []);
        // PostgreSQL without a schema in the handle first asks which schema is ours.
        const expected = [...(engine.engine === 'postgres' && !handle.schema ? ['select current_schema()'] : []), 'select name from'];
        assert.deepEqual(
          statements.map((s) => s.slice(0, expected.find((e) => s.startsWith(e))?.length ?? 40)),
          expected,
          statements.join('\n'),
        );
      } finally {
        await handle.close();
      }
    });

    it('still refuses a database that records a migration this build does not know', async () => {
      const handle = await engine.create();
      try {
        await sql`insert into kysely_migration (name, timestamp) values ('999_from_a_newer_build', '2030-01-01T00:00:00.000Z')`.execute(
          handle.db,
        );
        await assert.rejects(migrateToLatest(handle), /previously executed migration 999_from_a_newer_build is missing/);
      } finally {
        await handle.close();
      }
    });

    it('round-trips millisecond timestamps beyond 32 bits as numbers', async () => {
      const handle = await engine.create();
      try {
        const ts = Date.UTC(2030, 5, 1, 12, 0, 0, 123);
        await handle.db.insertInto('kv').values({ key: 'k', value: 'v', updated_at: ts }).execute();
        const row = await handle.db.selectFrom('kv').selectAll().where('key', '=', 'k').executeTakeFirstOrThrow();
        assert.equal(row.updated_at, ts);
        assert.equal(typeof row.updated_at, 'number');
      } finally {
        await handle.close();
      }
    });

    it('keeps a value containing SQL syntax as plain data', async () => {
      const handle = await engine.create();
      try {
        const hostile = "x'); drop table kv; --";
        await handle.db.insertInto('kv').values({ key: hostile, value: hostile, updated_at: 1 }).execute();
        const count = await handle.db
          .selectFrom('kv')
          .select(sql<number>`count(*)`.as('n'))
          .executeTakeFirstOrThrow();
        assert.equal(Number(count.n), 1);
      } finally {
        await handle.close();
      }
    });
  });
}

describe('a PostgreSQL connection lost mid-query', { skip: ENGINES.find((e) => e.engine === 'postgres')!.skip }, () => {
  it('rejects the query and keeps the process alive; the next query succeeds once the server is back', async () => {
    const fault = new NetworkFault(Number(new URL(PG_URL).port || 5432));
    const port = await fault.listen();
    const url = new URL(PG_URL);
    url.port = String(port);
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-pg-lost-'));
    const errors: Error[] = [];
    const handle = openDatabase({ url: url.toString(), dataDir: dir, poolSize: 2, onConnectionError: (e) => errors.push(e) });
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      const running = sql`select pg_sleep(5)`.execute(handle.db);
      await new Promise((resolve) => setTimeout(resolve, 300));
      fault.cut();
      await assert.rejects(running, 'the query in flight fails');
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(uncaught, [], 'no uncaught error from the connection in use');
      assert.ok(errors.length >= 1, 'the connection failure is reported to the node');
      fault.restore();
      assert.equal(await isReachable(handle.db), true, 'a new connection serves the next query');
    } finally {
      process.off('uncaughtException', onUncaught);
      await handle.close();
      await fault.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
