/**
 * Backup and restore throughput: fills a node with telemetry (default 1,000,000 readings across
 * 1,000 devices), then times `bulwark backup create` (consistent copy, table digests, tar,
 * AES-256-GCM, signature) and `bulwark restore` (decrypt, verify every hash and the signature,
 * place the files, load the database) beside the bare tool on the same data in the same run:
 * `sqlite3 .backup` / `pg_dump -Fc` and `sqlite3 .restore` / `pg_restore`.
 *
 *   node --conditions=source --import tsx bench/backup.ts [--pg] [--rows 1000000]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createBackup, sqliteFile } from '../packages/server/src/ops/backup/create.js';
import { createBackupKeyFile } from '../packages/server/src/ops/backup/envelope.js';
import { deploymentOf, restoreBackup } from '../packages/server/src/ops/backup/restore.js';
import { createEmptyDatabase, dropDatabase } from '../packages/server/src/testing/engines.js';
import { machine, table } from './support/measure.js';
import { startBenchPlatform } from './support/platform.js';

const { values } = parseArgs({ options: { pg: { type: 'boolean', default: false }, rows: { type: 'string', default: '1000000' } } });
const ROWS = Number(values.rows);
const DEVICES = 1000;

const bench = await startBenchPlatform({ postgres: values.pg ?? false });
const scratch = mkdtempSync(join(tmpdir(), 'bulwark-bench-backup-'));
const databases: string[] = [];
try {
  const { platform, admin } = bench;
  const product = await platform.devices.service.createProduct(admin, { name: 'Meter' });
  const ids: string[] = [];
  for (let i = 0; i < DEVICES; i++)
    ids.push((await platform.devices.service.register(admin, { serial: `B-${i}`, productId: product.id })).id);
  const now = Date.now();
  for (let start = 0; start < ROWS; start += 10_000) {
    const rows = [];
    for (let i = start; i < Math.min(start + 10_000, ROWS); i++) {
      rows.push({
        organization_id: admin.organizationId,
        device_id: ids[i % DEVICES]!,
        ts: now - (ROWS - i) * 1000,
        received_at: now,
        data: JSON.stringify({ temperature: 20 + (i % 100) / 10, humidity: 40 + (i % 37) }),
      });
    }
    await platform.telemetry.store.insertBatch(rows);
  }

  const key = join(scratch, 'backup.key');
  createBackupKeyFile(key);
  const newDatabase = async (): Promise<string> => {
    const { name, url } = await createEmptyDatabase('bulwark_bench_r');
    databases.push(name);
    return url;
  };
  const timed = async (fn: () => unknown): Promise<number> => {
    const started = performance.now();
    await fn();
    return (performance.now() - started) / 1000;
  };

  const archive = join(scratch, 'node.bwb');
  const ours = await timed(() =>
    createBackup({ config: platform.config, box: platform.box, token: null }, { out: archive, key: { kind: 'key-file', path: key } }),
  );
  const bare = join(scratch, bench.engine === 'sqlite' ? 'bare.db' : 'bare.pgc');
  const bareTime = await timed(() =>
    bench.engine === 'sqlite'
      ? execFileSync('sqlite3', [sqliteFile(platform.config), `.backup '${bare}'`])
      : execFileSync('pg_dump', ['--format=custom', '--file', bare, platform.config.database.url]),
  );
  const restoreTarget = join(scratch, 'restored');
  const restoreUrl = bench.engine === 'postgres' ? await newDatabase() : undefined;
  const oursRestore = await timed(() =>
    restoreBackup({
      archive,
      key: { kind: 'key-file', path: key },
      deployment: deploymentOf(platform.config.dataDir),
      dataDir: restoreTarget,
      ...(restoreUrl ? { databaseUrl: restoreUrl } : {}),
    }),
  );
  const bareRestoreUrl = bench.engine === 'postgres' ? await newDatabase() : undefined;
  const bareRestore = await timed(() =>
    bench.engine === 'sqlite'
      ? execFileSync('sqlite3', [join(scratch, 'bare-restored.db'), `.restore '${bare}'`])
      : execFileSync('pg_restore', ['--no-owner', '--single-transaction', '--dbname', bareRestoreUrl!, bare]),
  );

  const mib = (file: string): number => statSync(file).size / 1024 / 1024;
  console.log(`\nbackup and restore, ${bench.engine}, ${ROWS.toLocaleString()} telemetry rows, ${DEVICES} devices — ${machine()}`);
  table(
    ['operation', 'seconds', 'MiB', 'MiB/s', 'bare tool s', 'bare MiB', 'ratio (time)'],
    [
      ['backup create', ours, mib(archive), mib(archive) / ours, bareTime, mib(bare), ours / bareTime],
      ['restore', oursRestore, mib(archive), mib(archive) / oursRestore, bareRestore, mib(bare), oursRestore / bareRestore],
    ],
  );
  console.log(
    `bare tool: ${bench.engine === 'sqlite' ? 'sqlite3 .backup / .restore' : 'pg_dump -Fc / pg_restore --single-transaction'}; ours adds table digests, tar, AES-256-GCM, signature and (restore) hash checks`,
  );
} finally {
  await bench.close();
  for (const name of databases) await dropDatabase(name).catch(() => undefined);
  rmSync(scratch, { recursive: true, force: true });
}
