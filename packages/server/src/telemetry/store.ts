/**
 * Telemetry rows through Kysely. Inserts are batched by the ingest writer: on PostgreSQL one
 * `COPY … FROM STDIN` per batch into `telemetry` (storage/pg-copy.ts), on SQLite a few fixed-size
 * multi-row inserts in one transaction (see `sqliteChunks`) into `telemetry_log`, moved into
 * `telemetry` in the background (log-mover.ts). Every read goes through `telemetry_readings`, the
 * stored rows and the log's (storage/migrations/034_telemetry_log.ts).
 */
import { CompiledQuery, sql, type Insertable, type Kysely, type RawBuilder, type Selectable } from 'kysely';
import type { Engine } from '../storage/database.js';
import { copyField, type CopyIn } from '../storage/pg-copy.js';
import { PreparedQueries } from '../storage/prepared.js';
import type { Database, DevicePresenceTable, TelemetryTable } from '../storage/schema.js';
import {
  DEFAULT_LOG_MOVES,
  LOG_MOVE_SQL,
  sliceParameters,
  TelemetryLogMover,
  type LogMoverLog,
  type LogMoverOptions,
  type LogSlice,
  type LogSliceRange,
} from './log-mover.js';

/** A row as the ingest writer inserts it (`seq` is assigned by the database). */
export type TelemetryRow = Insertable<TelemetryTable>;
export type StoredTelemetryRow = Selectable<TelemetryTable>;

/** Where a page ended: the next page starts strictly after this (ts, seq). */
export interface TelemetryPosition {
  ts: number;
  seq: number;
}

/** One value name in one time bucket. `last` is packed by the SQL: see `unpackLast`. */
export interface BucketRow {
  bucket: number;
  name: string;
  /** Readings of the name in the bucket, whatever their type. */
  count: number;
  /** Of which numbers (avg, min, max are over those; null when none). */
  numeric: number;
  avg: number | null;
  min: number | null;
  max: number | null;
  /** The latest non-numeric reading, packed; null when every reading was a number. */
  last: string | null;
}

/** The latest reading of one value name, packed. */
export interface LatestRow {
  name: string;
  last: string;
}

/**
 * The aggregates pack "the latest value" as text whose order is (ts, seq), so `max()` finds it in
 * one pass with constant memory: 13 digits of ts, 19 of seq, then the value as JSON text.
 */
export function unpackLast(packed: string): { ts: number; value: unknown } {
  return { ts: Number(packed.slice(0, 13)), value: JSON.parse(packed.slice(32)) as unknown };
}

/** A value as JSON text behind its (ts, seq), for `max()`; byte order ("C") whatever the database's locale. */
const PG_PACKED: RawBuilder<string> = sql`(lpad(t.ts::text, 13, '0') || lpad(t.seq::text, 19, '0') || j.value::text) collate "C"`;
/** json_each gives true/false as 1/0: the type says which. json_quote renders a real with round-trip precision. */
const SQLITE_PACKED: RawBuilder<string> = sql`printf('%013d%019d', t.ts, t.seq) || (case j.type when 'true' then 'true' when 'false' then 'false' else json_quote(j.value) end)`;

/**
 * SQLite batches are written with statements of these sizes only (rows per INSERT, largest
 * first): the statement texts never change, so the database layer's prepared-statement cache
 * keeps all of them, where a statement per distinct batch size would be prepared (and built by
 * Kysely) anew each time. Measured on SQLite 3 (better-sqlite3): 16-row statements cost about
 * as little per row as any, and statements of hundreds of rows cost more per row, not less.
 */
export const SQLITE_CHUNK_SIZES = [16, 4, 1] as const;

/** How `count` rows split into the fixed statement sizes, largest first (e.g. 39 → 16, 16, 4, 1, 1, 1). */
export function sqliteChunks(count: number): number[] {
  const chunks: number[] = [];
  let left = count;
  for (const size of SQLITE_CHUNK_SIZES) {
    for (; left >= size; left -= size) chunks.push(size);
  }
  return chunks;
}

