/**
 * The words of the assessment domain: findings (what a check, and later an anomaly rule or an
 * advisory match, found), their severities and states, the resources they name, and check runs.
 */
import type { AssessmentFindingsTable, AssessmentRunsTable } from '../storage/schema.js';

export type Severity = AssessmentFindingsTable['severity'];
export type FindingState = AssessmentFindingsTable['state'];
export type FindingSource = AssessmentFindingsTable['source'];
export type RunTrigger = AssessmentRunsTable['trigger'];

/** The columns a check's observation sets on a finding each time it is seen. */
type ObservedColumns = Pick<AssessmentFindingsTable, 'severity' | 'title' | 'evidence' | 'resource_count' | 'last_seen_at'>;

/** A finding's row when first seen: open, neither resolved nor suppressed, with what was observed. */
export function newFinding(
  key: Pick<AssessmentFindingsTable, 'id' | 'organization_id' | 'check_id' | 'subject' | 'source' | 'first_seen_at'>,
  observed: ObservedColumns,
): AssessmentFindingsTable {
  return {
    ...key,
    state: 'open',
    resolved_at: null,
    suppressed_reason: null,
    suppressed_by: null,
    suppressed_at: null,
    suppressed_until: null,
    ...observed,
  };
}

export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'info'];
export const FINDING_STATES: readonly FindingState[] = ['open', 'resolved', 'suppressed'];

/** A resource a finding names: `device`, `certificate`, `ca_certificate`, `user`, `api_key`, `symmetric_key`, `setting`, `tuf_role`, … */
export interface ResourceRef {
  type: string;
  id: string;
}

export interface FindingView {
  id: string;
  organizationId: string;
  check: string;
  subject: string;
  source: FindingSource;
  severity: Severity;
  title: string;
  evidence: Record<string, unknown>;
  resources: ResourceRef[];
  /** Affected resources beyond those listed. */
  moreResources: number;
  state: FindingState;
  firstSeenAt: string;
  lastSeenAt: string;
  resolvedAt: string | null;
  suppression: { reason: string; by: string; at: string; until: string } | null;
}

export interface RunView {
  id: string;
  organizationId: string;
  trigger: RunTrigger;
  startedAt: string;
  durationMs: number;
  checks: string[];
  opened: number;
  resolved: number;
  openTotal: number;
  /** Checks that could not be evaluated (their findings are left as they were). */
  failures: { check: string; message: string }[];
}

export interface FindingFilter {
  state?: FindingState;
  severity?: Severity;
  check?: string;
  /** The previous page's nextCursor. */
  cursor?: string;
  limit?: number;
}

export const MITIGATIONS = ['quarantine', 'revoke', 'rekey', 'notify'] as const;
export type Mitigation = (typeof MITIGATIONS)[number];
