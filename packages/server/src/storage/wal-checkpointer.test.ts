import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { eventually } from '../testing/mqtt.js';
import { openDatabase } from './database.js';
import { WalCheckpointer } from './wal-checkpointer.js';

describe('WAL checkpoints from a worker thread [sqlite]', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-wal-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('copies committed pages into the database file from the worker, which the committing connection leaves in the WAL', async () => {
    const handle = openDatabase({ url: 'sqlite', dataDir: dir });
    const file = join(dir, 'bulwark.db');
    const errors: unknown[] = [];
    try {
      await sql`create table filler (id integer primary key, data text not null)`.execute(handle.db);
      const before = statSync(file).size;
      // ~6 MB: well below the connection's own autocheckpoint (10,000 pages, ~40 MB).
      for (let batch = 0; batch < 6; batch++) {
        await handle.db.transaction().execute(async (trx) => {
          for (let i = 0; i < 1000; i++) await sql`insert into filler (data) values (${'x'.repeat(1000)})`.execute(trx);
        });
      }
      assert.equal(statSync(file).size, before, 'the committing connection did not checkpoint');
      assert.ok(statSync(`${file}-wal`).size > 6_000_000);

      const checkpointer = await WalCheckpointer.start(file, { error: (details) => errors.push(details) }, { intervalMs: 50 });
      await eventually(() => statSync(file).size > 6_000_000, 5000, 'the worker copied the pages into the database file');
      await checkpointer.stop();
      await checkpointer.stop(); // twice is harmless
      assert.equal(checkpointer.failures, 0);
      assert.deepEqual(errors, []);
      // The database reads the same through the main connection afterwards.
      const { n } = await sql<{ n: number }>`select count(*) as n from filler`.execute(handle.db).then((r) => r.rows[0]!);
      assert.equal(n, 6000);
    } finally {
      await handle.close();
    }
  });

  it('restarts a WAL that commits keep growing, between two held writes, with the committing connection never checkpointing', async () => {
    const handle = openDatabase({ url: 'sqlite', dataDir: join(dir, 'restart') });
    const file = join(dir, 'restart', 'bulwark.db');
    const errors: unknown[] = [];
    try {
      await sql`create table filler (id integer primary key, data text not null)`.execute(handle.db);
      let held = 0;
      let writing = Promise.resolve();
      const checkpointer = await WalCheckpointer.start(
        file,
        { error: (details) => errors.push(details) },
        {
          intervalMs: 20,
          restartFrames: 200,
          main: handle.db,
          // Holds the writes below: the next one starts after the WAL restarted.
          quiesce: (work) => {
            held++;
            const done = writing.then(work);
            writing = done;
            return done;
          },
        },
      );
      const pragma = async (name: string) => (await sql.raw<Record<string, number>>(`pragma ${name}`).execute(handle.db)).rows[0]!;
      assert.equal(Object.values(await pragma('wal_autocheckpoint'))[0], 0, 'the committing connection does not checkpoint');
      // ~30 MB in 300 commits of 100 KB: far past 200 frames many times over.
      for (let batch = 0; batch < 300; batch++) {
        await writing;
        writing = handle.db.transaction().execute(async (trx) => {
          for (let i = 0; i < 100; i++) await sql`insert into filler (data) values (${'x'.repeat(1000)})`.execute(trx);
        });
        await writing;
        if (batch % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await eventually(() => checkpointer.restarts > 0, 5000, 'the worker restarted the WAL');
      await checkpointer.stop();
      assert.ok(held >= checkpointer.restarts, 'every restart happened with the writes held');
      assert.ok(statSync(`${file}-wal`).size < 20_000_000, `the WAL started over (${statSync(`${file}-wal`).size} bytes)`);
      assert.equal(Object.values(await pragma('wal_autocheckpoint'))[0], 10_000, 'checkpoints on commit again once stopped');
      assert.deepEqual(errors, []);
      const { n } = await sql<{ n: number }>`select count(*) as n from filler`.execute(handle.db).then((r) => r.rows[0]!);
      assert.equal(n, 30_000);
    } finally {
      await handle.close();
    }
  });
  it('stops cleanly when the go for a WAL restart crosses the stop (writes were held as it was sent)', async () => {
    const handle = openDatabase({ url: 'sqlite', dataDir: join(dir, 'crossing') });
    const file = join(dir, 'crossing', 'bulwark.db');
    const errors: unknown[] = [];
    try {
      await sql`create table filler (id integer primary key, data text not null)`.execute(handle.db);
      let held: (() => Promise<void>) | null = null;
      const checkpointer = await WalCheckpointer.start(
        file,
        { error: (details) => errors.push(details) },
        {
          intervalMs: 20,
          restartFrames: 10,
          main: handle.db,
          // Holds the worker's request until the test lets it go, after the stop is on its way.
          quiesce: (work) => {
            held ??= work;
            return Promise.resolve();
          },
        },
      );
      await handle.db.transaction().execute(async (trx) => {
        for (let i = 0; i < 100; i++) await sql`insert into filler (data) values (${'x'.repeat(1000)})`.execute(trx);
      });
      await eventually(() => held !== null, 5000, 'the worker asked for quiet');
      const stopping = checkpointer.stop();
      await new Promise((resolve) => setImmediate(resolve)); // 'stop' has been posted
      void held!();
      await stopping;
      assert.deepEqual(errors, []);
      assert.equal(checkpointer.failures, 0);
    } finally {
      await handle.close();
    }
  });
});
