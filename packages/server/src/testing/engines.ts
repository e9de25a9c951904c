/**
 * Runs storage and service tests on both engines. SQLite gets a fresh file per database;
 * PostgreSQL (BULWARK_TEST_PG_URL, default the local server's `test` database) gets a fresh
 * database per test database, dropped afterwards, so parallel test files never collide.
 * (A database rather than a schema: Kysely's migrator introspects every schema of the database,
 * and a schema dropped by a parallel test file at that moment fails the introspection.)
 *
 * Outside CI an unreachable PostgreSQL skips those tests with one loud line; with CI=true it fails.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type DatabaseHandle, type Engine } from '../storage/database.js';
import { migrateToLatest } from '../storage/migrate.js';

export const PG_URL = process.env.BULWARK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function probePostgres(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 15_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const pgProblem = await probePostgres();
if (pgProblem) {
  if (process.env.CI === 'true') {
    throw new Error(`PostgreSQL at ${PG_URL} is unreachable (${pgProblem}) and CI=true makes it mandatory`);
  }
  console.error(`\n!!! PostgreSQL at ${PG_URL} is unreachable (${pgProblem}): PostgreSQL-backed tests are SKIPPED !!!\n`);
}

export interface TestDatabase extends DatabaseHandle {
  /** The url to open the same database again (as a second node or the CLI would). */
  url: string;
  dataDir: string;
}

export interface EngineUnderTest {
  engine: Engine;
  /** Reason to skip, when this engine cannot run here. */
  skip: string | false;
  /** A new, migrated, empty database; close() removes it. */
  create(): Promise<TestDatabase>;
}

function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `bulwark-${prefix}-`));
}

const sqliteEngine: EngineUnderTest = {
  engine: 'sqlite',
  skip: false,
  async create() {
    const dataDir = tempDir('sqlite');
    const handle = openDatabase({ url: 'sqlite', dataDir });
    await migrateToLatest(handle);
    return {
      ...handle,
      url: 'sqlite',
      dataDir,
      close: async () => {
        await handle.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
};

const postgresEngine: EngineUnderTest = {
  engine: 'postgres',
  skip: pgProblem ? `PostgreSQL unreachable: ${pgProblem}` : false,
  async create() {
    const name = `bulwark_t_${randomBytes(6).toString('hex')}`;
    await adminQuery(`create database ${name}`);
    const url = new URL(PG_URL);
    url.pathname = `/${name}`;
    const dataDir = tempDir('pg');
    const handle = openDatabase({ url: url.toString(), dataDir, poolSize: 5 });
    await migrateToLatest(handle);
    return {
      ...handle,
      url: url.toString(),
      dataDir,
      close: async () => {
        await handle.close();
        await dropDatabase(name);
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
};

/** Runs one statement on the administrative connection (create or drop a test database). */
export async function adminQuery(statement: string): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    await admin.query(statement);
  } finally {
    await admin.end();
  }
}

/** Creates an empty PostgreSQL database named `<prefix>_<random>` on the test server: its name (for dropDatabase) and URL. */
export async function createEmptyDatabase(prefix: string): Promise<{ name: string; url: string }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await adminQuery(`create database ${name}`);
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return { name, url: url.href };
}

/**
 * pg's pool.end() resolves before its connections have closed: a forced drop at that moment kills
 * them mid-goodbye, and the pool throws the termination as an uncaught error into the test file.
 * So wait (briefly) for the database's last connection to go before dropping it.
 */
export async function dropDatabase(name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    for (let i = 0; i < 50; i++) {
      const { rows } = await admin.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where datname = $1', [name]);
      if (rows[0]!.n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await admin.query(`drop database ${name} with (force)`);
  } finally {
    await admin.end();
  }
}

export const ENGINES: EngineUnderTest[] = [sqliteEngine, postgresEngine];