const SQLITE_INSERTS = new Map<number, string>(
  SQLITE_CHUNK_SIZES.map((n) => [
    n,
    `insert into "telemetry_log" ("organization_id", "device_id", "ts", "received_at", "data") values ${Array.from({ length: n }, () => '(?, ?, ?, ?, ?)').join(', ')}`,
  ]),
);

/** The SQLite insert statements, largest first, for a connection of its own (the batch worker's). */
export function sqliteInsertStatements(): [size: number, text: string][] {
  return SQLITE_CHUNK_SIZES.map((size) => [size, SQLITE_INSERTS.get(size)!]);
}

/** Commits SQLite batches elsewhere than on this connection: the running server's worker thread (telemetry/batch-worker.ts). */
export interface BatchWriter {
  insert(rows: TelemetryRow[]): Promise<void>;
  /** Moves one slice of the log into `telemetry` in one transaction (LOG_MOVE_SQL). */
  moveLog(range: LogSliceRange): Promise<LogSlice>;
  /** The thread that commits, by its ID in the kernel's tables, when it is a thread of its own (Linux). */
  readonly osThreadId?: number | null;
}

/** PostgreSQL batches: one COPY in text format (fields escaped by `copyField`), committed as one statement. */
const PG_COPY = 'copy telemetry (organization_id, device_id, ts, received_at, data) from stdin';

/** Readings and payload bytes admitted for a device on one UTC day (days since the epoch), to add to its stored count. */
export interface UsageDelta {
  deviceId: string;
  organizationId: string;
  day: number;
  readings: number;
  bytes: number;
}

/** Usage rows per upsert: 5 parameters each, well under both engines' parameter limits. */
const USAGE_ROWS_PER_STATEMENT = 1000;
/** Sessions per statement when a stopping node records its sessions ended: 2 parameters each. */
const PRESENCE_ROWS_PER_STATEMENT = 1000;

/** A device's MQTT session, as its presence records it. */
export interface PresenceSession {
  deviceId: string;
  organizationId: string;
  /** The broker node holding the session. */
  nodeId: string;
  remoteAddress: string;
  protocol: string;
  /** When the session started (ms): tells sessions of one device apart, and which is newer. */
  connectedSince: number;
}

export class TelemetryStore {
  /** SQLite: where batches are committed instead of this connection (set by the running server only). */
  private batches: BatchWriter | null = null;
  /** The presence writes, run on every device connect and session end: compiled once (storage/prepared.ts). */
  private readonly prepared = new PreparedQueries();
  /** SQLite: moves the log into the stored table as it fills (null on PostgreSQL, which has no log). */
  readonly logMover: TelemetryLogMover | null;
  /** Where readings are written: SQLite's log before its stored table (deletes go in this order), PostgreSQL's one table. */
  private readonly writtenTables: readonly ('telemetry_log' | 'telemetry')[];

  constructor(
    readonly db: Kysely<Database>,
    private readonly engine: Engine,
    /** PostgreSQL: the database handle's COPY, for batches. */
    private readonly copyIn?: CopyIn,
    /** SQLite: how the log moves (tests give small slices). */
    logMoves: Partial<LogMoverOptions> = {},
  ) {
    this.writtenTables = engine === 'sqlite' ? ['telemetry_log', 'telemetry'] : ['telemetry'];
    this.logMover =
      engine === 'sqlite'
        ? new TelemetryLogMover(
            {
              moveSlice: (range) => (this.batches ? this.batches.moveLog(range) : this.moveLogHere(range)),
              count: () => this.countLog(),
              lastSeq: () => this.lastLogSeq(),
            },
            { ...DEFAULT_LOG_MOVES, ...logMoves },
          )
        : null;
  }

  /** Where a failed move of the log is reported (the running server's log). */
  reportLogMovesTo(log: LogMoverLog): void {
    this.logMover?.reportTo(log);
  }

  /** Starts no more moves of the log and waits for the one under way: before the connection it uses closes. */
  async stopMovingLog(): Promise<void> {
    await this.logMover?.stop();
  }

