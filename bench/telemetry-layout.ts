/**
 * Where a stored telemetry row's cost goes on SQLite, and what a layout that does not dirty an
 * index page per row would cost instead: the store alone (better-sqlite3, no broker, no TLS), rows
 * of --devices devices interleaved as a fleet sends them, committed in batches of --batch rows (the
 * open loop's batches hold 15-170; the closed loop's about 1,700).
 *
 * - `indexed` (today's layout): one rowid table with the (device_id, ts) index (ending with the
 *   rowid, `seq`) and the received_at index. Rows of distinct devices land in distinct leaf pages
 *   of the device index, so a commit of N rows writes about N pages to the WAL.
 * - `log`: a hot log with no index takes the inserts (appended, a few pages a commit), and every
 *   --move rows the log is closed (writes go to a second log, its other generation) and moved into
 *   the stored table in device order, one transaction per slice of --slices device ranges, the
 *   closed log emptied once it has moved (one statement, no row visited). With --partitioned each
 *   generation is --slices tables, one per device range, so a slice reads its own table only (one
 *   log table: each slice scans the whole closed log for its range). Queries would read the stored
 *   table and, for the device asked, the rows of its logs not moved yet (at most 2 × --move rows
 *   in all). What it costs: each row written twice, appended and then in device order, where a
 *   device's rows of a whole move share its leaf page.
 * - --clustered makes the stored table a WITHOUT ROWID table keyed by (device_id, ts, seq) (one
 *   b-tree, in device order; today's is a rowid table plus the device index), in both layouts;
 *   --no-received leaves out the received_at index. --order seq moves each slice as a range of seq
 *   copied in seq order instead of a range of devices; --cache is the connection's page cache in
 *   KiB (SQLite's default 2,000; the server's writer thread keeps 65,536).
 *
 * Printed per layout: CPU per row (inserts, moves and checkpoints, all on this thread), the WAL
 * written per row, and the longest transaction (a stall: every batch behind it waits), beside the
 * longest insert batch alone. The WAL is checkpointed (PASSIVE) every 250 ms and restarted past
 * 3,000 frames, as the server does (storage/wal-checkpointer.ts), and the checkpoint's copies are
 * counted in the CPU.
 *
 *   npm run bench:telemetry-layout -- [--devices 1000] [--rows 200000] [--prefill 300000] [--batch 30] [--move 20000] [--slices 8]
 *                                     [--partitioned] [--clustered] [--no-received] [--order device|seq] [--cache 2000] [--rounds 2]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { machine, table } from './support/measure.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    rows: { type: 'string', default: '200000' },
    prefill: { type: 'string', default: '300000' },
    batch: { type: 'string', default: '30' },
    move: { type: 'string', default: '20000' },
    slices: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '2' },
    clustered: { type: 'boolean', default: false },
    'no-received': { type: 'boolean', default: false },
    partitioned: { type: 'boolean', default: false },
    order: { type: 'string', default: 'device' },
    cache: { type: 'string', default: '2000' },
  },
});
const { clustered, 'no-received': noReceived, partitioned, order, ...numeric } = values;
if (order !== 'device' && order !== 'seq') throw new Error('--order must be device or seq');
if (order === 'seq' && partitioned) throw new Error('--order seq moves one log table by ranges of seq: not with --partitioned');
const options = Object.fromEntries(Object.entries(numeric).map(([k, v]) => [k, Number(v)])) as Record<keyof typeof numeric, number>;
for (const [name, n] of Object.entries(options)) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
}
if (options.slices < 2) throw new Error('--slices must be at least 2');
/** Log tables per generation: one per slice with --partitioned, else one. */
const partitions = partitioned ? options.slices : 1;

type Layout = 'indexed' | 'log';
const COLUMNS =
  'organization_id text not null, device_id text not null, ts integer not null, received_at integer not null, data text not null';
const ORG = '6f1c8a52-7d3e-4b8f-9a41-2c5e7d9b0a13';
const deviceIds = Array.from(
  { length: options.devices },
  (_, i) => `${(i * 2654435761) % 2 ** 32}`.padStart(10, '0') + '-4b8f-9a41-2c5e7d9b0a13',
);
const boundaries = [...deviceIds].sort();

