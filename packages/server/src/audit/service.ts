/**
 * The tamper-evident audit log: append (serialized, hash-chained), signed checkpoints,
 * verification, filtered queries with cursor pagination, and JSON-lines export.
 */
import type { AuditEntry } from '@bulwark/protocol';
import type { Clock } from '../clock.js';
import type { SigningKeys } from '../keys/signing-keys.js';
import type { AuditLogTable } from '../storage/schema.js';
import { pageOf } from '../pagination.js';
import { checkLink, checkpointPayload, entryHash, GENESIS_HASH, type ChainProblem } from './chain.js';
import type { AuditFilter, AuditStore } from './store.js';
import type { Executor } from '../storage/executor.js';

export interface AuditEvent {
  organizationId: string | null;
  actor: { type: 'user' | 'api_key' | 'system' | 'cli' | 'anonymous' | 'device'; id: string | null };
  action: string;
  target?: { type: string; id: string | null };
  sourceIp?: string | null;
  outcome?: 'success' | 'failure' | 'denied';
  details?: Record<string, unknown>;
  /**
   * Personal fields (an email address, a name): kept beside the chain, not in it, and erased with
   * the account of `subject` (the user they are about; null when none exists, e.g. an unknown
   * address at sign-in). Readers see them merged into `details`.
   */
  personal?: { subject: string | null; fields: Record<string, unknown> };
}

/** Who acted, as `recordBy` needs it: an authenticated actor (accounts' `Actor` has this shape). */
export interface AuditedActor {
  organizationId: string;
  userId: string;
  apiKeyId: string | null;
  via: 'session' | 'api_key' | 'cli' | 'app';
  sourceIp: string;
}

/** How an authenticated actor is named in an entry: the user, the API key, or the admin at the command line. */
export function auditedActorOf(actor: AuditedActor): { type: 'user' | 'api_key' | 'cli'; id: string } {
  if (actor.via === 'cli') return { type: 'cli', id: actor.userId };
  // An app acts for its consumer: the entry names the user; the client is in the entry's details.
  return actor.via === 'api_key' ? { type: 'api_key', id: actor.apiKeyId! } : { type: 'user', id: actor.userId };
}

/** An entry as the API serves it: a wire shape the console reads too (@bulwark/protocol). */
export type { AuditEntry };

/** `before`: the previous page's `nextCursor`. */
export interface AuditQuery extends AuditFilter {
  limit?: number;
}

export interface VerifyReport {
  ok: boolean;
  entries: number;
  checkpoints: number;
  lastSeq: number;
  problems: ChainProblem[];
}

/** Every Nth entry is checkpointed as it is appended; fixed, so verify knows which must exist. */
export const CHECKPOINT_EVERY = 100;
const VERIFY_PAGE = 1000;

export function toEntry(row: AuditLogTable & { personal?: string | null }): AuditEntry {
  const details = JSON.parse(row.details) as Record<string, unknown>;
  return {
    seq: row.seq,
    ts: new Date(row.ts).toISOString(),
    organizationId: row.organization_id,
    actor: { type: row.actor_type, id: row.actor_id },
    action: row.action,
    target: { type: row.target_type, id: row.target_id },
    sourceIp: row.source_ip,
    outcome: row.outcome,
    details: row.personal ? { ...details, ...(JSON.parse(row.personal) as Record<string, unknown>) } : details,
    hash: row.hash,
  };
}

export class AuditService {
  /** Whether this process appended entries since it last signed a checkpoint. */
  private appendedSinceCheckpoint = false;

  constructor(
    private readonly store: AuditStore,
    private readonly keys: SigningKeys,
    private readonly clock: Clock,
    private readonly checkpointEvery = CHECKPOINT_EVERY,
  ) {}

  /** Appends an event. Pass the caller's transaction so the action and its record commit together. */
  async record(event: AuditEvent, db: Executor = this.store.db): Promise<number> {
    if (db.isTransaction) return this.append(db, event);
    return db.transaction().execute((trx) => this.append(trx, event));
  }

  /**
   * Appends what an authenticated actor did: the organization, the actor and the source address
   * come from `actor`. Pass the caller's transaction as `db`; `more` sets a non-success outcome or
   * personal fields.
   */
  async recordBy(
    actor: AuditedActor,
    action: string,
    target: AuditEvent['target'] | null,
    details?: Record<string, unknown>,
    db: Executor = this.store.db,
    more: Pick<AuditEvent, 'outcome' | 'personal'> = {},
  ): Promise<number> {
    const event: AuditEvent = {
      organizationId: actor.organizationId,
      actor: auditedActorOf(actor),
      action,
      sourceIp: actor.sourceIp,
      ...more,
    };
    if (target) event.target = target;
    if (details) event.details = details;
    return this.record(event, db);
  }

