/**
 * Telemetry rows through Kysely. Inserts are batched by the ingest writer: on PostgreSQL one
 * `INSERT … SELECT FROM unnest(…)` per batch (five array parameters whatever the batch size), on
 * SQLite multi-row inserts in one transaction.
 */
import { sql, type Kysely } from 'kysely';
import type { Engine } from '../storage/database.js';
import type { Database, TelemetryTable } from '../storage/schema.js';

export type TelemetryRow = TelemetryTable;

/** SQLite allows 32,766 bound variables per statement; five per row. */
const SQLITE_ROWS_PER_STATEMENT = 6000;

export class TelemetryStore {
  constructor(
    readonly db: Kysely<Database>,
    private readonly engine: Engine,
  ) {}

  /** Inserts every row in one transaction: all of them are durable when it resolves, or none. */
  async insertBatch(rows: TelemetryRow[]): Promise<void> {
    if (rows.length === 0) return;
    if (this.engine === 'postgres') {
      await sql`insert into telemetry (organization_id, device_id, ts, received_at, data)
        select * from unnest(${rows.map((r) => r.organization_id)}::text[], ${rows.map((r) => r.device_id)}::text[],
          ${rows.map((r) => r.ts)}::bigint[], ${rows.map((r) => r.received_at)}::bigint[], ${rows.map((r) => r.data)}::text[])`.execute(this.db);
      return;
    }
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += SQLITE_ROWS_PER_STATEMENT) {
        await trx.insertInto('telemetry').values(rows.slice(i, i + SQLITE_ROWS_PER_STATEMENT)).execute();
      }
    });
  }

  async range(deviceId: string, from: number, to: number, limit: number): Promise<TelemetryRow[]> {
    return this.db
      .selectFrom('telemetry')
      .selectAll()
      .where('device_id', '=', deviceId)
      .where('ts', '>=', from)
      .where('ts', '<', to)
      .orderBy('ts')
      .limit(limit)
      .execute();
  }

  async count(deviceId?: string): Promise<number> {
    let query = this.db.selectFrom('telemetry').select((eb) => eb.fn.countAll<number>().as('n'));
    if (deviceId) query = query.where('device_id', '=', deviceId);
    const row = await query.executeTakeFirstOrThrow();
    return Number(row.n);
  }
}