function open(dir: string) {
  const db = new Database(join(dir, 'bench.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 0');
  db.pragma(`cache_size = -${options.cache}`);
  if (clustered) db.exec(`create table telemetry (seq integer not null, ${COLUMNS}, primary key (device_id, ts, seq)) without rowid`);
  else {
    db.exec(`create table telemetry (seq integer primary key, ${COLUMNS})`);
    db.exec('create index telemetry_device_ts on telemetry (device_id, ts)');
  }
  if (!noReceived) db.exec('create index telemetry_received on telemetry (received_at)');
  for (const g of ['a', 'b'])
    for (let p = 0; p < partitions; p++) db.exec(`create table telemetry_log_${g}_${p} (seq integer primary key, ${COLUMNS})`);
  return db;
}

function insertStatement(db: Database.Database, into: string, n: number) {
  return db.prepare(
    `insert into ${into} (seq, organization_id, device_id, ts, received_at, data) values ${Array.from({ length: n }, () => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
  );
}

async function round(layout: Layout): Promise<(string | number)[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-telemetry-layout-'));
  const db = open(dir);
  try {
    let seq = 0;
    let ts = 1_765_000_000_000;
    const row = (i: number) => {
      seq++;
      if (i % options.devices === 0) ts += 100;
      return [
        seq,
        ORG,
        deviceIds[i % options.devices]!,
        ts,
        ts,
        `{"temperature":${(20 + (seq % 100) / 10).toFixed(1)},"humidity":${40 + (seq % 30)}}`,
      ];
    };
    // The history already stored: prefill rows in device order per chunk, as a long-running node's table holds them.
    const prefill = insertStatement(db, 'telemetry', 100);
    db.transaction(() => {
      for (let i = 0; i < options.prefill; i += 100) prefill.run(Array.from({ length: 100 }, (_, k) => row(i + k)).flat());
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
    const walFile = join(dir, 'bench.db-wal');

    // The logs: two generations (one takes the writes while the other moves), each of
    // `partitions` tables by device range (1: one table, its slices read by range).
    const generations = ['a', 'b'].map((g) => Array.from({ length: partitions }, (_, p) => `telemetry_log_${g}_${p}`));
    let current = 0;
    const statements = new Map<string, Database.Statement>();
    const insertBatch = (into: string, rows: unknown[][]) => {
      const key = `${into}/${rows.length}`;
      let statement = statements.get(key);
      if (!statement) statements.set(key, (statement = insertStatement(db, into, rows.length)));
      statement.run(rows.flat());
    };
    const slices = Array.from({ length: options.slices }, (_, s) => boundaries[Math.floor((s * boundaries.length) / options.slices)]!);
    const partitionOf = new Map(deviceIds.map((id) => [id, partitions === 1 ? 0 : slices.findLastIndex((b) => b <= id)]));
    const moveSlice = new Map<string, Database.Statement>();
    /** Moves slice `s` of a closed log generation: its own table when partitioned, else its device range of the one table. */
    const moveOf = (log: string[], s: number) => {
      if (order === 'seq') {
        // Slice s of the closed log's seq span, copied in seq order (the server's log-mover.ts moves the oldest rows so).
        let statement = moveSlice.get(`${log[0]}/seq`);
        if (!statement) {
          statement = db.prepare(
            `insert into telemetry (seq, organization_id, device_id, ts, received_at, data)
             select seq, organization_id, device_id, ts, received_at, data from ${log[0]} where seq >= ? and seq < ? order by seq`,
          );
          moveSlice.set(`${log[0]}/seq`, statement);
        }
        const span = db.prepare(`select min(seq) as low, max(seq) + 1 as high from ${log[0]}`).get() as { low: number; high: number };
        const step = Math.ceil((span.high - span.low) / options.slices);
        return () => statement.run(span.low + s * step, Math.min(span.high, span.low + (s + 1) * step));
      }
      const key = `${log[0]}/${s}`;
      let statement = moveSlice.get(key);
      if (!statement) {
        const range =
          partitions > 1
            ? ''
            : s === 0
              ? 'where device_id < ?'
              : s === options.slices - 1
                ? 'where device_id >= ?'
                : 'where device_id >= ? and device_id < ?';
        statement = db.prepare(
          `insert into telemetry (seq, organization_id, device_id, ts, received_at, data)
           select seq, organization_id, device_id, ts, received_at, data from ${log[partitions > 1 ? s : 0]}
           ${range} order by device_id, ts, seq`,
        );
        moveSlice.set(key, statement);
      }
      const bounds = partitions > 1 ? [] : s === 0 ? [slices[1]] : s === options.slices - 1 ? [slices[s]] : [slices[s], slices[s + 1]];
      return () => statement.run(...bounds);
    };

    let longestBatch = 0;
    let longestMove = 0;
    let longestCheckpoint = 0;
    let moves = 0;
    let walBytes = 0;
    let lastCheckpoint = performance.now();
    const checkpoint = () => {
      const t = performance.now();
      const [result] = db.pragma('wal_checkpoint(PASSIVE)') as { log: number; checkpointed: number }[];
      if (result && result.log >= 3000 && result.checkpointed === result.log) {
        walBytes += statSync(walFile).size;
        db.pragma('wal_checkpoint(RESTART)');
      }
      longestCheckpoint = Math.max(longestCheckpoint, performance.now() - t);
      lastCheckpoint = performance.now();
    };
    let inLog = 0;
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    for (let i = 0; i < options.rows; i += options.batch) {
      const rows = Array.from({ length: Math.min(options.batch, options.rows - i) }, (_, k) => row(options.prefill + i + k));
      const t = performance.now();
      db.transaction(() => {
        if (layout === 'indexed') return insertBatch('telemetry', rows);
        if (partitions === 1) return insertBatch(generations[current]![0]!, rows);
        const parts = new Map<number, unknown[][]>();
        for (const r of rows) {
          const p = partitionOf.get(r[2] as string)!;
          const part = parts.get(p);
          if (part) part.push(r);
          else parts.set(p, [r]);
        }
        for (const [p, part] of parts) insertBatch(generations[current]![p]!, part);
      })();
      longestBatch = Math.max(longestBatch, performance.now() - t);
      if (layout === 'log' && (inLog += rows.length) >= options.move) {
        // Close the log: writes go to the other generation, and this one moves slice by slice,
        // each table emptied (one statement, no row visited) once what it holds has moved.
        const closed = generations[current]!;
        current = 1 - current;
        inLog = 0;
        moves++;
        for (let s = 0; s < options.slices; s++) {
          const m = performance.now();
          db.transaction(() => {
            moveOf(closed, s)();
            if (partitions > 1) db.prepare(`delete from ${closed[s]}`).run();
            else if (s === options.slices - 1) db.prepare(`delete from ${closed[0]}`).run();
          })();
          longestMove = Math.max(longestMove, performance.now() - m);
          // Batches arriving meanwhile would be written between slices.
          if (performance.now() - lastCheckpoint >= 250) checkpoint();
        }
      }
      if (performance.now() - lastCheckpoint >= 250) checkpoint();
    }
    const cpu = process.cpuUsage(cpu0);
    const wall = performance.now() - wall0;
    walBytes += statSync(walFile).size;
    const stored = (db.prepare('select count(*) as n from telemetry').get() as { n: number }).n;
    const logged = generations
      .flat()
      .reduce((sum, log) => sum + (db.prepare(`select count(*) as n from ${log}`).get() as { n: number }).n, 0);
    if (stored + logged !== options.prefill + options.rows)
      throw new Error(`${layout}: ${stored} + ${logged} rows, expected ${options.prefill + options.rows}`);
    return [
      layout,
      options.batch,
      ((cpu.user + cpu.system) / options.rows).toFixed(2),
      ((wall * 1000) / options.rows).toFixed(2),
      (walBytes / options.rows / 1024).toFixed(2),
      longestBatch.toFixed(1),
      layout === 'log' ? `${longestMove.toFixed(1)} (${moves} moves × ${options.slices})` : '-',
      longestCheckpoint.toFixed(1),
    ];
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `bench:telemetry-layout — ${machine()}; the stored table ${clustered ? 'clustered by (device_id, ts, seq), without rowid' : 'a rowid table with the (device_id, ts) index'}${noReceived ? ', no received_at index' : ''}${partitioned ? `; the log in ${partitions} tables by device range` : ''}; ${options.devices} devices interleaved, ${options.rows} rows in batches of ${options.batch} over ${options.prefill} stored; log moves every ${options.move} rows in ${options.slices} slices; load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
const rows: (string | number)[][] = [];
for (let r = 0; r < options.rounds; r++)
  for (const layout of (r % 2 === 0 ? ['indexed', 'log'] : ['log', 'indexed']) as Layout[]) rows.push(await round(layout));
table(
  ['layout', 'batch', 'CPU µs/row', 'wall µs/row', 'WAL KiB/row', 'longest batch ms', 'longest move slice ms', 'longest checkpoint ms'],
  rows,
);
