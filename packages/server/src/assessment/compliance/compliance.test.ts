/**
 * The ETSI EN 303 645 compliance report. Unit: the catalogue is the standard's (67 provisions,
 * 32 mandatory, per-clause counts), every test file it cites exists, test results are parsed
 * strictly, a failed test turns a provision to "attention", and the HTML page is inert and carries
 * its own CSP. On a real node, both engines: the report reacts to the deployment (a product
 * without a support period, then one declared; a test of this build failing, then passing), the
 * HTML form, who may read it, and the audit entry.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../../errors.js';
import { createOperator, signIn } from '../../testing/accounts.js';
import { organizationIdOf, testProduct } from '../../testing/devices.js';
import { ENGINES } from '../../testing/engines.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../../testing/server.js';
import { CLAUSES, PROVISIONS } from './etsi-en-303-645.js';
import type { ComplianceEvidence } from './evidence.js';
import { escapeHtml, renderComplianceHtml, REPORT_CSP } from './html.js';
import { assessProvision, type ComplianceReport } from './report.js';
import { parseTestResults, TEST_RESULTS_FORMAT, type TestResults } from './test-results.js';
import { VETTING_QUESTIONS } from './vetting.js';

const ROOT = new URL('../../../../../', import.meta.url).pathname;
const SUPPORT_TESTS = 'packages/server/src/assessment/checks.test.ts';

function results(files: Record<string, { passed: number; failed: number; skipped?: number }>, complete = true): TestResults {
  const entries = Object.fromEntries(Object.entries(files).map(([f, c]) => [f, { skipped: 0, ...c }]));
  const totals = { passed: 0, failed: 0, skipped: 0 };
  for (const c of Object.values(entries)) for (const k of ['passed', 'failed', 'skipped'] as const) totals[k] += c[k];
  return { generatedAt: '2026-12-05T00:00:00.000Z', commit: 'abc1234', complete, totals, files: entries };
}

function evidence(overrides: Partial<ComplianceEvidence> = {}): ComplianceEvidence {
  return {
    now: Date.parse('2026-12-05T00:00:00Z'),
    organization: { id: 'o', slug: 'acme', name: 'Acme', mfaRequiredRoles: ['owner', 'admin'] },
    settings: {
      tlsMinVersion: 'TLSv1.2',
      plainMqttPort: null,
      trustProxy: false,
      httpRateLimitPerMinute: 600,
      loginRateLimitPerMinute: 30,
      maxRateLimitPerMinute: 100_000,
      metricsTokenSet: true,
      backupIntervalHours: 24,
      assessmentIntervalMinutes: 60,
      auditCheckpointSeconds: 300,
      masterKeyOnToken: false,
      disclosureContact: 'mailto:security@acme.example',
    },
    counts: {
      devices: 3,
      activeCertificates: 3,
      symmetricKeys: 0,
      products: 1,
      productsWithSupportPeriod: 1,
      productsWithPrivacyDeclaration: 1,
      releases: 1,
      rollouts: 1,
      operators: 2,
      disclosures: 0,
      consentDecisions: 0,
    },
    audit: {},
    openFindings: [],
    tests: null,
    ...overrides,
  };
}

describe('ETSI EN 303 645 catalogue', () => {
  it('holds every provision of clauses 5.1 to 5.13 and 6, 32 of them mandatory, each ID once', () => {
    const perClause: Record<string, number> = {};
    for (const p of PROVISIONS) perClause[p.clause] = (perClause[p.clause] ?? 0) + 1;
    assert.deepEqual(perClause, {
      '5.1': 5,
      '5.2': 3,
      '5.3': 16,
      '5.4': 4,
      '5.5': 8,
      '5.6': 9,
      '5.7': 2,
      '5.8': 3,
      '5.9': 3,
      '5.10': 1,
      '5.11': 4,
      '5.12': 3,
      '5.13': 1,
      '6': 5,
    });
    assert.equal(PROVISIONS.length, 67);
    assert.equal(PROVISIONS.filter((p) => p.status === 'M').length, 32);
    assert.equal(new Set(PROVISIONS.map((p) => p.id)).size, 67);
    for (const p of PROVISIONS) {
      assert.ok(CLAUSES[p.clause], p.id);
      assert.ok(p.id.startsWith(`${p.clause}-`), p.id);
      // Every provision either has a platform part or says what the brand must do.
      assert.ok(p.platform(evidence()) !== null || p.brand.length > 0, `${p.id} says nothing`);
    }
  });

  it('cites only test files that exist in this repository', () => {
    const cited = [...PROVISIONS.flatMap((p) => p.tests), ...VETTING_QUESTIONS.flatMap((q) => q.tests)];
    assert.ok(cited.length > 50);
    for (const file of new Set(cited)) assert.ok(existsSync(join(ROOT, file)), `${file} does not exist`);
  });

  it('turns a provision to attention when a cited test failed in this build, or a setting is weak', () => {
    const p = PROVISIONS.find((x) => x.id === '5.3-13')!;
    assert.equal(assessProvision(p, evidence()).outcome, 'met');
    const failing = assessProvision(p, evidence({ tests: results({ [SUPPORT_TESTS]: { passed: 27, failed: 1 } }) }));
    assert.equal(failing.outcome, 'attention');
    assert.ok(
      failing.evidence.some((e) => e.kind === 'test' && e.name === SUPPORT_TESTS && e.ok === false && e.value === '27 passed, 1 failed'),
    );
    const plain = PROVISIONS.find((x) => x.id === '5.5-1')!;
    const opened = assessProvision(plain, evidence({ settings: { ...evidence().settings, plainMqttPort: 1883 } }));
    assert.equal(opened.outcome, 'attention');
    assert.ok(opened.evidence.some((e) => e.name === 'mqtt.plainPort' && e.value === 1883 && e.ok === false));
    // A device-only provision is the brand's, whatever the platform's evidence.
    assert.equal(
      assessProvision(
        PROVISIONS.find((x) => x.id === '5.6-4')!,
        evidence(),
      ).outcome,
      'brand',
    );
  });

  it('parses test results strictly', () => {
    const good = { format: TEST_RESULTS_FORMAT, ...results({ 'a.test.ts': { passed: 2, failed: 0 } }) };
    assert.deepEqual(parseTestResults(JSON.stringify(good)).totals, { passed: 2, failed: 0, skipped: 0 });
    const bad: [unknown, RegExp][] = [
      ['{', /not JSON/],
      [{ ...good, format: 'junit' }, /format must be/],
      [{ ...good, commit: 'not a commit; rm -rf' }, /commit must be/],
      [{ ...good, totals: { passed: -1, failed: 0, skipped: 0 } }, /totals/],
      [{ ...good, files: { 'a.test.ts': { passed: 1.5, failed: 0, skipped: 0 } } }, /files\["a.test.ts"\]/],
      [{ ...good, complete: 'yes' }, /complete/],
    ];
    for (const [value, message] of bad)
      assert.throws(
        () => parseTestResults(typeof value === 'string' ? value : JSON.stringify(value)),
        (e: unknown) => e instanceof ValidationError && message.test(e.message),
      );
  });

  it('renders an inert page whose only style is allowed by hash', () => {
    const hostile = '<script>alert(1)</script><img src=x onerror=alert(2)>';
    const ev = evidence({ organization: { ...evidence().organization, name: hostile, slug: '"><svg onload=alert(3)>' } });
    const report: ComplianceReport = {
      standard: 'ETSI EN 303 645',
      version: 'V2.1.1 (2020-06)',
      generatedAt: new Date(ev.now).toISOString(),
      organization: { id: 'o', slug: ev.organization.slug, name: hostile },
      build: { version: '0.1.0', tests: null },
      summary: { mandatory: { total: 32, met: 0, attention: 0, brand: 0 }, recommended: { total: 35, met: 0, attention: 0, brand: 0 } },
      provisions: PROVISIONS.map((p) => assessProvision(p, ev)),
      vetting: [],
    };
    const html = renderComplianceHtml(report);
    assert.doesNotMatch(html, /<script|<img|<svg/i); // the attributes survive only as escaped text
    assert.match(html, new RegExp(escapeHtml(hostile).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    const hash = createHash('sha256').update(style).digest('base64');
    assert.ok(REPORT_CSP.includes(`'sha256-${hash}'`), 'the CSP allows exactly the page’s style sheet');
    assert.match(REPORT_CSP, /default-src 'none'/);
    assert.doesNotMatch(REPORT_CSP, /unsafe-inline/);
    assert.ok(html.includes(`content="${escapeHtml(REPORT_CSP)}"`));
  });
});

for (const engine of ENGINES) {
  describe(`compliance report [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let dir: string;
    let resultsFile: string;
    let owner: string;
    let orgId: string;

    const writeResults = (failed: number) =>
      writeFileSync(
        resultsFile,
        JSON.stringify({ format: TEST_RESULTS_FORMAT, ...results({ [SUPPORT_TESTS]: { passed: 28 - failed, failed } }, false) }),
      );

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'bulwark-compliance-'));
      resultsFile = join(dir, 'test-results.json');
      t = await startTestPlatform(engine, { assessment: { intervalMinutes: 0, testResultsFile: resultsFile } });
      orgId = await organizationIdOf(t.platform, t.org);
      owner = (await ownerSession(t)).token;
    });
    after(async () => {
      await t?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    async function provision(id: string): Promise<ComplianceReport['provisions'][number]> {
      const res = await t.client().get('/api/v1/assessment/compliance/etsi-en-303-645', { token: owner });
      assert.equal(res.status, 200, res.text);
      const found = (res.body as ComplianceReport).provisions.find((p) => p.id === id);
      assert.ok(found, id);
      return found;
    }

    it('lists the 32 mandatory provisions first, with this build’s tests, and audits the report', async () => {
      writeResults(0);
      const res = await t.client().get('/api/v1/assessment/compliance/etsi-en-303-645', { token: owner });
      assert.equal(res.status, 200, res.text);
      const report = res.body as ComplianceReport;
      assert.equal(report.provisions.length, 67);
      assert.ok(report.provisions.slice(0, 32).every((p) => p.status === 'M'));
      assert.ok(report.provisions.slice(32).every((p) => p.status === 'R'));
      assert.equal(report.summary.mandatory.total, 32);
      const { met, attention, brand } = report.summary.mandatory;
      assert.equal(met + attention + brand, 32);
      assert.deepEqual(report.build.tests, {
        generatedAt: '2026-12-05T00:00:00.000Z',
        commit: 'abc1234',
        complete: false,
        passed: 28,
        failed: 0,
        skipped: 0,
      });
      assert.equal(report.vetting.length, 7);
      // The automated-testing answer flags a partial run: only a complete, green run is evidence enough.
      assert.equal(report.vetting.find((q) => q.id === 'automated-testing')!.outcome, 'attention');
      const entries = await t.platform.db.selectFrom('audit_log').selectAll().where('action', '=', 'assessment.report_generated').execute();
      assert.equal(entries.length, 1);
      assert.equal(entries[0]!.organization_id, orgId);
    });

    it('follows the deployment: a product without a support period, then declared; a failed test, then passing', async () => {
      const productId = await testProduct(t.platform, orgId, 'Compliance sensor');
      await t.client().post('/api/v1/assessment/runs', undefined, { token: owner });
      let p = await provision('5.3-13');
      assert.equal(p.outcome, 'attention');
      assert.ok(p.evidence.some((e) => e.kind === 'finding' && e.name === 'product-without-support-period' && e.ok === false));
      assert.ok(p.evidence.some((e) => e.name === 'products with a declared support period' && e.ok === false));

      const set = await t.client().request('PUT', `/api/v1/products/${productId}/support-period`, {
        body: { supportUntil: new Date(t.clock.now() + 5 * 365 * 86_400_000).toISOString() },
        token: owner,
      });
      assert.equal(set.status, 200, set.text);
      await t.client().post('/api/v1/assessment/runs', undefined, { token: owner });
      p = await provision('5.3-13');
      assert.equal(p.outcome, 'met', JSON.stringify(p.evidence));

      writeResults(1);
      p = await provision('5.3-13');
      assert.equal(p.outcome, 'attention');
      assert.ok(p.evidence.some((e) => e.kind === 'test' && e.name === SUPPORT_TESTS && e.ok === false));
      writeResults(0);
      assert.equal((await provision('5.3-13')).outcome, 'met');
    });

    it('shows malformed test results as evidence that needs attention, not as a refused report', async () => {
      writeFileSync(resultsFile, '{"format": "bulwark-test-results/1", "generatedAt": ');
      const res = await t.client().get('/api/v1/assessment/compliance/etsi-en-303-645', { token: owner });
      assert.equal(res.status, 200, res.text);
      const report = res.body as ComplianceReport;
      const unreadable = 'test results unreadable: test-results.json is not a bulwark-test-results/1 file: not JSON';
      const cited = report.provisions.find((p) => p.id === '5.3-13')!;
      assert.equal(cited.outcome, 'attention');
      assert.deepEqual(
        cited.evidence.find((e) => e.kind === 'test'),
        { kind: 'test', name: SUPPORT_TESTS, value: unreadable, ok: false },
      );
      assert.equal(report.build.tests, null);
      const testing = report.vetting.find((q) => q.id === 'automated-testing')!;
      assert.equal(testing.outcome, 'attention');
      assert.ok(testing.evidence.some((e) => e.value === unreadable && e.ok === false));
      // The server's paths stay out of the report.
      assert.ok(!res.text.includes(dir), 'the report names the results file by its name only');
      writeResults(0);
      assert.equal((await provision('5.3-13')).outcome, 'met');
    });

    it('answers an archivable HTML page with its own CSP; a role without assessment:read is refused', async () => {
      const res = await t.client().get('/api/v1/assessment/compliance/etsi-en-303-645?format=html', { token: owner });
      assert.equal(res.status, 200, res.text);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.equal(res.headers['content-security-policy'], REPORT_CSP);
      assert.match(res.text, /<h2>Mandatory provisions<\/h2>/);
      assert.doesNotMatch(res.text, /<script/i);
      const bad = await t.client().get('/api/v1/assessment/compliance/etsi-en-303-645?format=pdf', { token: owner });
      assert.equal(bad.status, 400);

      const engineer = await createOperator(t, 'release@example.com', 'release_engineer');
      const refused = await t.client().get('/api/v1/assessment/compliance/etsi-en-303-645', { token: await signIn(t, engineer) });
      assert.equal(refused.status, 403);
      const anonymous = await t.client().get('/api/v1/assessment/compliance/etsi-en-303-645');
      assert.equal(anonymous.status, 401);
    });
  });
}
