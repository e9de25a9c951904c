/**
 * What an audit check is: an ID, a one-line rationale, a default severity and title, and an
 * evaluation that returns what it observes now. A run turns observations into findings: one
 * finding per (check, subject), opened when first observed, kept while observed, resolved when
 * no longer observed.
 */
import type { AuditService } from '../../audit/service.js';
import type { Config } from '../../ops/config.js';
import type { AdvisoryView } from '../advisories/service.js';
import type { EvidenceStore } from '../evidence-store.js';
import type { ResourceRef, Severity } from '../model.js';

export interface Observation {
  /** What the finding is about within the check; '' (the default) for the check as a whole. */
  subject?: string;
  severity?: Severity;
  title?: string;
  evidence: Record<string, unknown>;
  /** At most the context's `resourceLimit` resources. */
  resources: ResourceRef[];
  /** Every affected resource, listed or not (defaults to resources.length). */
  resourceCount?: number;
}

export interface CheckContext {
  organizationId: string;
  now: number;
  config: Config;
  evidence: EvidenceStore;
  audit: AuditService;
  /** The deployment's CA chain (PEM): the issuing CA devices' certificates chain to, and its roots. */
  caChain(): Promise<string>;
  resourceLimit: number;
  /**
   * The imported advisories that affect a release of the organization, each with the devices running one (at most
   * `resourceLimit` listed); evaluating records the day's exposure. Absent where advisories are not wired (unit tests).
   */
  vulnerabilities?(): Promise<(AdvisoryView & { deviceIds: string[] })[]>;
  /**
   * What `keyWeakness` said of each active device certificate of the organization, by serial, kept
   * across runs: a certificate never changes, so each is parsed once per process, not at every run.
   */
  keyVerdicts: Map<string, string | null>;
  /** A value computed once per batch of runs (deployment-wide evidence, e.g. the audit chain's verification). */
  once<T>(key: string, compute: () => Promise<T>): Promise<T>;
}

export interface Check {
  id: string;
  /** Why it matters, in one line (listed in docs/assessment.md and the API). */
  rationale: string;
  severity: Severity;
  title: string;
  evaluate(ctx: CheckContext): Promise<Observation[]>;
}

export const DAY_MS = 86_400_000;