  /** The thread committing batches, by its kernel thread ID, when it is not the event loop's (benches read its CPU). */
  get writerThreadId(): number | null {
    return this.batches?.osThreadId ?? null;
  }

  /**
   * SQLite: commits batches through `writer` (off the event loop) from now on, or on this
   * connection again (null). The running server decides (runner/server.ts); CLI commands, tests
   * of the store and anything else opening the database write on their own connection.
   */
  writeBatchesWith(writer: BatchWriter | null): void {
    this.batches = writer;
  }

  /** Inserts every row in one transaction: all of them are durable when it resolves, or none. */
  async insertBatch(rows: TelemetryRow[]): Promise<void> {
    if (rows.length === 0) return;
    if (this.batches && this.engine === 'sqlite') {
      await this.batches.insert(rows);
      this.logMover?.appended(rows.length);
      return;
    }
    if (this.engine === 'postgres') {
      if (!this.copyIn) throw new Error("TelemetryStore on PostgreSQL needs the database handle's copyIn");
      let text = '';
      for (const r of rows) {
        text += `${copyField(r.organization_id)}\t${copyField(r.device_id)}\t${r.ts}\t${r.received_at}\t${copyField(r.data)}\n`;
      }
      await this.copyIn(PG_COPY, text);
      return;
    }
    await this.db.transaction().execute(async (trx) => {
      // Raw compiled queries: no query tree is built or compiled per batch, only parameters bound.
      let i = 0;
      for (const size of sqliteChunks(rows.length)) {
        const parameters: unknown[] = new Array(size * 5);
        for (let k = 0; k < size; k++, i++) {
          const r = rows[i]!;
          parameters[k * 5] = r.organization_id;
          parameters[k * 5 + 1] = r.device_id;
          parameters[k * 5 + 2] = r.ts;
          parameters[k * 5 + 3] = r.received_at;
          parameters[k * 5 + 4] = r.data;
        }
        await trx.executeQuery(CompiledQuery.raw(SQLITE_INSERTS.get(size)!, parameters));
      }
    });
    this.logMover?.appended(rows.length);
  }

  /** SQLite: one slice of the log moved on this connection (when no writer thread commits the batches). */
  private async moveLogHere(range: LogSliceRange): Promise<LogSlice> {
    const parameters = sliceParameters(range);
    let started = 0;
    const moved = await this.db.transaction().execute(async (trx) => {
      started = performance.now();
      const copied = await trx.executeQuery(CompiledQuery.raw(LOG_MOVE_SQL.copy, parameters));
      await trx.executeQuery(CompiledQuery.raw(LOG_MOVE_SQL.drop, parameters));
      return Number(copied.numAffectedRows ?? 0);
    });
    return { moved, ms: performance.now() - started };
  }

  private async lastLogSeq(): Promise<number | null> {
    const row = await this.db
      .selectFrom('telemetry_log')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .executeTakeFirst();
    return row?.seq === null || row?.seq === undefined ? null : Number(row.seq);
  }

