/**
 * The compliance report: ETSI EN 303 645 provision by provision (the 32 mandatory ones first),
 * then the vetting questions a brand asks its platform, each with the platform's status in this
 * deployment, the evidence (settings, counts, audit entries, open findings, the test results of
 * this build) and what the brand must still do. Generating it needs assessment:read and is
 * audited; it reads counts only, so its cost does not grow with the fleet.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requirePermission, type Actor } from '../../accounts/roles.js';
import type { AuditService } from '../../audit/service.js';
import type { Clock } from '../../clock.js';
import type { Config } from '../../ops/config.js';
import { serverPackageRoot } from '../../package-root.js';
import type { AssessmentStore } from '../store.js';
import { EVIDENCE_ACTIONS, type ComplianceEvidence } from './evidence.js';
import type { ComplianceEvidenceStore } from './evidence-store.js';
import {
  CLAUSES,
  PROVISIONS,
  STANDARD,
  type EvidenceItem,
  type Outcome,
  type PlatformPart,
  type Provision,
  type ProvisionStatus,
} from './etsi-en-303-645.js';
import { DEFAULT_TEST_RESULTS_FILE, readTestResults } from './test-results.js';
import { VETTING_QUESTIONS } from './vetting.js';

export interface ProvisionReport {
  id: string;
  clause: string;
  clauseTitle: string;
  status: ProvisionStatus;
  conditional: boolean;
  summary: string;
  outcome: Outcome;
  /** What the platform does; null when the provision is the device's or the manufacturer's alone. */
  platform: string | null;
  evidence: EvidenceItem[];
  /** What the brand must still do on the device or in its processes ('' when nothing). */
  brand: string;
}

export interface VettingAnswer {
  id: string;
  question: string;
  outcome: Exclude<Outcome, 'brand'>;
  answer: string;
  evidence: EvidenceItem[];
}

export type OutcomeCounts = Record<Outcome, number> & { total: number };

export interface ComplianceReport {
  standard: string;
  version: string;
  generatedAt: string;
  organization: { id: string; slug: string; name: string };
  build: {
    version: string;
    tests: { generatedAt: string; commit: string | null; complete: boolean; passed: number; failed: number; skipped: number } | null;
  };
  summary: { mandatory: OutcomeCounts; recommended: OutcomeCounts };
  provisions: ProvisionReport[];
  vetting: VettingAnswer[];
}

const PLATFORM_VERSION = (JSON.parse(readFileSync(join(serverPackageRoot(), 'package.json'), 'utf8')) as { version: string }).version;

export class ComplianceService {
  constructor(
    private readonly store: ComplianceEvidenceStore,
    private readonly findings: AssessmentStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly config: Config,
  ) {}

  async report(actor: Actor): Promise<ComplianceReport> {
    requirePermission(actor, 'assessment:read');
    const ev = await this.evidence(actor.organizationId);
    const provisions = orderedProvisions().map((p) => assessProvision(p, ev));
    const vetting = VETTING_QUESTIONS.map((q): VettingAnswer => {
      const part = q.answer(ev);
      const evidence = [...part.evidence, ...testEvidence(q.tests, ev)];
      return {
        id: q.id,
        question: q.question,
        outcome: evidence.some((e) => e.ok === false) ? 'attention' : 'met',
        answer: part.statement,
        evidence,
      };
    });
    const report: ComplianceReport = {
      standard: STANDARD.id,
      version: STANDARD.version,
      generatedAt: new Date(ev.now).toISOString(),
      organization: { id: ev.organization.id, slug: ev.organization.slug, name: ev.organization.name },
      build: {
        version: PLATFORM_VERSION,
        tests: ev.tests && { generatedAt: ev.tests.generatedAt, commit: ev.tests.commit, complete: ev.tests.complete, ...ev.tests.totals },
      },
      summary: { mandatory: tally(provisions, 'M'), recommended: tally(provisions, 'R') },
      provisions,
      vetting,
    };
    await this.audit.recordBy(
      actor,
      'assessment.report_generated',
      { type: 'compliance_report', id: STANDARD.id },
      {
        standard: `${STANDARD.id} ${STANDARD.version}`,
        mandatory: report.summary.mandatory,
        recommended: report.summary.recommended,
      },
    );
    return report;
  }

