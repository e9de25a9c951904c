/**
 * The questions a brand asks before it trusts a platform with its products, each answered with the
 * evidence this deployment and this build produce: the same evidence items, tests and outcomes as
 * the ETSI provisions (etsi-en-303-645.ts).
 */
import type { ComplianceEvidence } from './evidence.js';
import type { EvidenceItem, PlatformPart } from './etsi-en-303-645.js';

export interface VettingQuestion {
  id: string;
  question: string;
  tests: readonly string[];
  answer(ev: ComplianceEvidence): PlatformPart;
}

const S = 'packages/server/src/';
const D = 'packages/device/src/';

function openOf(ev: ComplianceEvidence, check: string): EvidenceItem {
  const open = ev.openFindings.filter((f) => f.check === check);
  return { kind: 'finding', name: check, value: open.length === 0 ? 'no open finding' : `${open.length} open`, ok: open.length === 0 };
}

function auditCount(ev: ComplianceEvidence, action: string, required = false): EvidenceItem {
  const n = ev.audit[action]?.count ?? 0;
  return { kind: 'audit', name: action, value: n, ...(required ? { ok: n > 0 } : {}) };
}

function testTotals(ev: ComplianceEvidence): EvidenceItem[] {
  if (!ev.tests) {
    const value = ev.testsUnreadable === undefined ? 'none shipped with this build' : `test results unreadable: ${ev.testsUnreadable}`;
    return [{ kind: 'test', name: 'test results of this build', value, ok: false }];
  }
  const { passed, failed, skipped } = ev.tests.totals;
  return [
    {
      kind: 'test',
      name: `all tests (${ev.tests.complete ? 'complete run' : 'partial run'}, ${Object.keys(ev.tests.files).length} files, commit ${ev.tests.commit ?? 'unknown'})`,
      value: `${passed} passed, ${failed} failed, ${skipped} skipped`,
      ok: failed === 0 && ev.tests.complete,
    },
  ];
}

export const VETTING_QUESTIONS: readonly VettingQuestion[] = [
  {
    id: 'secure-development',
    question: 'How is the platform developed securely?',
    tests: [`${S}architecture.test.ts`, `${S}updates/release-provenance.test.ts`],
    answer: (ev) => ({
      statement:
        'Strict TypeScript, a linter that enforces the layers, every change through CI (types, lint, format, the whole test suite on both database engines, an SBOM matched against advisories). Firmware releases can be gated on provenance and test attestations.',
      evidence: [...testTotals(ev), auditCount(ev, 'update.release_policy_set'), { kind: 'document', name: 'sbom.cdx.json', value: null }],
    }),
  },
  {
    id: 'automated-testing',
    question: 'What is tested automatically, and did this build pass?',
    tests: [],
    answer: (ev) => ({
      statement:
        'Unit tests for pure logic, integration tests against real services (SQLite, PostgreSQL, a real MQTT broker over TLS, openssl), and an attack test for each security promise.',
      evidence: testTotals(ev),
    }),
  },
  {
    id: 'visibility',
    question: 'What can the brand see of its fleet and of the platform?',
    tests: [`${S}audit/service.test.ts`, `${S}ops/metrics.test.ts`],
    answer: (ev) => ({
      statement:
        'A tamper-evident audit log with signed checkpoints, scheduled audit checks with findings, per-device meters and Prometheus metrics behind a scrape token.',
      evidence: [
        openOf(ev, 'audit-chain-broken'),
        { kind: 'setting', name: 'audit.checkpointIntervalSeconds', value: ev.settings.auditCheckpointSeconds },
        {
          kind: 'setting',
          name: 'assessment.intervalMinutes',
          value: ev.settings.assessmentIntervalMinutes,
          ok: ev.settings.assessmentIntervalMinutes > 0,
        },
        auditCount(ev, 'assessment.run', true),
        { kind: 'setting', name: 'metrics scrape token set', value: ev.settings.metricsTokenSet },
      ],
    }),
  },
  {
    id: 'storage-and-recovery',
    question: 'How is data stored, transmitted, made redundant and recovered?',
    tests: [`${S}ops/backup/backup.test.ts`, `${S}transport/mqtt/cluster.test.ts`, `${S}telemetry/durability.test.ts`],
    answer: (ev) => ({
      statement:
        'SQLite or PostgreSQL; secrets sealed under a master key (or a PKCS#11 token); TLS 1.2+ on every channel; several nodes over one PostgreSQL and Redis; encrypted, signed backups, restored in drills.',
      evidence: [
        { kind: 'setting', name: 'tls.minVersion', value: ev.settings.tlsMinVersion, ok: true },
        { kind: 'setting', name: 'backup.intervalHours', value: ev.settings.backupIntervalHours, ok: ev.settings.backupIntervalHours > 0 },
        auditCount(ev, 'backup.created', true),
        auditCount(ev, 'backup.drilled', true),
        openOf(ev, 'backup-stale'),
        openOf(ev, 'backup-not-drilled'),
      ],
    }),
  },
  {
    id: 'device-and-user-management',
    question: 'How are devices and people identified and managed?',
    tests: [`${S}devices/lifecycle.test.ts`, `${S}accounts/mfa.test.ts`, `${S}accounts/sso.test.ts`],
    answer: (ev) => ({
      statement:
        'Every device has its own certificate or key and a lifecycle (active, quarantined, disabled, retired); operators have roles, MFA by policy, SSO, sessions and scoped API keys; consumers bind devices with claim codes.',
      evidence: [
        { kind: 'count', name: 'devices', value: ev.counts.devices },
        { kind: 'count', name: 'operators', value: ev.counts.operators },
        { kind: 'setting', name: 'organization.mfaRequiredRoles', value: ev.organization.mfaRequiredRoles.join(', ') || 'none' },
        openOf(ev, 'operator-without-mfa'),
        openOf(ev, 'revoked-certificate-connected'),
      ],
    }),
  },
  {
    id: 'failure-testing',
    question: 'Which failure scenarios are tested?',
    tests: [
      `${S}telemetry/durability.test.ts`,
      `${D}updates/power-cut.test.ts`,
      `${S}transport/mqtt/abuse.test.ts`,
      `${S}transport/mqtt/overload.test.ts`,
      `${S}transport/mqtt/cluster.test.ts`,
      `${S}runner/shutdown.test.ts`,
    ],
    answer: () => ({
      statement:
        'A SIGKILL during ingest loses nothing acknowledged; a power cut at every step of an update leaves a bootable device; one abusive device cannot take the node down; overload is shed; a node of two can be lost; shutdown drains.',
      evidence: [],
    }),
  },
  {
    id: 'remediation',
    question: 'How are vulnerabilities and incidents remediated?',
    tests: [`${S}assessment/routes.test.ts`, `${S}updates/rollout-retries.test.ts`],
    answer: (ev) => ({
      statement:
        'Findings are acted on (quarantine, revoke, re-key, notify by email and signed webhook); an advisory matched against release SBOMs starts a remediation rollout; a fixed release reaches the fleet through a staged rollout that halts itself on failures; reported vulnerabilities are tracked to resolution.',
      evidence: [
        auditCount(ev, 'assessment.mitigation'),
        auditCount(ev, 'assessment.remediation_started'),
        openOf(ev, 'firmware-known-vulnerability'),
        auditCount(ev, 'update.rollout_created'),
        auditCount(ev, 'update.rollout_halted'),
        openOf(ev, 'disclosure-overdue'),
        {
          kind: 'count',
          name: 'open findings (critical or high)',
          value: ev.openFindings.filter((f) => f.severity === 'critical' || f.severity === 'high').length,
        },
      ],
    }),
  },
];
