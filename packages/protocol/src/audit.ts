/**
 * An entry of the hash-chained audit log as the API serves it (`GET /api/v1/audit`, the export),
 * written by the server (server/src/audit/) and read by the console.
 */
export type AuditOutcome = 'success' | 'failure' | 'denied';

export interface AuditEntry {
  seq: number;
  ts: string;
  organizationId: string | null;
  actor: { type: string; id: string | null };
  action: string;
  target: { type: string | null; id: string | null };
  sourceIp: string | null;
  outcome: string;
  details: Record<string, unknown>;
  hash: string;
}
