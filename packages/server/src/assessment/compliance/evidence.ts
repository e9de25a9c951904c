/**
 * What the compliance report reads about one organization and its deployment: settings, counts,
 * audit entries, open findings and the test results of this build. Gathered once per report by
 * `ComplianceService`, then read by every provision's assessment (pure functions).
 */
import type { Severity } from '../model.js';
import type { TestResults } from './test-results.js';

export interface ComplianceEvidence {
  now: number;
  organization: { id: string; slug: string; name: string; mfaRequiredRoles: string[] };
  settings: {
    tlsMinVersion: 'TLSv1.2';
    plainMqttPort: number | null;
    trustProxy: boolean;
    httpRateLimitPerMinute: number;
    loginRateLimitPerMinute: number;
    maxRateLimitPerMinute: number;
    metricsTokenSet: boolean;
    backupIntervalHours: number;
    assessmentIntervalMinutes: number;
    auditCheckpointSeconds: number;
    masterKeyOnToken: boolean;
    disclosureContact: string | null;
  };
  counts: {
    devices: number;
    activeCertificates: number;
    symmetricKeys: number;
    products: number;
    productsWithSupportPeriod: number;
    productsWithPrivacyDeclaration: number;
    releases: number;
    rollouts: number;
    operators: number;
    disclosures: number;
    consentDecisions: number;
  };
  /** Audit entries of the organization (and deployment-wide ones) by action: how many, and the newest. */
  audit: Record<string, { count: number; last: number | null }>;
  openFindings: { check: string; severity: Severity; id: string }[];
  /** null: this build ships no test results (see `assessment.testResultsFile`). */
  tests: TestResults | null;
  /** Why the test results file could not be used (malformed or unreadable); the cited provisions then need attention. */
  testsUnreadable?: string;
}

/** The audit actions the report counts as evidence. */
export const EVIDENCE_ACTIONS = [
  'assessment.run',
  'assessment.mitigation',
  'assessment.advisories_imported',
  'assessment.remediation_started',
  'backup.created',
  'backup.drilled',
  'keys.master_rotated',
  'pki.certificate_revoked',
  'device.credentials_rotated',
  'auth.lockout',
  'update.release_created',
  'update.rollout_created',
  'update.rollout_halted',
  'update.release_policy_set',
  'product.privacy_declared',
  'product.support_period_set',
  'binding.consent_changed',
  'binding.reset_confirmed',
  'user.deleted',
  'user.data_exported',
  'disclosure.received',
  'disclosure.state_changed',
] as const;
