/**
 * The audit tables: `audit_log` (the hash chain), `audit_personal` (personal fields beside the
 * chain) and `audit_checkpoints` (signed checkpoints). The service (audit/service.ts) holds the
 * chain's rules, the hashing and signing and the transactions; each write takes the transaction's
 * executor, which holds the chain lock (`lockChain`).
 */
import { sql, type Kysely } from 'kysely';
import type { Engine } from '../storage/database.js';
import type { AuditCheckpointsTable, AuditLogTable, AuditPersonalTable, Database } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

/** An entry with its personal fields (JSON), as readers see it. */
export type AuditRowWithPersonal = AuditLogTable & { personal: string | null };

export interface AuditFilter {
  organizationId?: string | null;
  action?: string;
  actorId?: string;
  targetId?: string;
  outcome?: 'success' | 'failure' | 'denied';
  since?: number;
  until?: number;
  /** Entries older than this sequence number. */
  before?: number;
}

const PG_AUDIT_LOCK = 7_462_001;

export class AuditStore {
  constructor(
    readonly db: Kysely<Database>,
    private readonly engine: Engine,
  ) {}

  /** Serializes the appenders for the rest of the transaction (PostgreSQL: an advisory lock; SQLite has one writer). */
  async lockChain(trx: Executor): Promise<void> {
    if (this.engine === 'postgres') await sql`select pg_advisory_xact_lock(${PG_AUDIT_LOCK})`.execute(trx);
  }

  /** The newest entry's sequence number and hash. */
  last(trx: Executor): Promise<{ seq: number; hash: string } | undefined> {
    return trx.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  }

  async insertEntry(row: AuditLogTable, trx: Executor): Promise<void> {
    await trx.insertInto('audit_log').values(row).execute();
  }

  async insertPersonal(row: AuditPersonalTable, trx: Executor): Promise<void> {
    await trx.insertInto('audit_personal').values(row).execute();
  }

  /** Stores a checkpoint unless one at its sequence number exists. */
  async insertCheckpoint(row: AuditCheckpointsTable, trx: Executor): Promise<void> {
    await trx
      .insertInto('audit_checkpoints')
      .values(row)
      .onConflict((oc) => oc.column('seq').doNothing())
      .execute();
  }

  async hasCheckpoint(seq: number, trx: Executor): Promise<boolean> {
    return (await trx.selectFrom('audit_checkpoints').select('seq').where('seq', '=', seq).executeTakeFirst()) !== undefined;
  }

  /** Every checkpoint, oldest first. */
  checkpoints(): Promise<AuditCheckpointsTable[]> {
    return this.db.selectFrom('audit_checkpoints').selectAll().orderBy('seq').execute();
  }

  /** Up to `limit` entries after `after`, oldest first. */
  entriesAfter(after: number, limit: number): Promise<AuditLogTable[]> {
    return this.db.selectFrom('audit_log').selectAll().where('seq', '>', after).orderBy('seq').limit(limit).execute();
  }

  /** Deletes the personal fields held about a user; how many entries had some. */
  async erasePersonal(userId: string, db: Executor = this.db): Promise<number> {
    const result = await db.deleteFrom('audit_personal').where('subject_user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Up to `limit` entries matching the filter, newest first, with their personal fields. */
  newest(filter: AuditFilter, limit: number): Promise<AuditRowWithPersonal[]> {
    let query = this.db
      .selectFrom('audit_log')
      .leftJoin('audit_personal', 'audit_personal.seq', 'audit_log.seq')
      .selectAll('audit_log')
      .select('audit_personal.data as personal')
      .orderBy('audit_log.seq', 'desc')
      .limit(limit);
    if (filter.organizationId !== undefined)
      query =
        filter.organizationId === null
          ? query.where('organization_id', 'is', null)
          : query.where('organization_id', '=', filter.organizationId);
    if (filter.action) query = query.where('action', '=', filter.action);
    if (filter.actorId) query = query.where('actor_id', '=', filter.actorId);
    if (filter.targetId) query = query.where('target_id', '=', filter.targetId);
    if (filter.outcome) query = query.where('outcome', '=', filter.outcome);
    if (filter.since !== undefined) query = query.where('ts', '>=', filter.since);
    if (filter.until !== undefined) query = query.where('ts', '<', filter.until);
    if (filter.before !== undefined) query = query.where('audit_log.seq', '<', filter.before);
    return query.execute();
  }

  /** Up to `limit` entries after `after`, oldest first, with their personal fields; of one organization when given. */
  page(after: number, organizationId: string | null | undefined, limit: number): Promise<AuditRowWithPersonal[]> {
    let query = this.db
      .selectFrom('audit_log')
      .leftJoin('audit_personal', 'audit_personal.seq', 'audit_log.seq')
      .selectAll('audit_log')
      .select('audit_personal.data as personal')
      .where('audit_log.seq', '>', after)
      .orderBy('audit_log.seq')
      .limit(limit);
    if (organizationId !== undefined)
      query = organizationId === null ? query.where('organization_id', 'is', null) : query.where('organization_id', '=', organizationId);
    return query.execute();
  }
}