  private async append(trx: Executor, event: AuditEvent): Promise<number> {
    await this.store.lockChain(trx);
    const last = await this.store.last(trx);
    const fields = {
      seq: (last?.seq ?? 0) + 1,
      ts: this.clock.now(),
      organization_id: event.organizationId,
      actor_type: event.actor.type,
      actor_id: event.actor.id,
      action: event.action,
      target_type: event.target?.type ?? null,
      target_id: event.target?.id ?? null,
      source_ip: event.sourceIp ?? null,
      outcome: event.outcome ?? 'success',
      details: JSON.stringify(event.details ?? {}),
      prev_hash: last?.hash ?? GENESIS_HASH,
    };
    const hash = entryHash(fields);
    await this.store.insertEntry({ ...fields, hash }, trx);
    if (event.personal)
      await this.store.insertPersonal(
        { seq: fields.seq, subject_user_id: event.personal.subject, data: JSON.stringify(event.personal.fields) },
        trx,
      );
    this.appendedSinceCheckpoint = true;
    if (fields.seq % this.checkpointEvery === 0) await this.writeCheckpoint(trx, fields.seq, hash);
    return fields.seq;
  }

  private async writeCheckpoint(trx: Executor, seq: number, hash: string): Promise<void> {
    const key = await this.keys.current('audit-checkpoint', trx);
    const checkpoint = { seq, hash, ts: this.clock.now(), key_id: key.id };
    await this.store.insertCheckpoint({ ...checkpoint, signature: key.sign(checkpointPayload(checkpoint)) }, trx);
  }

  /** Signs a checkpoint over the newest entry if it is not covered yet (run periodically). */
  async checkpoint(): Promise<number | null> {
    this.appendedSinceCheckpoint = false;
    return this.store.db.transaction().execute(async (trx) => {
      await this.store.lockChain(trx);
      const last = await this.store.last(trx);
      if (!last) return null;
      if (!(await this.store.hasCheckpoint(last.seq, trx))) await this.writeCheckpoint(trx, last.seq, last.hash);
      return last.seq;
    });
  }

  /**
   * Signs a checkpoint if this process appended entries since its last one. A CLI command runs
   * this before it exits: no node may be serving to checkpoint its entries, and entries after the
   * last checkpoint could otherwise be cut from the log without `verify` noticing.
   */
  async checkpointOwnEntries(): Promise<number | null> {
    return this.appendedSinceCheckpoint ? this.checkpoint() : null;
  }

  /** Walks the whole chain and every checkpoint; reports each edit, deletion, insertion or reordering. */
  async verify(): Promise<VerifyReport> {
    const problems: ChainProblem[] = [];
    let previous: { seq: number; hash: string } | null = null;
    let entries = 0;
    const hashes = new Map<number, string>();
    const checkpoints = await this.store.checkpoints();
    const checkpointSeqs = new Set(checkpoints.map((c) => c.seq));
    for (let after = 0; ;) {
      const page = await this.store.entriesAfter(after, VERIFY_PAGE);
      for (const row of page) {
        problems.push(...checkLink(row, previous));
        if (checkpointSeqs.has(row.seq)) hashes.set(row.seq, row.hash);
        previous = { seq: row.seq, hash: row.hash };
        entries++;
      }
      if (page.length < VERIFY_PAGE) break;
      after = page[page.length - 1]!.seq;
    }
    for (const cp of checkpoints) {
      const signed = await this.keys.verify(cp.key_id, checkpointPayload(cp), cp.signature);
      if (!signed)
        problems.push({ seq: cp.seq, kind: 'bad_checkpoint', message: `checkpoint at entry ${cp.seq} has an invalid signature` });
      const actual = hashes.get(cp.seq);
      if (actual !== cp.hash) {
        problems.push({
          seq: cp.seq,
          kind: 'checkpoint_mismatch',
          message: actual
            ? `entry ${cp.seq} differs from the signed checkpoint: the chain was rewritten`
            : `entry ${cp.seq}, covered by a signed checkpoint, is missing: the log was truncated`,
        });
      }
    }
    const lastSeq = previous?.seq ?? 0;
    for (let seq = this.checkpointEvery; seq <= lastSeq; seq += this.checkpointEvery) {
      if (!checkpointSeqs.has(seq))
        problems.push({
          seq,
          kind: 'missing_checkpoint',
          message: `the signed checkpoint at entry ${seq} is missing: checkpoints were deleted`,
        });
    }
    return { ok: problems.length === 0, entries, checkpoints: checkpoints.length, lastSeq, problems };
  }

  /** Erases the personal fields entries hold about a user (their account is deleted); the chain is untouched and still verifies. */
  async erasePersonalDataOf(userId: string, db: Executor = this.store.db): Promise<number> {
    return this.store.erasePersonal(userId, db);
  }

  /** Newest first; `nextCursor` is passed back as `before` for the next page. */
  async query(q: AuditQuery): Promise<{ entries: AuditEntry[]; nextCursor: number | null }> {
    const limit = Math.min(Math.max(q.limit ?? 50, 1), 500);
    const { page, nextCursor } = pageOf(await this.store.newest(q, limit + 1), limit, (last) => last.seq);
    return { entries: page.map(toEntry), nextCursor };
  }

  /** Oldest first, as JSON lines, page by page (constant memory). Scoped to an organization when given. */
  async *export(organizationId?: string | null): AsyncGenerator<string> {
    for (let after = 0; ;) {
      const page = await this.store.page(after, organizationId, VERIFY_PAGE);
      for (const row of page) yield JSON.stringify({ ...toEntry(row), prevHash: row.prev_hash }) + '\n';
      if (page.length < VERIFY_PAGE) return;
      after = page[page.length - 1]!.seq;
    }
  }
}