  private async countLog(): Promise<number> {
    const row = await this.db
      .selectFrom('telemetry_log')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async range(deviceId: string, from: number, to: number, limit: number): Promise<TelemetryRow[]> {
    return this.db
      .selectFrom('telemetry_readings')
      .selectAll()
      .where('device_id', '=', deviceId)
      .where('ts', '>=', from)
      .where('ts', '<', to)
      .orderBy('ts')
      .limit(limit)
      .execute();
  }

  async count(deviceId?: string): Promise<number> {
    let query = this.db.selectFrom('telemetry_readings').select((eb) => eb.fn.countAll<number>().as('n'));
    if (deviceId) query = query.where('device_id', '=', deviceId);
    const row = await query.executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Readings in from ≤ ts < to, in (ts, seq) order, starting strictly after `after`: one range of the (device_id, ts, seq) index. */
  page(deviceId: string, from: number, to: number, after: TelemetryPosition | null, limit: number): Promise<StoredTelemetryRow[]> {
    return this.db
      .selectFrom('telemetry_readings')
      .selectAll()
      .where('device_id', '=', deviceId)
      .where('ts', '>=', after ? Math.max(from, after.ts) : from)
      .where('ts', '<', to)
      .$if(after !== null, (q) => q.where((eb) => eb(eb.refTuple('ts', 'seq'), '>', eb.tuple(after!.ts, after!.seq))))
      .orderBy('ts')
      .orderBy('seq')
      .limit(limit)
      .execute();
  }

  /**
   * Per bucket of `intervalMs` (aligned to the epoch) and value name: count, and avg/min/max of
   * the numeric readings, and the latest non-numeric one. Computed by the database, one pass over
   * the device's index range; one statement per engine (JSON functions differ), same results.
   */
  async buckets(deviceId: string, from: number, to: number, intervalMs: number, names: string[] | null): Promise<BucketRow[]> {
    const query =
      this.engine === 'postgres'
        ? sql<BucketRow>`select (t.ts / ${intervalMs}::bigint) * ${intervalMs}::bigint as bucket, j.key as name, count(*) as count,
            count(*) filter (where jsonb_typeof(j.value) = 'number') as numeric,
            avg(case when jsonb_typeof(j.value) = 'number' then j.value::float8 end) as avg,
            min(case when jsonb_typeof(j.value) = 'number' then j.value::float8 end) as min,
            max(case when jsonb_typeof(j.value) = 'number' then j.value::float8 end) as max,
            max(case when jsonb_typeof(j.value) <> 'number' then ${PG_PACKED} end) as last
          from telemetry_readings t cross join lateral jsonb_each(t.data::jsonb) j
          where t.device_id = ${deviceId} and t.ts >= ${from} and t.ts < ${to}${names ? sql` and j.key in (${sql.join(names)})` : sql``}
          group by 1, 2 order by 1, 2`
        : sql<BucketRow>`select (t.ts / cast(${intervalMs} as integer)) * cast(${intervalMs} as integer) as bucket, j.key as name, count(*) as count,
            sum(j.type in ('integer', 'real')) as numeric,
            avg(case when j.type in ('integer', 'real') then j.value end) as avg,
            min(case when j.type in ('integer', 'real') then j.value end) as min,
            max(case when j.type in ('integer', 'real') then j.value end) as max,
            max(case when j.type not in ('integer', 'real') then ${SQLITE_PACKED} end) as last
          from telemetry_readings t, json_each(t.data) j
          where t.device_id = ${deviceId} and t.ts >= ${from} and t.ts < ${to}${names ? sql` and j.key in (${sql.join(names)})` : sql``}
          group by 1, 2 order by 1, 2`;
    return (await query.execute(this.db)).rows.map((r) => ({
      ...r,
      bucket: Number(r.bucket),
      count: Number(r.count),
      numeric: Number(r.numeric),
    }));
  }

  /** The latest reading of each value name among the device's last `lookback` readings (by ts, seq). */
  async latest(deviceId: string, lookback: number): Promise<LatestRow[]> {
    const query =
      this.engine === 'postgres'
        ? sql<LatestRow>`select j.key as name, max(${PG_PACKED}) as last
          from (select ts, seq, data from telemetry_readings where device_id = ${deviceId} order by ts desc, seq desc limit ${lookback}) t
          cross join lateral jsonb_each(t.data::jsonb) j group by j.key order by j.key`
        : sql<LatestRow>`select j.key as name, max(${SQLITE_PACKED}) as last
          from (select ts, seq, data from telemetry_readings where device_id = ${deviceId} order by ts desc, seq desc limit ${lookback}) t,
          json_each(t.data) j group by j.key order by j.key`;
    return (await query.execute(this.db)).rows;
  }

  /** How many of the organization's devices are connected now (to any node). */
  /**
   * Readings the organization's devices sent per minute of arrival in [from, to): one range of the
   * `telemetry_received` index, grouped by minute (minutes without readings are absent).
   */
  async readingsPerMinute(organizationId: string, from: number, to: number): Promise<{ minute: number; readings: number }[]> {
    const minute = sql<number | string>`received_at / ${sql.lit(60_000)}`;
    const rows = await this.db
      .selectFrom('telemetry_readings')
      .select([minute.as('minute'), (eb) => eb.fn.countAll<number | string>().as('readings')])
      .where('received_at', '>=', from)
      .where('received_at', '<', to)
      .where('organization_id', '=', organizationId)
      .groupBy(minute)
      .orderBy(minute)
      .execute();
    return rows.map((row) => ({ minute: Number(row.minute), readings: Number(row.readings) }));
  }

  async onlineCount(organizationId: string): Promise<number> {
    const row = await this.db
      .selectFrom('device_presence')
      .select((eb) => eb.fn.countAll<number | string>().as('count'))
      .where('organization_id', '=', organizationId)
      .where('connected_since', 'is not', null)
      .executeTakeFirst();
    return Number(row?.count ?? 0);
  }

  presence(deviceId: string): Promise<Selectable<DevicePresenceTable> | undefined> {
    return this.db.selectFrom('device_presence').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
  }

  /**
   * Records a session as the device's presence, unless a later session of the device is recorded
   * already: the writes of two sessions (a quick reconnect, a session on another node, two
   * PostgreSQL pool connections) may land in either order, and the newest session wins.
   */
  async recordConnected(session: PresenceSession, now: number): Promise<void> {
    const { deviceId, organizationId, connectedSince, nodeId, remoteAddress, protocol } = session;
    await this.prepared.execute(
      this.db,
      'recordConnected',
      [deviceId, organizationId, connectedSince, nodeId, remoteAddress, protocol, now],
      (device, organization, since, node, address, via, at) =>
        this.db
          .insertInto('device_presence')
          .values({
            device_id: device,
            organization_id: organization,
            connected_since: since,
            node_id: node,
            remote_address: address,
            protocol: via,
            changed_at: at,
          })
          .onConflict((oc) =>
            oc
              .column('device_id')
              .doUpdateSet({ connected_since: since, node_id: node, remote_address: address, protocol: via, changed_at: at })
              .where((eb) =>
                eb.or([eb('device_presence.connected_since', 'is', null), eb('device_presence.connected_since', '<=', since)]),
              ),
          ),
    );
    await this.seen(deviceId, now);
  }

  /** Records the end of a session: the device goes offline only if this session is still the one recorded. */
  async recordDisconnected(session: PresenceSession, now: number): Promise<void> {
    await this.prepared.execute(
      this.db,
      'recordDisconnected',
      [now, session.deviceId, session.nodeId, session.connectedSince],
      (at, device, node, since) =>
        this.db
          .updateTable('device_presence')
          .set({ connected_since: null, changed_at: at })
          .where('device_id', '=', device)
          .where('node_id', '=', node)
          .where('connected_since', '=', since),
    );
    await this.seen(session.deviceId, now);
  }

  /**
   * Records the end of many sessions of node `nodeId` at once (a node stopping): in one transaction
   * of a few statements, not two per session. As for one session, a device goes offline only if
   * the session recorded for it is still this one (same node, same start time).
   */
  async recordSessionsEnded(nodeId: string, sessions: Pick<PresenceSession, 'deviceId' | 'connectedSince'>[], now: number): Promise<void> {
    if (sessions.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < sessions.length; i += PRESENCE_ROWS_PER_STATEMENT) {
        const chunk = sessions.slice(i, i + PRESENCE_ROWS_PER_STATEMENT);
        await trx
          .updateTable('device_presence')
          .set({ connected_since: null, changed_at: now })
          .where('node_id', '=', nodeId)
          .where((eb) =>
            eb(
              eb.refTuple('device_id', 'connected_since'),
              'in',
              chunk.map((s) => eb.tuple(s.deviceId, s.connectedSince)),
            ),
          )
          .execute();
        await trx
          .updateTable('devices')
          .set({ last_seen_at: now })
          .where(
            'id',
            'in',
            chunk.map((s) => s.deviceId),
          )
          .execute();
      }
    });
  }

