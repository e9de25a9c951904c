/**
 * The anomaly detector's tables: devices' behaviour per minute, their source addresses per hour,
 * session takeovers and each product's rules; and the reads the detector needs (the recent
 * window, a device's history, distinct addresses, open anomaly findings). The only file of
 * assessment/anomaly that runs queries. `ownersOf` reads `devices` (organization and product of
 * a device ID a failed connection claimed) at flush time, batched: a read the devices service
 * could serve across organizations, listed with evidence-store.ts in docs/architecture.md.
 */
import type { Kysely, Transaction } from 'kysely';
import type {
  AnomalyProductRulesTable,
  AssessmentFindingsTable,
  Database,
  DeviceBehaviourAddressesTable,
  DeviceBehaviourMinutesTable,
  DeviceConnectionConflictsTable,
} from '../../storage/schema.js';

export type MinuteDelta = DeviceBehaviourMinutesTable;
export type MinuteRow = DeviceBehaviourMinutesTable;
export type ConflictRow = DeviceConnectionConflictsTable;
export type RulesRow = AnomalyProductRulesTable;

/** Rows per INSERT (the parameters of one statement stay under SQLite's and PostgreSQL's limits). */
const ROWS_PER_STATEMENT = 500;
/** IDs per IN list. */
const IDS_PER_QUERY = 500;

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class BehaviourStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** The organization and product of each device ID that exists. */
  async ownersOf(deviceIds: string[]): Promise<Map<string, { organizationId: string; productId: string }>> {
    const owners = new Map<string, { organizationId: string; productId: string }>();
    for (const ids of chunks(deviceIds, IDS_PER_QUERY)) {
      const rows = await this.db.selectFrom('devices').select(['id', 'organization_id', 'product_id']).where('id', 'in', ids).execute();
      for (const r of rows) owners.set(r.id, { organizationId: r.organization_id, productId: r.product_id });
    }
    return owners;
  }

  /**
   * Adds each delta to its device's minute (counts summed; `addresses` the larger of the two) and
   * keeps the new addresses and takeovers, in one transaction.
   */
  async addMinutes(rows: MinuteDelta[], addresses: DeviceBehaviourAddressesTable[], conflicts: ConflictRow[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (const batch of chunks(rows, ROWS_PER_STATEMENT))
        await trx
          .insertInto('device_behaviour_minutes')
          .values(batch)
          .onConflict((oc) =>
            oc.columns(['device_id', 'minute']).doUpdateSet((eb) => ({
              messages: eb('device_behaviour_minutes.messages', '+', eb.ref('excluded.messages')),
              bytes: eb('device_behaviour_minutes.bytes', '+', eb.ref('excluded.bytes')),
              connects: eb('device_behaviour_minutes.connects', '+', eb.ref('excluded.connects')),
              auth_failures: eb('device_behaviour_minutes.auth_failures', '+', eb.ref('excluded.auth_failures')),
              acl_denials: eb('device_behaviour_minutes.acl_denials', '+', eb.ref('excluded.acl_denials')),
              payload_errors: eb('device_behaviour_minutes.payload_errors', '+', eb.ref('excluded.payload_errors')),
              takeovers: eb('device_behaviour_minutes.takeovers', '+', eb.ref('excluded.takeovers')),
              reboots: eb('device_behaviour_minutes.reboots', '+', eb.ref('excluded.reboots')),
              update_failures: eb('device_behaviour_minutes.update_failures', '+', eb.ref('excluded.update_failures')),
              addresses: eb
                .case()
                .when('excluded.addresses', '>', eb.ref('device_behaviour_minutes.addresses'))
                .then(eb.ref('excluded.addresses'))
                .else(eb.ref('device_behaviour_minutes.addresses'))
                .end(),
            })),
          )
          .execute();
      for (const batch of chunks(addresses, ROWS_PER_STATEMENT))
        await trx
          .insertInto('device_behaviour_addresses')
          .values(batch)
          .onConflict((oc) => oc.columns(['device_id', 'hour', 'address']).doNothing())
          .execute();
      for (const batch of chunks(conflicts, ROWS_PER_STATEMENT))
        await trx.insertInto('device_connection_conflicts').values(batch).execute();
    });
  }

  /** Every minute row from `fromMinute` on (the window a detector tick scores). */
  window(fromMinute: number): Promise<MinuteRow[]> {
    return this.db.selectFrom('device_behaviour_minutes').selectAll().where('minute', '>=', fromMinute).execute();
  }

  /** The devices' rows in [from, to): their history for a learned baseline. */
  async history(deviceIds: string[], from: number, to: number): Promise<MinuteRow[]> {
    const rows: MinuteRow[] = [];
    for (const ids of chunks(deviceIds, IDS_PER_QUERY))
      rows.push(
        ...(await this.db
          .selectFrom('device_behaviour_minutes')
          .selectAll()
          .where('device_id', 'in', ids)
          .where('minute', '>=', from)
          .where('minute', '<', to)
          .execute()),
      );
    return rows;
  }

  /** Distinct source addresses per device over the hours from `fromHour` on. */
  async distinctAddresses(fromHour: number): Promise<Map<string, number>> {
    const rows = await this.db
      .selectFrom('device_behaviour_addresses')
      .select(['device_id', (eb) => eb.fn.count<number>('address').distinct().as('n')])
      .where('hour', '>=', fromHour)
      .groupBy('device_id')
      .execute();
    return new Map(rows.map((r) => [r.device_id, Number(r.n)]));
  }

  /** A device's minute rows from `from` on, oldest first (the API's view of its behaviour). */
  deviceMinutes(deviceId: string, from: number): Promise<MinuteRow[]> {
    return this.db
      .selectFrom('device_behaviour_minutes')
      .selectAll()
      .where('device_id', '=', deviceId)
      .where('minute', '>=', from)
      .orderBy('minute')
      .execute();
  }

  /** Deletes behaviour, addresses and takeovers older than `before`. */
  async prune(before: number): Promise<number> {
    const minutes = await this.db.deleteFrom('device_behaviour_minutes').where('minute', '<', before).executeTakeFirst();
    await this.db
      .deleteFrom('device_behaviour_addresses')
      .where('hour', '<', before - 3_600_000)
      .execute();
    await this.db.deleteFrom('device_connection_conflicts').where('at', '<', before).execute();
    return Number(minutes.numDeletedRows);
  }

  rulesOf(productId: string, db: Kysely<Database> | Transaction<Database> = this.db): Promise<RulesRow | undefined> {
    return db.selectFrom('anomaly_product_rules').selectAll().where('product_id', '=', productId).executeTakeFirst();
  }

  allRules(): Promise<RulesRow[]> {
    return this.db.selectFrom('anomaly_product_rules').selectAll().execute();
  }

  async setRules(row: RulesRow, trx: Transaction<Database>): Promise<void> {
    await trx
      .insertInto('anomaly_product_rules')
      .values(row)
      .onConflict((oc) => oc.column('product_id').doUpdateSet({ rules: row.rules, updated_at: row.updated_at, updated_by: row.updated_by }))
      .execute();
  }

  async deleteRules(productId: string, trx: Transaction<Database>): Promise<boolean> {
    const result = await trx.deleteFrom('anomaly_product_rules').where('product_id', '=', productId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  transaction<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(work);
  }

  /** Anomaly findings not resolved, in every organization (what a tick reconciles against). */
  openAnomalies(): Promise<AssessmentFindingsTable[]> {
    return this.db.selectFrom('assessment_findings').selectAll().where('source', '=', 'anomaly').where('state', '!=', 'resolved').execute();
  }
}
