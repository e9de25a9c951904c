/**
 * SQLite: telemetry is appended to `telemetry_log` (no index but its rowid), and moved into
 * `telemetry` in the background, oldest first (telemetry/log-mover.ts). A row inserted straight into
 * `telemetry` dirties its device's leaf page of the (device_id, ts) index, so a commit of N rows of N
 * devices wrote about N pages to the WAL; appended, a commit writes a few, and a move writes each
 * device's page once for all its rows in the move (docs/operations.md, "The telemetry log").
 *
 * `seq` keeps its promise (unique, ever-increasing, the tie-break of keyset pages): the log gives it
 * (AUTOINCREMENT: never a number given before, even after deletes), starting above every `seq`
 * already stored, and a row keeps it when it moves. Every read goes through `telemetry_readings`,
 * the stored rows and the log's: a move is one transaction (insert, then delete), so every reader
 * sees each reading once.
 *
 * PostgreSQL takes batches with COPY into `telemetry` and has no log: its `telemetry_readings` is
 * the table alone, so the queries are the same on both engines.
 */
import { PostgresAdapter, sql, type Kysely } from 'kysely';

const COLUMNS = 'seq, organization_id, device_id, ts, received_at, data';

export async function up(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`create view telemetry_readings as select ${sql.raw(COLUMNS)} from telemetry`.execute(db);
    return;
  }
  // Kysely runs SQLite migrations outside a transaction: the log, its first number and the view come together.
  await db.transaction().execute(async (trx) => {
    await trx.schema
      .createTable('telemetry_log')
      .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
      .addColumn('organization_id', 'text', (c) => c.notNull())
      .addColumn('device_id', 'text', (c) => c.notNull())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('received_at', 'bigint', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .execute();
    await sql`insert into sqlite_sequence (name, seq) select 'telemetry_log', coalesce(max(seq), 0) from telemetry`.execute(trx);
    await sql`create view telemetry_readings as
      select ${sql.raw(COLUMNS)} from telemetry union all select ${sql.raw(COLUMNS)} from telemetry_log`.execute(trx);
  });
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop view telemetry_readings`.execute(db);
  if (db.getExecutor().adapter instanceof PostgresAdapter) return;
  await db.transaction().execute(async (trx) => {
    await sql`insert into telemetry (${sql.raw(COLUMNS)}) select ${sql.raw(COLUMNS)} from telemetry_log order by seq`.execute(trx);
    await trx.schema.dropTable('telemetry_log').execute();
    await sql`delete from sqlite_sequence where name = 'telemetry_log'`.execute(trx);
  });
}