  /** A session's start or end is the device being seen. */
  private async seen(deviceId: string, now: number): Promise<void> {
    await this.prepared.execute(this.db, 'seen', [now, deviceId], (at, device) =>
      this.db.updateTable('devices').set({ last_seen_at: at }).where('id', '=', device),
    );
  }

  /**
   * Deletes at most `limit` rows of these devices stamped before `cutoff`, in one short statement
   * per table (SQLite: the log first, then the stored rows, in one transaction): the caller loops,
   * so neither SQLite's one connection nor a PostgreSQL transaction is held for long. Returns how
   * many went.
   */
  async deleteOlderThan(deviceIds: string[], cutoff: number, limit: number): Promise<number> {
    if (deviceIds.length === 0) return 0;
    if (this.engine === 'postgres') {
      // By physical row ID (a TID scan): no index on seq is needed, and the statement sees a stable ctid.
      const result = await sql`delete from telemetry where ctid = any(array(
        select ctid from telemetry where device_id in (${sql.join(deviceIds)}) and ts < ${cutoff} limit ${limit}))`.execute(this.db);
      return Number(result.numAffectedRows ?? 0);
    }
    return this.db.transaction().execute(async (trx) => {
      let deleted = 0;
      for (const table of this.writtenTables) {
        if (deleted >= limit) break;
        const result = await trx
          .deleteFrom(table)
          .where('seq', 'in', (eb) =>
            eb
              .selectFrom(table)
              .select('seq')
              .where('device_id', 'in', deviceIds)
              .where('ts', '<', cutoff)
              .limit(limit - deleted),
          )
          .executeTakeFirst();
        deleted += Number(result.numDeletedRows);
      }
      return deleted;
    });
  }

