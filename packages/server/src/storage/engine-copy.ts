/**
 * Copies a SQLite database into an empty PostgreSQL database: how a deployment that started on the
 * embedded default moves to PostgreSQL (`bulwark restore` of a SQLite backup with `--database`).
 *
 * 1. The target gets the schema from the platform's own migrations, up to the migration the copied
 *    database had (never further: the next start migrates on, as after any restore).
 * 2. One transaction copies every table, column by name (the engines order some columns
 *    differently), in multi-row INSERTs. The foreign keys are dropped for the copy and added again
 *    before the commit, which checks every row against them; identity sequences continue after the
 *    copied values.
 * 3. Before the commit, every table's rows are read back and compared with the source: the same
 *    count and the same digest. The digest is engine-neutral: each row as its columns sorted by
 *    name, the rows summed as SHA-256 values modulo 2^256 (order-free, so neither engine's sort
 *    order matters).
 *
 * If anything fails, the transaction rolls back and the migrated schema is dropped again: the
 * target is left as empty as it was found.
 */
import { createHash } from 'node:crypto';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { BulwarkError } from '../errors.js';
import { ErrorCodes } from '@bulwark/protocol';
import { openDatabase, PG_TYPES } from './database.js';
import { migrateTo } from './migrate.js';

/** Rows per INSERT (PostgreSQL takes at most 65,535 parameters per statement). */
const ROWS_PER_INSERT = 500;
const FETCH_ROWS = 2000;
const BOOKKEEPING = new Set(['kysely_migration', 'kysely_migration_lock']);
/**
 * SQLite keeps telemetry in two tables, the stored rows and the log not moved yet
 * (migrations/034_telemetry_log.ts); PostgreSQL in one. The copy reads both through the view every
 * query reads, into `telemetry`.
 */
const SQLITE_TELEMETRY_LOG = 'telemetry_log';
const SQLITE_TELEMETRY_READINGS = 'telemetry_readings';

export interface CopiedTable {
  rows: number;
  /** The engine-neutral digest both sides agreed on (hex). */
  digest: string;
}

export interface EngineCopyReport {
  migration: string;
  tables: Record<string, CopiedTable>;
  rows: number;
}

const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;
const MOD = 1n << 256n;

/** An order-free digest of a table's rows: each row's SHA-256 summed modulo 2^256. */
class RowSum {
  private sum = 0n;
  rows = 0;
  add(row: Record<string, unknown>, columns: string[]): void {
    this.rows++;
    const canonical = JSON.stringify(columns.map((column) => canonicalValue(row[column])));
    this.sum = (this.sum + BigInt(`0x${createHash('sha256').update(canonical).digest('hex')}`)) % MOD;
  }
  get digest(): string {
    return this.sum.toString(16).padStart(64, '0');
  }
}

function canonicalValue(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Buffer.isBuffer(value)) return `base64:${value.toString('base64')}`;
  return value;
}

function failed(message: string, cause?: unknown): BulwarkError {
  return new BulwarkError(
    ErrorCodes.backupCopyFailed,
    message,
    500,
    cause === undefined ? {} : { cause: String((cause as Error).message ?? cause) },
  );
}

/**
 * Copies the SQLite file `sqliteFile` (as of migration `migration`) into the PostgreSQL database
 * at `url`, which must hold no table. Throws `backup.copy_failed` and leaves the target empty when
 * anything goes wrong.
 */
export async function copySqliteIntoPostgres(sqliteFile: string, url: string, migration: string): Promise<EngineCopyReport> {
  const handle = openDatabase({ url, dataDir: '.' });
  try {
    await migrateTo(handle, migration);
  } catch (error) {
    await handle.close();
    await dropCreatedTables(url);
    throw error instanceof BulwarkError ? error : failed(`Preparing the schema in the target failed: ${(error as Error).message}`, error);
  }
  await handle.close();

  const source = new SQLite(sqliteFile, { readonly: true, fileMustExist: true });
  // Values read as the platform reads them (int8 as numbers).
  const client = new pg.Client({ connectionString: url, types: PG_TYPES });
  await client.connect();
  try {
    await client.query('begin');
    const report = await copyTables(source, client, migration);
    await client.query('commit');
    return report;
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    await client.end().catch(() => undefined);
    await dropCreatedTables(url);
    throw error instanceof BulwarkError ? error : failed(`Copying into PostgreSQL failed: ${(error as Error).message}`, error);
  } finally {
    source.close();
    await client.end().catch(() => undefined);
  }
}

