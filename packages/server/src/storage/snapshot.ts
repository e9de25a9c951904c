/**
 * Consistent copies of the database for backups, and a digest of every table that proves a
 * restore brought back exactly what was copied.
 *
 * - SQLite: `VACUUM INTO` copies the database in one read transaction, so writers go on (WAL
 *   mode) and the copy is one consistent moment; the digests are then read from the copy.
 * - PostgreSQL: a REPEATABLE READ transaction exports its snapshot; `pg_dump` (custom format)
 *   dumps that snapshot and the digests are computed inside the same transaction, so they describe
 *   exactly the dump. Connection details reach pg_dump and pg_restore through the PG* environment,
 *   never the command line (where `ps` shows a password).
 *
 * A table's digest is its row count and the SHA-256 of its rows in a fixed order (every column,
 * ascending), each row as JSON with binary values in base64.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { BulwarkError } from '../errors.js';

export interface TableDigest {
  rows: number;
  sha256: string;
}
export type TableDigests = Record<string, TableDigest>;

export interface Snapshot {
  tables: TableDigests;
  /** The newest migration applied to the copied database. */
  migration: string | null;
}

const FETCH_ROWS = 2000;

class RowHasher {
  private readonly hash = createHash('sha256');
  rows = 0;
  add(row: unknown[]): void {
    this.rows++;
    // Most rows hold only strings, numbers and nulls: stringify those as they are (a replacer costs
    // several times more per row); binary, bigint and dates are written in one fixed form.
    const plain =
      row.every((value) => value === null || typeof value !== 'object' || Array.isArray(value)) && !row.some((v) => typeof v === 'bigint');
    this.hash.update((plain ? JSON.stringify(row) : JSON.stringify(row.map(normalize))) + '\n');
  }
  digest(): TableDigest {
    return { rows: this.rows, sha256: this.hash.digest('hex') };
  }
}

function normalize(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `base64:${Buffer.from(value).toString('base64')}`;
  if (value instanceof Date) return value.toISOString();
  return value;
}

const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** Copies the SQLite database at `file` to `destination` (which must not exist) and digests the copy. */
export function snapshotSqlite(file: string, destination: string): Snapshot {
  const source = new SQLite(file, { fileMustExist: true });
  try {
    source.pragma('busy_timeout = 30000');
    source.prepare('VACUUM INTO ?').run(destination);
  } finally {
    source.close();
  }
  const copy = new SQLite(destination, { readonly: true, fileMustExist: true });
  try {
    const migration = copy.prepare('select max(name) from kysely_migration').pluck().get() as string | null;
    return { tables: digestSqlite(destination), migration };
  } finally {
    copy.close();
  }
}

export function digestSqlite(file: string): TableDigests {
  const db = new SQLite(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db
      .prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name")
      .pluck()
      .all() as string[];
    const digests: TableDigests = {};
    for (const table of tables) {
      const columns = (db.prepare(`select count(*) from pragma_table_info(?)`).pluck().get(table) as number) || 1;
      const order = Array.from({ length: columns }, (_, i) => i + 1).join(', ');
      const hasher = new RowHasher();
      for (const row of db
        .prepare(`select * from ${quote(table)} order by ${order}`)
        .raw(true)
        .iterate())
        hasher.add(row as unknown[]);
      digests[table] = hasher.digest();
    }
    return digests;
  } finally {
    db.close();
  }
}

/** Dumps the PostgreSQL database at `url` to `destination` (pg_dump custom format) and digests the same snapshot. */
export async function snapshotPostgres(url: string, destination: string): Promise<Snapshot> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('begin isolation level repeatable read read only');
    const { rows } = await client.query<{ id: string }>('select pg_export_snapshot() as id');
    const dump = runTool(
      'pg_dump',
      ['--format=custom', '--no-owner', '--no-privileges', `--snapshot=${rows[0]!.id}`, '--file', destination],
      url,
    );
    const [tables] = await Promise.all([digestPostgresClient(client), dump]);
    const migration = await client.query<{ name: string | null }>('select max(name) as name from kysely_migration');
    await client.query('commit');
    return { tables, migration: migration.rows[0]?.name ?? null };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function digestPostgres(url: string): Promise<TableDigests> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('begin isolation level repeatable read read only');
    const digests = await digestPostgresClient(client);
    await client.query('commit');
    return digests;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function digestPostgresClient(client: pg.Client): Promise<TableDigests> {
  const tables = await client.query<{ name: string; columns: string }>(
    `select t.tablename as name, (select count(*) from information_schema.columns c
       where c.table_schema = t.schemaname and c.table_name = t.tablename) as columns
     from pg_tables t where t.schemaname = current_schema() order by t.tablename`,
  );
  const digests: TableDigests = {};
  for (const { name, columns } of tables.rows) {
    const order = Array.from({ length: Number(columns) || 1 }, (_, i) => i + 1).join(', ');
    const hasher = new RowHasher();
    await client.query(`declare digest_rows no scroll cursor for select * from ${quote(name)} order by ${order}`);
    for (;;) {
      const batch = await client.query({ text: `fetch ${FETCH_ROWS} from digest_rows`, rowMode: 'array' });
      for (const row of batch.rows as unknown[][]) hasher.add(row);
      if (batch.rows.length < FETCH_ROWS) break;
    }
    await client.query('close digest_rows');
    digests[name] = hasher.digest();
  }
  return digests;
}

/** Refuses unless the PostgreSQL database at `url` holds no table of its own: restore never merges into data. */
export async function postgresTableCount(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      "select count(*) as n from pg_tables where schemaname not in ('pg_catalog', 'information_schema')",
    );
    return Number(rows[0]!.n);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Restores a pg_dump custom-format file into the (empty) database at `url`, in one transaction. */
export async function restorePostgres(url: string, dumpFile: string): Promise<void> {
  const database = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  await runTool(
    'pg_restore',
    ['--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction', '--dbname', database, dumpFile],
    url,
  );
}

/** The PG* variables libpq reads, from a postgres:// URL. */
function libpqEnvironment(url: string): NodeJS.ProcessEnv {
  const parsed = new URL(url);
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (parsed.hostname) env.PGHOST = decodeURIComponent(parsed.hostname);
  if (parsed.port) env.PGPORT = parsed.port;
  if (parsed.username) env.PGUSER = decodeURIComponent(parsed.username);
  if (parsed.password) env.PGPASSWORD = decodeURIComponent(parsed.password);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database) env.PGDATABASE = database;
  const sslmode = parsed.searchParams.get('sslmode');
  if (sslmode) env.PGSSLMODE = sslmode;
  return env;
}

function runTool(command: string, args: string[], url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: libpqEnvironment(url), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      reject(
        new BulwarkError(
          'backup.tool_failed',
          error.code === 'ENOENT'
            ? `${command} is not installed (Debian: apt-get install postgresql-client)`
            : `${command}: ${error.message}`,
          500,
        ),
      );
    });
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new BulwarkError('backup.tool_failed', `${command} failed (exit ${code}): ${stderr.trim()}`, 500));
    });
  });
}
