/**
 * The words of the assessment domain: findings (what a check, and later an anomaly rule or an
 * advisory match, found), their severities and states, the resources they name, and check runs.
 */
import type { FindingView, ResourceRef, RunView } from '@bulwark/protocol';
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

export { FINDING_STATES, SEVERITIES } from '@bulwark/protocol';

/** A finding, a resource it names and a run of the checks: wire shapes the console reads too (@bulwark/protocol). */
export type { FindingView, ResourceRef, RunView };

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