async function copyTables(source: SQLite.Database, client: pg.Client, migration: string): Promise<EngineCopyReport> {
  const names = source
    .prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name")
    .pluck()
    .all() as string[];
  const hasLog = names.includes(SQLITE_TELEMETRY_LOG);
  const sourceTables = names.filter((name) => !BOOKKEEPING.has(name) && name !== SQLITE_TELEMETRY_LOG);
  const readFrom = (table: string) => (table === 'telemetry' && hasLog ? SQLITE_TELEMETRY_READINGS : table);
  const targetColumns = await columnsOf(client);
  const missing = sourceTables.filter((table) => !targetColumns.has(table));
  const extra = [...targetColumns.keys()].filter((table) => !BOOKKEEPING.has(table) && !sourceTables.includes(table));
  if (missing.length > 0 || extra.length > 0) {
    throw failed(
      `The schemas differ after migrating to ${migration}: ${[...missing.map((t) => `${t} only in the backup`), ...extra.map((t) => `${t} only in PostgreSQL`)].join(', ')}`,
    );
  }

  const foreignKeys = await client.query<{ table: string; name: string; definition: string }>(
    `select conrelid::regclass::text as table, conname as name, pg_get_constraintdef(oid) as definition
       from pg_constraint where contype = 'f' and connamespace = current_schema()::regnamespace`,
  );
  for (const key of foreignKeys.rows) await client.query(`alter table ${key.table} drop constraint ${quote(key.name)}`);

  const tables: Record<string, CopiedTable> = {};
  let total = 0;
  for (const table of sourceTables) {
    const sourceColumns = (source.prepare('select name from pragma_table_info(?) order by name').pluck().all(table) as string[]).sort();
    const columns = targetColumns.get(table)!;
    if (sourceColumns.join(',') !== columns.map((c) => c.name).join(',')) {
      throw failed(
        `The columns of ${table} differ: backup (${sourceColumns.join(', ')}), PostgreSQL (${columns.map((c) => c.name).join(', ')})`,
      );
    }
    const names = columns.map((c) => c.name);
    const sent = new RowSum();
    let batch: unknown[][] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const values: unknown[] = [];
      const tuples = batch.map((row) => `(${row.map((value) => `$${values.push(value)}`).join(', ')})`);
      await client.query(
        `insert into ${quote(table)} (${names.map(quote).join(', ')}) overriding system value values ${tuples.join(', ')}`,
        values,
      );
      batch = [];
    };
    for (const row of source.prepare(`select ${names.map(quote).join(', ')} from ${quote(readFrom(table))}`).iterate() as Iterable<
      Record<string, unknown>
    >) {
      sent.add(row, names);
      batch.push(names.map((name) => row[name]));
      if (batch.length === ROWS_PER_INSERT) await flush();
    }
    await flush();
    for (const column of columns.filter((c) => c.identity))
      await client.query(
        `select setval(pg_get_serial_sequence($1, $2), coalesce((select max(${quote(column.name)}) from ${quote(table)}), 0) + 1, false)`,
        [table, column.name],
      );
    const stored = await readBack(client, table, names);
    if (stored.rows !== sent.rows || stored.digest !== sent.digest) {
      throw failed(`${table}: ${sent.rows} rows sent, ${stored.rows} read back${stored.rows === sent.rows ? ' with other values' : ''}`);
    }
    tables[table] = { rows: sent.rows, digest: sent.digest };
    total += sent.rows;
  }

  for (const key of foreignKeys.rows) await client.query(`alter table ${key.table} add constraint ${quote(key.name)} ${key.definition}`);
  return { migration, tables, rows: total };
}

interface TargetColumn {
  name: string;
  identity: boolean;
}

/** Every table of the target's schema with its columns, sorted by name. */
async function columnsOf(client: pg.Client): Promise<Map<string, TargetColumn[]>> {
  const { rows } = await client.query<{ table: string; column: string; identity: string }>(
    `select table_name as table, column_name as column, is_identity as identity
       from information_schema.columns where table_schema = current_schema()
         and table_name in (select table_name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE')
       order by table_name, column_name`,
  );
  const tables = new Map<string, TargetColumn[]>();
  for (const row of rows) {
    const columns = tables.get(row.table) ?? [];
    columns.push({ name: row.column, identity: row.identity === 'YES' });
    tables.set(row.table, columns);
  }
  for (const columns of tables.values()) columns.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return tables;
}

async function readBack(client: pg.Client, table: string, names: string[]): Promise<RowSum> {
  const sum = new RowSum();
  await client.query(`declare copy_check no scroll cursor for select ${names.map(quote).join(', ')} from ${quote(table)}`);
  for (;;) {
    const batch = await client.query<Record<string, unknown>>(`fetch ${FETCH_ROWS} from copy_check`);
    for (const row of batch.rows) sum.add(row, names);
    if (batch.rows.length < FETCH_ROWS) break;
  }
  await client.query('close copy_check');
  return sum;
}

/** Drops what the migrations created in a target that held no table before: it is left as found. */
async function dropCreatedTables(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>('select tablename as name from pg_tables where schemaname = current_schema()');
    if (rows.length > 0) await client.query(`drop table ${rows.map((r) => quote(r.name)).join(', ')} cascade`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
