/**
 * Opens the platform database: SQLite (better-sqlite3, WAL) as the embedded default, or
 * PostgreSQL when the config gives a postgres:// URL. Kysely is the only query layer above both.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import {
  CompiledQuery,
  Kysely,
  PostgresDialect,
  SqliteDialect,
  SqliteDriver,
  sql,
  type DatabaseConnection,
  type Driver,
  type SqliteDialectConfig,
} from 'kysely';
import type pg from 'pg';
import { copyIn, type CopyIn } from './pg-copy.js';
import type { Database } from './schema.js';
import { WriteTurns } from './write-turns.js';

const require = createRequire(import.meta.url);
let nodePostgres: typeof pg | undefined;
/** node-postgres, loaded when a PostgreSQL database is first opened: a SQLite node or CLI command never needs it. */
function postgres(): typeof pg {
  return (nodePostgres ??= require('pg') as typeof pg);
}

export type Engine = 'sqlite' | 'postgres';

export interface DatabaseHandle {
  db: Kysely<Database>;
  engine: Engine;
  /** PostgreSQL schema the tables live in, when not the default. */
  schema?: string;
  /** The SQLite database file. */
  file?: string;
  /** PostgreSQL: `COPY … FROM STDIN` on a pooled connection (bulk telemetry). */
  copyIn?: CopyIn;
  /** SQLite: turns at the write lock shared with this process's other connections (the telemetry batch worker's). */
  writeTurns?: WriteTurns;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** `sqlite`, a path to a SQLite file (`sqlite:/path/file.db`), or a postgres:// URL. */
  url: string;
  dataDir: string;
  poolSize?: number;
  /** PostgreSQL schema to use (tests give each file its own). */
  schema?: string;
  /** An idle pooled PostgreSQL connection broke (the server restarted or went away); default: ignored. */
  onConnectionError?: (error: Error) => void;
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * How the platform reads PostgreSQL values: int8 and numeric as numbers (every bigint the platform
 * stores is a time or a count below 2^53), the rest as node-postgres does. Every connection uses it
 * (the pool here, and the engine copy's client) so both read rows alike.
 */
export const PG_TYPES = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID || oid === NUMERIC_OID
      ? (v: string) => Number(v)
      : postgres().types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

export function openDatabase(options: OpenDatabaseOptions): DatabaseHandle {
  if (options.url.startsWith('postgres')) {
    const pool = new (postgres().Pool)({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
      types: PG_TYPES,
    });
    // node-postgres emits an idle connection's failure on the pool, and an 'error' event nobody
    // listens to ends the process: a PostgreSQL restart would have killed every node. The pool
    // drops the broken connection by itself; queries meanwhile fail (503 storage.unavailable,
    // readiness false) and succeed again once the server answers.
    pool.on('error', (error) => options.onConnectionError?.(error));
    // A connection in use (checked out: the pool's idle listener is off) emits its failure on the
    // client itself, beside rejecting the query it ran; unheard, that event too ended the process
    // when PostgreSQL went away mid-query. The query's own rejection is what the caller sees, and
    // the pool discards the broken connection when it comes back.
    pool.on('connect', (client) => client.on('error', (error) => options.onConnectionError?.(error)));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return {
      db,
      engine: 'postgres',
      ...(options.schema ? { schema: options.schema } : {}),
      copyIn: copyIn(pool),
      close: () => db.destroy(),
    };
  }
  const file = options.url === 'sqlite' ? join(options.dataDir, 'bulwark.db') : options.url.replace(/^sqlite:/, '');
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const database = new SQLite(file);
  chmodSync(file, 0o600);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  // Checkpoint the WAL every 10,000 pages (~40 MB) instead of 1,000: hot pages (index interiors,
  // the right edge of the telemetry B-trees) are copied back once per checkpoint rather than ten
  // times, about 30% less CPU per inserted telemetry row (measured: 23.9 → 16.5 µs per row over a
  // million rows). The WAL file is cut back to 64 MB after a checkpoint. A running server
  // checkpoints from a worker thread instead (WalCheckpointer), which turns this off while it runs
  // and restarts the WAL itself, between two telemetry batches.
  database.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
  database.pragma('journal_size_limit = 67108864');
  database.pragma('foreign_keys = ON');
  // Another process (the CLI beside a running node, several CLI commands at once) may hold the
  // write lock for a moment; wait for it rather than fail, even on a loaded machine.
  database.pragma('busy_timeout = 30000');
  cachePreparedStatements(database);
  const writeTurns = new WriteTurns();
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database }, writeTurns) });
  return { db, engine: 'sqlite', file, writeTurns, close: () => db.destroy() };
}

/** WAL pages after which a commit checkpoints, when no WalCheckpointer does it off the event loop. */
export const AUTOCHECKPOINT_PAGES = 10_000;

const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely prepares every query anew, and with better-sqlite3 preparing costs about as much as
 * running a small query. Statements are reusable (Kysely never streams them here), so keep them.
 */
function cachePreparedStatements(database: SQLite.Database): void {
  const prepare = database.prepare.bind(database);
  const cache = new Map<string, SQLite.Statement>();
  database.prepare = ((source: string) => {
    let statement = cache.get(source);
    if (!statement) {
      if (cache.size >= STATEMENT_CACHE_SIZE) cache.clear();
      statement = prepare(source);
      cache.set(source, statement);
    }
    return statement;
  }) as typeof database.prepare;
}

/** True when the database answers a trivial query; used by /readyz. */
export async function isReachable(db: Kysely<Database>): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}

/**
 * Transactions take SQLite's write lock when they begin (BEGIN IMMEDIATE). A deferred transaction
 * that reads, then writes after another process committed, fails at once with "database is
 * locked" whatever the busy timeout; an immediate one waits its turn at BEGIN instead. Within this
 * process it first waits its turn (WriteTurns) as a promise, so a telemetry batch committing on the
 * worker thread never puts the event loop to sleep in SQLite's busy handler.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  /** Whether this connection's open transaction holds a turn (one connection: one transaction at a time). */
  private holdsTurn = false;

  constructor(
    settings: SqliteDialectConfig,
    private readonly sqlite: SQLite.Database,
    private readonly turns: WriteTurns,
  ) {
    super(settings);
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await this.turns.acquire();
    this.holdsTurn = true;
    try {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'));
    } catch (error) {
      this.releaseTurn(); // Kysely rolls back only a transaction that began
      throw error;
    }
  }

  override async commitTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await super.commitTransaction(connection);
    } finally {
      // A COMMIT that failed with the transaction still open leaves the turn to the ROLLBACK that follows.
      if (!this.sqlite.inTransaction) this.releaseTurn();
    }
  }

  // SQLite rolls a transaction back by itself on some errors (SQLITE_FULL, SQLITE_IOERR…): a
  // ROLLBACK then fails with "no transaction is active", and that error would replace the one
  // that caused it (a full disk answered 500 instead of 503 storage.unavailable).
  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      if (this.sqlite.inTransaction) await super.rollbackTransaction(connection);
    } finally {
      this.releaseTurn();
    }
  }

  private releaseTurn(): void {
    if (!this.holdsTurn) return;
    this.holdsTurn = false;
    this.turns.release();
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(
    private readonly settings: SqliteDialectConfig & { database: SQLite.Database },
    private readonly turns: WriteTurns,
  ) {
    super(settings);
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.settings, this.settings.database, this.turns);
  }
}
