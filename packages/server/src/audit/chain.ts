/**
 * The hash chain: each entry's hash is SHA-256 over the canonical JSON (RFC 8785) of its fields
 * and the previous entry's hash. Pure functions, shared by append and verify.
 */
import serialize from 'canonicalize';

/** RFC 8785 canonical JSON (the package's CommonJS default export, typed for ESM). */
const canonicalize = serialize as unknown as (input: unknown) => string;
import { sha256Hex } from '../tokens.js';
import type { AuditLogTable, AuditCheckpointsTable } from '../storage/schema.js';

export const GENESIS_HASH = '0'.repeat(64);

export type ChainedFields = Omit<AuditLogTable, 'hash'>;

export function entryHash(entry: ChainedFields): string {
  return sha256Hex(
    canonicalize({
      seq: entry.seq,
      ts: entry.ts,
      organizationId: entry.organization_id,
      actorType: entry.actor_type,
      actorId: entry.actor_id,
      action: entry.action,
      targetType: entry.target_type,
      targetId: entry.target_id,
      sourceIp: entry.source_ip,
      outcome: entry.outcome,
      details: entry.details,
      prevHash: entry.prev_hash,
    }),
  );
}

/** The bytes a checkpoint signature covers. */
export function checkpointPayload(checkpoint: Omit<AuditCheckpointsTable, 'signature'>): Buffer {
  return Buffer.from(
    canonicalize({
      type: 'bulwark-audit-checkpoint/v1',
      seq: checkpoint.seq,
      hash: checkpoint.hash,
      ts: checkpoint.ts,
      keyId: checkpoint.key_id,
    }),
  );
}

export type ProblemKind = 'gap' | 'broken_link' | 'hash_mismatch' | 'bad_checkpoint' | 'checkpoint_mismatch' | 'missing_checkpoint';

export interface ChainProblem {
  seq: number;
  kind: ProblemKind;
  message: string;
}

/** Checks one entry against its predecessor; returns the problems found (empty when sound). */
export function checkLink(entry: AuditLogTable, previous: { seq: number; hash: string } | null): ChainProblem[] {
  const problems: ChainProblem[] = [];
  const expectedSeq = (previous?.seq ?? 0) + 1;
  if (entry.seq !== expectedSeq) {
    problems.push({
      seq: entry.seq,
      kind: 'gap',
      message: `expected entry ${expectedSeq} but found ${entry.seq}: entries were deleted or inserted`,
    });
  }
  const expectedPrev = previous?.hash ?? GENESIS_HASH;
  if (entry.prev_hash !== expectedPrev) {
    problems.push({
      seq: entry.seq,
      kind: 'broken_link',
      message: `entry ${entry.seq} does not link to the entry before it: entries were reordered, inserted or deleted`,
    });
  }
  if (entryHash(entry) !== entry.hash) {
    problems.push({ seq: entry.seq, kind: 'hash_mismatch', message: `entry ${entry.seq} does not match its hash: its content was edited` });
  }
  return problems;
}