  private async evidence(organizationId: string): Promise<ComplianceEvidence> {
    const now = this.clock.now();
    const { config } = this;
    const [organization, counts, audit, open, tests] = await Promise.all([
      this.store.organization(organizationId),
      this.store.counts(organizationId),
      this.store.auditActions(organizationId, EVIDENCE_ACTIONS),
      this.findings.list(organizationId, { state: 'open' }, 10_000),
      readTestResults(config.assessment.testResultsFile ?? DEFAULT_TEST_RESULTS_FILE).then(
        (results) => ({ results, unreadable: null }),
        (error: unknown) => ({ results: null, unreadable: (error as Error).message }),
      ),
    ]);
    if (!organization) throw new Error(`organization ${organizationId} not found`);
    const base = config.http.publicUrl?.replace(/\/+$/, '');
    return {
      now,
      organization,
      settings: {
        tlsMinVersion: 'TLSv1.2',
        plainMqttPort: config.mqtt.plainPort,
        trustProxy: config.http.trustProxy,
        httpRateLimitPerMinute: config.http.rateLimitPerMinute,
        loginRateLimitPerMinute: config.auth.loginRateLimitPerMinute,
        maxRateLimitPerMinute: config.assessment.maxRateLimitPerMinute,
        metricsTokenSet: config.metrics.tokenHash !== undefined,
        backupIntervalHours: config.backup.intervalHours,
        assessmentIntervalMinutes: config.assessment.intervalMinutes,
        auditCheckpointSeconds: config.audit.checkpointIntervalSeconds,
        masterKeyOnToken: config.keys?.pkcs11 !== undefined,
        disclosureContact: config.disclosure.contact ?? (base ? `${base}/api/v1/disclosures` : null),
      },
      counts,
      audit,
      openFindings: open.map((f) => ({ check: f.check_id, severity: f.severity, id: f.id })),
      tests: tests.results,
      ...(tests.unreadable === null ? {} : { testsUnreadable: tests.unreadable }),
    };
  }
}

/** Mandatory provisions first, then recommended, each in the standard's order. */
export function orderedProvisions(): Provision[] {
  return [...PROVISIONS.filter((p) => p.status === 'M'), ...PROVISIONS.filter((p) => p.status === 'R')];
}

export function assessProvision(provision: Provision, ev: ComplianceEvidence): ProvisionReport {
  const part: PlatformPart | null = provision.platform(ev);
  const evidence = [...(part?.evidence ?? []), ...testEvidence(provision.tests, ev)];
  const outcome: Outcome = evidence.some((e) => e.ok === false) ? 'attention' : part ? 'met' : 'brand';
  return {
    id: provision.id,
    clause: provision.clause,
    clauseTitle: CLAUSES[provision.clause] ?? provision.clause,
    status: provision.status,
    conditional: provision.conditional,
    summary: provision.summary,
    outcome,
    platform: part?.statement ?? null,
    evidence,
    brand: provision.brand,
  };
}

/** One item per test file: its results in this build (a failure is a gap), or that the build has none for it. */
function testEvidence(files: readonly string[], { tests: results, testsUnreadable }: ComplianceEvidence): EvidenceItem[] {
  return files.map((file) => {
    if (testsUnreadable !== undefined) return { kind: 'test', name: file, value: `test results unreadable: ${testsUnreadable}`, ok: false };
    const counts = results?.files[file];
    if (!counts)
      return { kind: 'test', name: file, value: results ? 'not in this build’s results' : 'no test results shipped with this build' };
    return {
      kind: 'test',
      name: file,
      value: `${counts.passed} passed, ${counts.failed} failed`,
      ok: counts.failed === 0 && counts.passed > 0,
    };
  });
}

function tally(provisions: ProvisionReport[], status: ProvisionStatus): OutcomeCounts {
  const counts: OutcomeCounts = { total: 0, met: 0, attention: 0, brand: 0 };
  for (const p of provisions.filter((x) => x.status === status)) {
    counts.total++;
    counts[p.outcome]++;
  }
  return counts;
}
