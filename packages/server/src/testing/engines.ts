/**
 * Runs storage and service tests on both engines. SQLite gets a fresh file per database;
 * PostgreSQL (BULWARK_TEST_PG_URL, default the local server's `test` database) gets a fresh
 * database per test database, dropped afterwards, so parallel test files never collide.
 * (A database rather than a schema: Kysely's migrator introspects every schema of the database,
 * and a schema dropped by a parallel test file at that moment fails the introspection.)
 *
 * Each fresh database is a copy of a template migrated once per set of migrations (named by a hash
 * of the migration files): a SQLite file under the temporary directory, a PostgreSQL database
 * cloned with CREATE DATABASE … TEMPLATE. Migrating every test database anew cost about a second of
 * both processes' CPU on PostgreSQL, hundreds of times a run. The migrations themselves are still
 * run by every build of a template, by `bulwark init` in the CLI and process tests, and by the
 * storage tests (upgrade, engine copy), which migrate databases of their own.
 *
 * Outside CI an unreachable PostgreSQL skips those tests with one loud line; with CI=true it fails.
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type DatabaseHandle, type Engine } from '../storage/database.js';
import { migrateToLatest } from '../storage/migrate.js';
import { REPOSITORY } from './repository.js';

export const PG_URL = process.env.BULWARK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function probePostgres(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 60_000 });
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

/** A hash of the migration files and their order (migrate.ts): a template serves only the migrations it was built with. */
const MIGRATIONS_HASH = (() => {
  const storage = join(REPOSITORY, 'packages/server/src/storage');
  const hash = createHash('sha256');
  const sources = [
    ...readdirSync(join(storage, 'migrations')).map((name) => join('migrations', name)),
    ...readdirSync(storage).filter((name) => name.startsWith('migrate.')),
  ].filter((name) => /\.(ts|js)$/.test(name) && !name.endsWith('.d.ts'));
  for (const name of sources.sort()) hash.update(name).update(readFileSync(join(storage, name)));
  return hash.digest('hex').slice(0, 16);
})();

/** The migrated SQLite template, built once per set of migrations on this machine (a rename makes it appear whole). */
async function sqliteTemplate(): Promise<string> {
  const file = join(tmpdir(), `bulwark-sqlite-template-${MIGRATIONS_HASH}.db`);
  if (existsSync(file)) return file;
  const dataDir = tempDir('sqlite-template');
  try {
    const handle = openDatabase({ url: 'sqlite', dataDir });
    await migrateToLatest(handle);
    await handle.close(); // the last connection checkpoints the WAL into the file and removes it
    renameSync(join(dataDir, 'bulwark.db'), file);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
  return file;
}

const sqliteEngine: EngineUnderTest = {
  engine: 'sqlite',
  skip: false,
  async create() {
    const template = await sqliteTemplate();
    const dataDir = tempDir('sqlite');
    copyFileSync(template, join(dataDir, 'bulwark.db'));
    const handle = openDatabase({ url: 'sqlite', dataDir });
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

/** The PostgreSQL URL of database `name` on the test server. */
function databaseUrl(name: string): string {
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

let postgresTemplateName: Promise<string> | undefined;
/** Templates kept on the server: the newest few, so runs of different branches side by side do not drop each other's. */
const KEPT_TEMPLATES = 6;

/**
 * The migrated PostgreSQL template for this set of migrations, built by the first test process that
 * needs it (an advisory lock makes the others wait) and renamed into place once no connection is
 * left on it, since CREATE DATABASE … TEMPLATE refuses a source anyone is connected to. Beyond the
 * newest few, older templates (other migration sets) are dropped.
 */
function postgresTemplate(): Promise<string> {
  postgresTemplateName ??= (async () => {
    const name = `bulwark_tpl_${MIGRATIONS_HASH}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      await admin.query('select pg_advisory_lock(hashtext($1))', ['bulwark test template']);
      const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [name]);
      if (rowCount === 0) {
        const building = `${name}_building`;
        await admin.query(`drop database if exists ${building} with (force)`);
        await admin.query(`create database ${building}`);
        const dataDir = tempDir('pg-template');
        const handle = openDatabase({ url: databaseUrl(building), dataDir, poolSize: 1 });
        try {
          await migrateToLatest(handle);
        } finally {
          await handle.close();
          rmSync(dataDir, { recursive: true, force: true });
        }
        await waitForNoConnections(admin, building);
        await admin.query(`alter database ${building} rename to ${name}`);
        const { rows } = await admin.query<{ datname: string }>(
          "select datname from pg_database where datname like 'bulwark\\_tpl\\_%' order by oid desc offset $1",
          [KEPT_TEMPLATES],
        );
        for (const { datname } of rows) await admin.query(`drop database if exists ${datname}`).catch(() => undefined);
      }
      return name;
    } finally {
      await admin.query('select pg_advisory_unlock(hashtext($1))', ['bulwark test template']).catch(() => undefined);
      await admin.end();
    }
  })();
  postgresTemplateName.catch(() => (postgresTemplateName = undefined));
  return postgresTemplateName;
}

const postgresEngine: EngineUnderTest = {
  engine: 'postgres',
  skip: pgProblem ? `PostgreSQL unreachable: ${pgProblem}` : false,
  async create() {
    const name = `bulwark_t_${randomBytes(6).toString('hex')}`;
    try {
      await adminQuery(`create database ${name} template ${await postgresTemplate()}`);
    } catch (error) {
      // Another run with other migrations dropped this template between our lookup and the clone: build it again.
      if ((error as { code?: string }).code !== '3D000') throw error;
      postgresTemplateName = undefined;
      await adminQuery(`create database ${name} template ${await postgresTemplate()}`);
    }
    const url = databaseUrl(name);
    const dataDir = tempDir('pg');
    const handle = openDatabase({ url, dataDir, poolSize: 5 });
    return {
      ...handle,
      url,
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
  return { name, url: databaseUrl(name) };
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
    await waitForNoConnections(admin, name);
    await admin.query(`drop database ${name} with (force)`);
  } finally {
    await admin.end();
  }
}

/** Waits up to 5 s for database `name`'s last connection to go (a closed pool's connections linger a moment). */
async function waitForNoConnections(admin: pg.Client, name: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const { rows } = await admin.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where datname = $1', [name]);
    if (rows[0]!.n === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export const ENGINES: EngineUnderTest[] = [sqliteEngine, postgresEngine];
