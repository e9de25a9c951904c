/**
 * SQLite telemetry batches written on the event loop (the store's own connection: what CLI commands
 * do, and the baseline) against the running server's worker thread (telemetry/batch-worker.ts), the
 * store alone: no broker, no TLS. Rows of 1,000 devices interleaved, in batches of --batch rows, one
 * event-loop turn between batches as the ingest writer leaves. Printed per round, alternating the
 * order: process CPU per row (both threads), wall time per row, and the event-loop delay while
 * writing. --main-writes N adds a write of another table on the main connection every N ms (the
 * quota's usage rows): it waits, synchronously, whenever the worker holds the write lock.
 *
 *   npm run bench:telemetry-writer -- [--rows 60000] [--batch 1500] [--rounds 2] [--main-writes 0]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { openDatabase } from '../packages/server/src/storage/database.js';
import { migrateToLatest } from '../packages/server/src/storage/migrate.js';
import { SqliteBatchWorker } from '../packages/server/src/telemetry/batch-worker.js';
import { TelemetryStore, type TelemetryRow } from '../packages/server/src/telemetry/store.js';
import { machine, table } from './support/measure.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '60000' },
    batch: { type: 'string', default: '1500' },
    rounds: { type: 'string', default: '2' },
    'main-writes': { type: 'string', default: '0' },
  },
});
const rowCount = Number(values.rows);
const batchSize = Number(values.batch);
const rounds = Number(values.rounds);
const mainWriteMs = Number(values['main-writes']);
for (const [name, n] of Object.entries({ rows: rowCount, batch: batchSize, rounds })) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
}
if (!Number.isInteger(mainWriteMs) || mainWriteMs < 0) throw new Error('--main-writes must be a whole number of milliseconds (0: none)');

const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

type Mode = 'event loop' | 'worker';

async function round(mode: Mode): Promise<(string | number)[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-telemetry-writer-'));
  const handle = openDatabase({ url: 'sqlite', dataDir: dir });
  try {
    await migrateToLatest(handle);
    const store = new TelemetryStore(handle.db, 'sqlite');
    const worker =
      mode === 'worker'
        ? await SqliteBatchWorker.start(handle.file!, { error: (details) => console.error(details) }, handle.writeTurns ?? null)
        : null;
    if (worker) store.writeBatchesWith(worker);
    let mainWrites = 0;
    const writeMain = () =>
      void store.addUsage([{ deviceId: 'dev-main', organizationId: 'org', day: 1, readings: 1, bytes: 1 }]).then(() => mainWrites++);
    const mainWriter = mainWriteMs > 0 ? setInterval(writeMain, mainWriteMs) : null;
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let n = 0; n < rowCount;) {
      const rows: TelemetryRow[] = [];
      for (let i = 0; i < batchSize && n < rowCount; i++, n++)
        rows.push({
          organization_id: 'f3b0c5e2-7c1a-4a4e-9d3b-1c2d3e4f5a6b',
          // Spread over the ID space as the random UUIDs devices get (the log's moves slice by the first hex digit).
          device_id: `${((((n * 7919) % 1000) * 2654435761) >>> 0).toString(16).padStart(8, '0')}-dev`,
          ts: 1_764_000_000_000 + n,
          received_at: 1_764_000_000_000 + n,
          data: '{"temperature":21.5,"humidity":40}',
        });
      await store.insertBatch(rows);
      await new Promise((resolve) => setImmediate(resolve));
    }
    // The log's moves under way (telemetry/log-mover.ts) are part of what the rows cost.
    await store.logMover?.settled();
    const wall = performance.now() - started;
    const used = process.cpuUsage(cpu);
    delay.disable();
    if (mainWriter) clearInterval(mainWriter);
    await worker?.stop();
    const ms = (ns: number) => (ns / 1e6).toFixed(1);
    return [
      mode,
      ((used.user + used.system) / rowCount).toFixed(1),
      (used.system / rowCount).toFixed(1),
      ((wall * 1000) / rowCount).toFixed(1),
      `${ms(delay.percentile(50))} / ${ms(delay.percentile(99))} / ${ms(delay.max)}`,
      mainWriteMs > 0 ? mainWrites : '-',
      load(),
    ];
  } finally {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`bench:telemetry-writer — ${machine()}; load average ${load()} at start`);
console.log(
  `${rowCount} rows of 1,000 devices a round, ${batchSize} rows a batch${mainWriteMs > 0 ? `, a main-connection write every ${mainWriteMs} ms` : ''}`,
);
const results: (string | number)[][] = [];
for (let r = 0; r < rounds; r++) {
  const order: Mode[] = r % 2 === 0 ? ['event loop', 'worker'] : ['worker', 'event loop'];
  for (const mode of order) results.push(await round(mode));
}
table(
  [
    'batches written on',
    'CPU µs/row',
    'of which system',
    'wall µs/row',
    'event-loop delay p50 / p99 / max ms',
    'main writes',
    'load average',
  ],
  results,
);
