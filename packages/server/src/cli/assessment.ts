/**
 * `bulwark assessment run --org SLUG` (run every audit check over one organization now; exit 3
 * when critical or high findings are open, so a cron job or CI can act on it) and
 * `bulwark assessment findings --org SLUG` (list findings, filtered) and
 * `bulwark assessment report --org SLUG [--html FILE]` (the ETSI EN 303 645 compliance report:
 * a summary, or the whole report with --json, and the archivable page with --html; exit 3 when a
 * mandatory provision needs attention).
 */
import { existsSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { renderComplianceHtml } from '../assessment/compliance/html.js';
import { ValidationError } from '../errors.js';
import { FINDING_STATES, SEVERITIES, type FindingState, type Severity } from '../assessment/model.js';
import { action, actorForOrganization, EXIT, orgCommand, print, withPlatform, type OrgFlags } from './context.js';

export function registerAssessmentCommands(program: Command): void {
  const assessment = program.command('assessment').description('security assessment: audit checks and their findings');

  orgCommand(assessment, 'run', 'run every audit check over the organization now; opens, refreshes and resolves findings').action(
    action((flags: OrgFlags) =>
      withPlatform(flags, async (platform) => {
        const actor = await actorForOrganization(platform, flags.org);
        const run = await platform.assessment.service.run(actor, 'cli');
        const { findings } = await platform.assessment.service.list(actor, { state: 'open', limit: 200 });
        print(flags, { run, open: findings }, () =>
          [
            `Ran ${run.checks.length} checks in ${run.durationMs} ms: ${run.opened} opened, ${run.resolved} resolved, ${run.openTotal} open`,
            ...run.failures.map((f) => `  check ${f.check} failed: ${f.message}`),
            ...findings.map((f) => `  [${f.severity}] ${f.check}: ${f.title} (${f.resources.length + f.moreResources} resources) ${f.id}`),
          ].join('\n'),
        );
        return findings.some((f) => f.severity === 'critical' || f.severity === 'high') ? EXIT.verificationFailed : EXIT.ok;
      }),
    ),
  );

  orgCommand(assessment, 'findings', 'list findings (at most 200), filtered')
    .option('--state <state>', `one of ${FINDING_STATES.join(', ')}`)
    .option('--severity <severity>', `one of ${SEVERITIES.join(', ')}`)
    .option('--check <id>', 'only this check')
    .action(
      action((flags: OrgFlags & { state?: string; severity?: string; check?: string }) =>
        withPlatform(flags, async (platform) => {
          if (flags.state && !(FINDING_STATES as readonly string[]).includes(flags.state))
            throw new ValidationError(`--state must be one of ${FINDING_STATES.join(', ')}`);
          if (flags.severity && !(SEVERITIES as readonly string[]).includes(flags.severity))
            throw new ValidationError(`--severity must be one of ${SEVERITIES.join(', ')}`);
          const actor = await actorForOrganization(platform, flags.org);
          const { findings } = await platform.assessment.service.list(actor, {
            limit: 200,
            ...(flags.state ? { state: flags.state as FindingState } : {}),
            ...(flags.severity ? { severity: flags.severity as Severity } : {}),
            ...(flags.check ? { check: flags.check } : {}),
          });
          print(flags, { findings }, () =>
            findings.length === 0
              ? 'No findings'
              : findings.map((f) => `[${f.severity}] ${f.state} ${f.check}: ${f.title} (last seen ${f.lastSeenAt}) ${f.id}`).join('\n'),
          );
          return EXIT.ok;
        }),
      ),
    );

  orgCommand(
    assessment,
    'report',
    'the ETSI EN 303 645 compliance report: every provision with its status, evidence and what the brand must do',
  )
    .option('--html <file>', 'also write the report as one self-contained HTML page (refuses to overwrite)')
    .action(
      action((flags: OrgFlags & { html?: string }) =>
        withPlatform(flags, async (platform) => {
          if (flags.html && existsSync(flags.html))
            throw new ValidationError(`--html ${flags.html} exists; the report never overwrites a file`);
          const actor = await actorForOrganization(platform, flags.org);
          const report = await platform.assessment.compliance.report(actor);
          if (flags.html) writeFileSync(flags.html, renderComplianceHtml(report), { mode: 0o644, flag: 'wx' });
          const { mandatory, recommended } = report.summary;
          const attention = report.provisions.filter((p) => p.outcome === 'attention');
          print(flags, report, () =>
            [
              `${report.standard} ${report.version} for ${report.organization.slug}, generated ${report.generatedAt}`,
              `Mandatory:   ${mandatory.total} provisions, ${mandatory.met} met by the platform, ${mandatory.attention} need attention, ${mandatory.brand} the brand's part`,
              `Recommended: ${recommended.total} provisions, ${recommended.met} met by the platform, ${recommended.attention} need attention, ${recommended.brand} the brand's part`,
              report.build.tests
                ? `Tests of this build: ${report.build.tests.passed} passed, ${report.build.tests.failed} failed${report.build.tests.complete ? '' : ' (partial run)'}`
                : 'Tests of this build: none shipped (assessment.testResultsFile)',
              ...attention.map(
                (p) =>
                  `  ${p.status} ${p.id} needs attention: ${p.evidence
                    .filter((e) => e.ok === false)
                    .map((e) => `${e.name} = ${String(e.value)}`)
                    .join('; ')}`,
              ),
              ...(flags.html ? [`Wrote ${flags.html}`] : []),
            ].join('\n'),
          );
          return mandatory.attention > 0 ? EXIT.verificationFailed : EXIT.ok;
        }),
      ),
    );
}