  /** Deletes a device's readings stamped at or after `from` (a consumer's data when their account goes); returns how many. */
  async deleteSince(deviceId: string, from: number): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      let deleted = 0;
      for (const table of this.writtenTables) {
        const result = await trx.deleteFrom(table).where('device_id', '=', deviceId).where('ts', '>=', from).executeTakeFirst();
        deleted += Number(result.numDeletedRows);
      }
      return deleted;
    });
  }

  async countOlderThan(deviceIds: string[], cutoff: number): Promise<number> {
    if (deviceIds.length === 0) return 0;
    const row = await this.db
      .selectFrom('telemetry_readings')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('device_id', 'in', deviceIds)
      .where('ts', '<', cutoff)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** What the device was admitted on `day` (days since the epoch, UTC), if anything. */
  usage(deviceId: string, day: number): Promise<{ readings: number; bytes: number } | undefined> {
    return this.db
      .selectFrom('telemetry_usage')
      .select(['readings', 'bytes'])
      .where('device_id', '=', deviceId)
      .where('day', '=', day)
      .executeTakeFirst();
  }

  /** Adds admitted readings and bytes to each device's day, in one transaction. */
  async addUsage(deltas: UsageDelta[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < deltas.length; i += USAGE_ROWS_PER_STATEMENT) {
        const rows = deltas
          .slice(i, i + USAGE_ROWS_PER_STATEMENT)
          .map((d) => ({ device_id: d.deviceId, organization_id: d.organizationId, day: d.day, readings: d.readings, bytes: d.bytes }));
        await trx
          .insertInto('telemetry_usage')
          .values(rows)
          .onConflict((oc) =>
            oc.columns(['device_id', 'day']).doUpdateSet((eb) => ({
              readings: eb('telemetry_usage.readings', '+', eb.ref('excluded.readings')),
              bytes: eb('telemetry_usage.bytes', '+', eb.ref('excluded.bytes')),
            })),
          )
          .execute();
      }
    });
  }

  async deleteUsageBefore(day: number): Promise<void> {
    await this.db.deleteFrom('telemetry_usage').where('day', '<', day).execute();
  }
}
