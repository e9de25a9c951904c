import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, type TestDatabase } from '../testing/engines.js';
import { PreparedQueries } from './prepared.js';

for (const engine of ENGINES) {
  describe(`prepared queries [${engine.engine}]`, { skip: engine.skip }, () => {
    let handle: TestDatabase;
    before(async () => {
      handle = await engine.create();
    });
    after(async () => {
      await handle?.close();
    });

    it('runs one compiled query with each run its own values, in the places Kysely bound them', async () => {
      const prepared = new PreparedQueries();
      const db = handle.db;
      const insert = (key: string, value: string, at: number) =>
        prepared.execute(db, 'insert', [key, value, at], (k, v, t) => db.insertInto('kv').values({ key: k, value: v, updated_at: t }));
      const hostile = "x'); drop table kv; --";
      await insert('a', 'one', 1);
      await insert('b', hostile, 2);
      const read = (key: string) =>
        prepared.execute(db, 'read', [key], (k) => db.selectFrom('kv').select(['value', 'updated_at']).where('key', '=', k));
      assert.deepEqual((await read('a')).rows, [{ value: 'one', updated_at: 1 }]);
      assert.deepEqual((await read('b')).rows, [{ value: hostile, updated_at: 2 }]);
      assert.deepEqual((await read('c')).rows, []);

      // A constant of the shape (the 'newer' bound) stays; arguments around it change.
      const touch = (key: string, at: number) =>
        prepared.execute(db, 'touch', [at, key], (t, k) =>
          db.updateTable('kv').set({ updated_at: t }).where('key', '=', k).where('updated_at', '<', 1_000),
        );
      assert.equal(Number((await touch('a', 500)).numAffectedRows), 1);
      assert.equal(Number((await touch('b', 2_000)).numAffectedRows), 1);
      assert.equal(Number((await touch('b', 3_000)).numAffectedRows), 0, 'b is at 2,000 now: past the constant bound');
      assert.deepEqual((await read('b')).rows, [{ value: hostile, updated_at: 2_000 }]);

      // In a transaction, the same compiled query runs on the transaction's connection.
      await db.transaction().execute(async (trx) => {
        await prepared.execute(trx, 'insert', ['c', 'three', 3], (k, v, t) =>
          trx.insertInto('kv').values({ key: k, value: v, updated_at: t }),
        );
      });
      assert.deepEqual((await read('c')).rows, [{ value: 'three', updated_at: 3 }]);
    });

    it('refuses a query that does not use one of its arguments as a value', () => {
      const prepared = new PreparedQueries();
      const db = handle.db;
      assert.throws(
        () => prepared.execute(db, 'unused', ['a', 'b'], (k, _value) => db.selectFrom('kv').select('value').where('key', '=', k)),
        /argument 1 is not a value of the query/,
      );
    });
  });
}
