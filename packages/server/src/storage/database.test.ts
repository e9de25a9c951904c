import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { ENGINES } from '../testing/engines.js';
import { isReachable } from './database.js';
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
