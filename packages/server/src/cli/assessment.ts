/**
 * `bulwark assessment run --org SLUG` (run every audit check over one organization now; exit 3
 * when critical or high findings are open, so a cron job or CI can act on it) and
 * `bulwark assessment findings --org SLUG` (list findings, filtered).
 */
import type { Command } from 'commander';
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
}
