import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { openDatabase, type DatabaseHandle } from '../storage/database.js';
import { migrateTo, migrateToLatest } from '../storage/migrate.js';
import { SqliteBatchWorker } from './batch-worker.js';
import { generationSlices, LOG_DEVICE_RANGES, TelemetryLogMover, type LogMoverOptions, type LogSliceRange } from './log-mover.js';
import { TelemetryStore, type TelemetryRow } from './store.js';

describe('telemetry log mover: generations and slices', () => {
  it('the slices of a generation cover every device ID exactly once, whatever it looks like', () => {
    const slices = generationSlices(42);
    assert.equal(slices.length, LOG_DEVICE_RANGES.length + 1);
    const ids = ['', '0', '1ffff', '2', '9e0c-…', 'a', 'A-upper', 'dev-1', 'e', 'f0000000-0000-4000-8000-000000000000', 'zzz', '~', '温度'];
    for (let i = 0; i < 200; i++) ids.push(randomUUID());
    for (const id of ids) {
      const holding = slices.filter((r) => id >= r.low && (r.high === null || id < r.high));
      assert.equal(holding.length, 1, `${JSON.stringify(id)} in ${holding.length} slices`);
      assert.equal(holding[0]!.upTo, 42);
    }
  });

  /** A log modelled in memory: rows of (seq, device); a slice removes its rows, as the SQL does. */
  function mover(initial: number, options: Partial<LogMoverOptions> = {}) {
    const state = {
      log: [] as { seq: number; device: string }[],
      nextSeq: 1,
      counts: 0,
      slices: [] as LogSliceRange[],
      moved: [] as number[],
      fail: false,
      now: 0,
      errors: [] as object[],
      duringSlice: null as (() => void) | null,
    };
    const add = (rows: number) => {
      for (let i = 0; i < rows; i++) state.log.push({ seq: state.nextSeq++, device: randomUUID() });
    };
    add(initial);
    const m = new TelemetryLogMover(
      {
        async moveSlice(range) {
          if (state.fail) throw new Error('disk full');
          state.duringSlice?.();
          state.duringSlice = null;
          const inRange = (r: { seq: number; device: string }) =>
            r.seq <= range.upTo && r.device >= range.low && (range.high === null || r.device < range.high);
          const moved = state.log.filter(inRange).length;
          state.log = state.log.filter((r) => !inRange(r));
          state.slices.push(range);
          state.moved.push(moved);
          return { moved, ms: 1 };
        },
        async count() {
          state.counts++;
          return state.log.length;
        },
        async lastSeq() {
          return state.log.length === 0 ? null : Math.max(...state.log.map((r) => r.seq));
        },
      },
      { generationRows: 100, retryMs: 1000, now: () => state.now, ...options },
    );
    m.reportTo({ error: (details) => state.errors.push(details) });
    const append = async (rows: number) => {
      add(rows);
      m.appended(rows);
      await m.settled();
    };
    return { m, state, append };
  }

  it('counts the log once, moves nothing before a generation waits, then the whole log up to its newest seq, slice by slice', async () => {
    const { m, state, append } = mover(30);
    await append(50);
    assert.equal(state.counts, 1, 'counted at the first append');
    assert.equal(state.slices.length, 0, '80 rows: no generation yet');
    // Rows arriving while the generation moves wait for the next one.
    state.duringSlice = () => {
      state.log.push({ seq: state.nextSeq++, device: 'arrived-meanwhile' });
      m.appended(1);
    };
    await append(30);
    assert.equal(state.slices.length, LOG_DEVICE_RANGES.length + 1, 'one generation, every slice');
    assert.ok(
      state.slices.every((r) => r.upTo === 110),
      'up to the newest seq when it started',
    );
    assert.equal(
      state.moved.reduce((a, b) => a + b, 0),
      110,
    );
    assert.deepEqual(
      state.log.map((r) => r.device),
      ['arrived-meanwhile'],
    );
    assert.deepEqual(m.stats, { movedRows: 110, generations: 1, slices: 8, failures: 0, longestSliceMs: 1, sliceMs: 8 });
    await append(98);
    assert.equal(m.stats.generations, 1, '99 rows wait (the one that arrived meanwhile counted)');
    await append(1);
    assert.equal(m.stats.generations, 2);
    assert.equal(state.log.length, 0);
    assert.equal(state.counts, 1, 'no count while the figures agree');
  });

  it('a generation that moves less than counted (readings erased meanwhile) has the log counted again', async () => {
    const { m, state, append } = mover(0);
    await append(60);
    state.log = state.log.slice(50); // 50 erased behind the mover's back: it still counts 60
    await append(40);
    assert.equal(m.stats.generations, 1, 'believed 100: the generation moved the 50 there were');
    assert.equal(m.stats.movedRows, 50);
    assert.equal(state.counts, 2, 'then counted again');
    await append(60);
    assert.equal(m.stats.generations, 1, '60 rows');
    await append(40);
    assert.equal(m.stats.generations, 2);
  });

  it('a failed slice is reported, not retried before the pause, and its rows wait in the log', async () => {
    const { m, state, append } = mover(0);
    state.fail = true;
    await append(150);
    assert.equal(state.errors.length, 1);
    assert.equal(m.rowsWaiting, 150, 'what waits is still shown (/metrics) once the count is lost');
    await append(10);
    assert.equal(state.errors.length, 1, 'within the pause: not tried again');
    assert.equal(m.rowsWaiting, 160, 'and rises with what is appended');
    state.fail = false;
    state.now = 1000;
    await append(1);
    assert.equal(m.stats.movedRows, 161, 'after it, all that waits moves');
    assert.equal(m.stats.failures, 1);
    assert.equal(state.log.length, 0);
  });

  it('stop waits for the slice under way and starts no other', async () => {
    let release!: () => void;
    let started = 0;
    const m = new TelemetryLogMover(
      {
        async moveSlice() {
          started++;
          await new Promise<void>((resolve) => (release = resolve));
          return { moved: 10, ms: 1 };
        },
        count: async () => 1000,
        lastSeq: async () => 1000,
      },
      { generationRows: 100, retryMs: 1000, now: () => 0 },
    );
    m.appended(1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(started, 1);
    let stopped = false;
    const stopping = m.stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(stopped, false, 'waits for the slice');
    release();
    await stopping;
    m.appended(100);
    await m.settled();
    assert.equal(started, 1, 'no slice after stop');
  });
});

let n = 0;
/** Device names whose first characters fall in several slices of a generation. */
const deviceName = (i: number) => `${'05af'[i % 4]}-dev-log-${i}`;
/** Rows of `devices` devices interleaved, several at the same millisecond (the keyset's tie-break is seq). */
function fleetRows(count: number, devices: number): TelemetryRow[] {
  return Array.from({ length: count }, () => {
    n++;
    return {
      organization_id: 'org-log',
      device_id: deviceName(n % devices),
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
    const store = new TelemetryStore(handle.db, 'sqlite', undefined, { generationRows: 40 });
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
      assert.ok(logged.length < 40, `less than a generation waits in the log (${logged.length})`);
      for (const device of [deviceName(0), deviceName(3)]) await readsMatch(store, written, device);
    }
    assert.ok(sawBoth, 'the reads were checked while rows were in both tables');
    const all = [...(await inTable('telemetry')), ...(await inTable('telemetry_log'))].sort((a, b) => a.seq - b.seq);
    assert.deepEqual(
      all.map((r) => r.data),
      written.map((r) => r.data),
      'seq follows the order written, across the move',
    );
    assert.equal(store.logMover!.stats.failures, 0);
    assert.ok(store.logMover!.stats.generations >= 3, `${store.logMover!.stats.generations} generations`);
    // The fleet page's rate reads both tables too.
    const perMinute = await store.readingsPerMinute('org-log', 0, Number.MAX_SAFE_INTEGER);
    assert.equal(
      perMinute.reduce((sum, m) => sum + m.readings, 0),
      written.length,
    );
  });

  it('retention and erasure delete from the log and the stored rows, at most `limit` a call', async () => {
    const store = new TelemetryStore(handle.db, 'sqlite', undefined, { generationRows: 20 });
    const device = 'dev-log-erase';
    const rows = fleetRows(45, 1).map((r, i) => ({ ...r, device_id: device, ts: 1_700_000_000_000 + i }));
    await store.insertBatch(rows.slice(0, 30)); // a generation: moved
    await store.logMover!.settled();
    await store.insertBatch(rows.slice(30)); // 15: wait in the log
    await store.logMover!.settled();
    const inLog = async () => (await inTable('telemetry_log')).filter((r) => r.device_id === device).length;
    assert.equal(await inLog(), 15, 'rows in both tables');
    assert.equal(await store.countOlderThan([device], 1_700_000_000_000 + 40), 40);
    assert.equal(await store.deleteOlderThan([device], 1_700_000_000_000 + 40, 30), 30, 'at most the limit');
    assert.equal(await store.deleteOlderThan([device], 1_700_000_000_000 + 40, 30), 10, 'the rest');
    assert.equal(await store.count(device), 5);
    assert.equal(await store.deleteSince(device, 1_700_000_000_000 + 42), 3);
    assert.deepEqual(
      (await store.range(device, 0, Number.MAX_SAFE_INTEGER, 100)).map((r) => Number(r.ts) - 1_700_000_000_000),
      [40, 41],
    );
  });

  it('through the writer thread: batches and moves interleave in turns, nothing is lost or doubled', async () => {
    const store = new TelemetryStore(handle.db, 'sqlite', undefined, { generationRows: 100 });
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
