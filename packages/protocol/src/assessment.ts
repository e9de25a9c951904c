/**
 * The assessment domain as the API serves it (`GET /api/v1/assessment/findings`, `…/runs`): what a
 * check, an anomaly rule or an advisory match found, its severity and state, and the runs of the
 * audit checks. Built by the server (server/src/assessment/service.ts) and read by the console.
 */

export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const FINDING_STATES = ['open', 'resolved', 'suppressed'] as const;
export type FindingState = (typeof FINDING_STATES)[number];

/** What raised a finding. */
export type FindingSource = 'audit' | 'anomaly' | 'advisory';
/** What started a run of the checks. */
export type RunTrigger = 'api' | 'cli' | 'schedule';

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
