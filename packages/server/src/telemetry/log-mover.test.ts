import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { openDatabase, type DatabaseHandle } from '../storage/database.js';
import { migrateTo, migrateToLatest } from '../storage/migrate.js';
import { SqliteBatchWorker } from './batch-worker.js';
import { TelemetryLogMover, type LogMoverOptions } from './log-mover.js';
import { TelemetryStore, type TelemetryRow } from './store.js';

describe('telemetry log mover: when slices move', () => {
  function mover(logRows: number, options: Partial<LogMoverOptions> = {}) {
    const state = { log: logRows, counts: 0, slices: [] as number[], fail: false, now: 0, errors: [] as object[] };
    const m = new TelemetryLogMover(
      async (rows) => {
        if (state.fail) throw new Error('disk full');
        const moved = Math.min(rows, state.log);
        state.log -= moved;
        state.slices.push(moved);
        return moved;
      },
      async () => {
        state.counts++;
        return state.log;
      },
      { sliceRows: 10, retryMs: 1000, now: () => state.now, ...options },
    );
    m.reportTo({ error: (details) => state.errors.push(details) });
    const append = async (rows: number) => {
      state.log += rows;
      m.appended(rows);
      await m.settled();
    };
    return { m, state, append };
  }

  it('counts the log once, then moves only whole slices, oldest first, until less than a slice waits', async () => {
    const { state, append } = mover(4);
    await append(3);
    assert.equal(state.counts, 1, 'counted at the first append');
    assert.deepEqual(state.slices, [], '7 rows: no slice yet');
    await append(2);
    assert.deepEqual(state.slices, [], '9 rows: still none');
    await append(25);
    assert.deepEqual(state.slices, [10, 10, 10], '34 rows: three whole slices');
    assert.equal(state.log, 4);
    await append(5);
    assert.deepEqual(state.slices, [10, 10, 10], '9 rows');
    await append(1);
    assert.deepEqual(state.slices, [10, 10, 10, 10]);
    assert.equal(state.counts, 1, 'no count while the figures agree');
  });

  it('a slice that moves less than counted (readings erased meanwhile) has the log counted again', async () => {
    const { state, append } = mover(0);
    await append(12);
    assert.deepEqual(state.slices, [10]);
    state.log = 0; // erased behind the mover's back: it still counts 2
    await append(9);
    assert.deepEqual(state.slices, [10, 9], 'believed 11: the slice moved the 9 there were');
    assert.equal(state.counts, 1);
    await append(2);
    assert.equal(state.counts, 2, 'counted again');
    assert.deepEqual(state.slices, [10, 9], '2 rows: no slice');
    await append(8);
    assert.deepEqual(state.slices, [10, 9, 10]);
  });

  it('a failed slice is reported, not retried before the pause, and the rows wait in the log', async () => {
    const { state, append } = mover(0);
    state.fail = true;
    await append(15);
    assert.equal(state.errors.length, 1);
    await append(15);
    assert.equal(state.errors.length, 1, 'within the pause: not tried again');
    state.fail = false;
    state.now = 1000;
    await append(1);
    assert.deepEqual(state.slices, [10, 10, 10], 'after it: the 31 rows that wait move, whole slices');
    assert.equal(state.log, 1);
  });

  it('stop waits for the slice under way and starts no other', async () => {
    let release!: () => void;
    const started: number[] = [];
    const m = new TelemetryLogMover(
      async (rows) => {
        started.push(rows);
        await new Promise<void>((resolve) => (release = resolve));
        return rows;
      },
      async () => 100,
      { sliceRows: 10, retryMs: 1000, now: () => 0 },
    );
    m.appended(1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(started.length, 1);
    let stopped = false;
    const stopping = m.stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(stopped, false, 'waits for the slice');
    release();
    await stopping;
    m.appended(100);
    await m.settled();
    assert.equal(started.length, 1, 'no slice after stop');
  });
});

let n = 0;
/** Rows of `devices` devices interleaved, several at the same millisecond (the keyset's tie-break is seq). */
function fleetRows(count: number, devices: number): TelemetryRow[] {
  return Array.from({ length: count }, () => {
    n++;
    return {
      organization_id: 'org-log',
      device_id: `dev-log-${n % devices}`,
      ts: 1_764_000_000_000 + Math.floor(n / 7) * 1000,
      received_at: 1_764_000_000_000 + n,
      data: JSON.stringify({ n, t: 20 + (n % 10), s: `v${n % 3}` }),
    };
  });
}

describe('telemetry log on SQLite: appended, moved, read as one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-telemetry-log-'));
  let handle: DatabaseHandle;
  before(async () => {
    handle = openDatabase({ url: 'sqlite', dataDir: dir });
    await migrateToLatest(handle);
  });
  after(async () => {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const inTable = async (table: 'telemetry' | 'telemetry_log') =>
    (await handle.db.selectFrom(table).select(['seq', 'device_id', 'data']).orderBy('seq').execute()).map((r) => ({
      ...r,
      seq: Number(r.seq),
    }));

  /** Every read of the store, for one device, against what was written (in the order written). */
  async function readsMatch(store: TelemetryStore, written: TelemetryRow[], device: string): Promise<void> {
    const mine = written.filter((r) => r.device_id === device);
    const expected = [...mine].sort((a, b) => a.ts - b.ts); // stable: equal ts stay in the order written (seq)
    const paged: string[] = [];
    let after: { ts: number; seq: number } | null = null;
    for (;;) {
      const page = await store.page(device, 0, Number.MAX_SAFE_INTEGER, after, 7);
      paged.push(...page.map((r) => r.data));
      if (page.length < 7) break;
      const last = page[page.length - 1]!;
      after = { ts: Number(last.ts), seq: Number(last.seq) };
    }
    assert.deepEqual(
      paged,
      expected.map((r) => r.data),
      `${device}: pages in (ts, seq) order, each reading once`,
    );
    assert.equal(await store.count(device), mine.length);
    const buckets = await store.buckets(device, 0, Number.MAX_SAFE_INTEGER, 86_400_000, ['t']);
    assert.equal(
      buckets.reduce((sum, b) => sum + b.count, 0),
      mine.length,
      `${device}: aggregates count every reading once`,
    );
    const latest = await store.latest(device, 10_000);
    const newestS = JSON.parse(expected[expected.length - 1]!.data).s as string;
    assert.equal(JSON.parse(latest.find((l) => l.name === 's')!.last.slice(32)), newestS, `${device}: latest value`);
  }

  it('moves the oldest rows in slices as batches arrive; every read sees each reading once at every step; seq keeps its order', async () => {
    const store = new TelemetryStore(handle.db, 'sqlite', undefined, { sliceRows: 40 });
    const written: TelemetryRow[] = [];
    let sawBoth = false;
    for (const size of [13, 1, 30, 2, 57, 16, 90, 5, 33]) {
      const batch = fleetRows(size, 5);
      await store.insertBatch(batch);
      written.push(...batch);
      await store.logMover!.settled();
      const [stored, logged] = [await inTable('telemetry'), await inTable('telemetry_log')];
      if (stored.length > 0 && logged.length > 0) sawBoth = true;
      assert.equal(stored.length + logged.length, written.length, 'each row in one table');
      if (stored.length > 0 && logged.length > 0) assert.ok(stored[stored.length - 1]!.seq < logged[0]!.seq, 'the oldest rows moved first');
      assert.ok(logged.length < 40, `less than a slice waits in the log (${logged.length})`);
      for (const device of ['dev-log-0', 'dev-log-3']) await readsMatch(store, written, device);
    }
    assert.ok(sawBoth, 'the reads were checked while rows were in both tables');
    const all = [...(await inTable('telemetry')), ...(await inTable('telemetry_log'))].sort((a, b) => a.seq - b.seq);
    assert.deepEqual(
      all.map((r) => r.data),
      written.map((r) => r.data),
      'seq follows the order written, across the move',
    );
    assert.equal(store.logMover!.stats.failures, 0);
    assert.ok(store.logMover!.stats.slices >= 5, `${store.logMover!.stats.slices} slices`);
    // The fleet page's rate reads both tables too.
    const perMinute = await store.readingsPerMinute('org-log', 0, Number.MAX_SAFE_INTEGER);
    assert.equal(
      perMinute.reduce((sum, m) => sum + m.readings, 0),
      written.length,
    );
  });

  it('retention and erasure delete from the log and the stored rows, at most `limit` a call', async () => {
    const store = new TelemetryStore(handle.db, 'sqlite', undefined, { sliceRows: 20 });
    const device = 'dev-log-erase';
    const rows = fleetRows(50, 1).map((r, i) => ({ ...r, device_id: device, ts: 1_700_000_000_000 + i }));
    await store.insertBatch(rows);
    await store.logMover!.settled();
    const inLog = async () => (await inTable('telemetry_log')).filter((r) => r.device_id === device).length;
    assert.ok((await inLog()) > 0 && (await inLog()) < 50, 'rows in both tables');
    assert.equal(await store.countOlderThan([device], 1_700_000_000_000 + 45), 45);
    assert.equal(await store.deleteOlderThan([device], 1_700_000_000_000 + 45, 30), 30, 'at most the limit');
    assert.equal(await store.deleteOlderThan([device], 1_700_000_000_000 + 45, 30), 15, 'the rest');
    assert.equal(await store.count(device), 5);
    assert.equal(await store.deleteSince(device, 1_700_000_000_000 + 47), 3);
    assert.deepEqual(
      (await store.range(device, 0, Number.MAX_SAFE_INTEGER, 100)).map((r) => Number(r.ts) - 1_700_000_000_000),
      [45, 46],
    );
  });

  it('through the writer thread: batches and moves interleave in turns, nothing is lost or doubled', async () => {
    const store = new TelemetryStore(handle.db, 'sqlite', undefined, { sliceRows: 100 });
    const worker = await SqliteBatchWorker.start(handle.file!, { error: () => undefined }, handle.writeTurns ?? null);
    store.writeBatchesWith(worker);
    try {
      const before = await store.count();
      const batches = Array.from({ length: 60 }, (_, i) => fleetRows(5 + (i % 17), 9));
      // Several batches in flight at once, as the ingest writer sends them, with moves started between them.
      await Promise.all(batches.map((batch) => store.insertBatch(batch)));
      await store.stopMovingLog();
      const total = batches.reduce((sum, b) => sum + b.length, 0);
      assert.equal(await store.count(), before + total);
      assert.ok(store.logMover!.stats.slices > 0, 'moved on the worker');
      const seqs = [...(await inTable('telemetry')), ...(await inTable('telemetry_log'))].map((r) => r.seq);
      assert.equal(new Set(seqs).size, seqs.length, 'no seq twice');
    } finally {
      store.writeBatchesWith(null);
      await worker.stop();
    }
  });
});

describe('telemetry log: an upgraded database', () => {
  it('numbers new readings above every reading stored before the upgrade, and reads the old ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-telemetry-log-upgrade-'));
    const handle = openDatabase({ url: 'sqlite', dataDir: dir });
    try {
      await migrateTo(handle, '033_product_commands');
      await sql`insert into telemetry (seq, organization_id, device_id, ts, received_at, data)
        values (1000000, 'org-u', 'dev-u', 1764000000000, 1764000000000, '{"old":1}')`.execute(handle.db);
      await migrateToLatest(handle);
      const store = new TelemetryStore(handle.db, 'sqlite');
      await store.insertBatch([{ organization_id: 'org-u', device_id: 'dev-u', ts: 1_764_000_000_000, received_at: 1, data: '{"new":1}' }]);
      const rows = await store.page('dev-u', 0, Number.MAX_SAFE_INTEGER, null, 10);
      assert.deepEqual(
        rows.map((r) => r.data),
        ['{"old":1}', '{"new":1}'],
        'equal ts: the order of seq',
      );
      assert.ok(Number(rows[1]!.seq) > 1_000_000, `new seq ${rows[1]!.seq}`);
    } finally {
      await handle.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
