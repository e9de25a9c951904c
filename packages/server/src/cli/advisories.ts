/**
 * `bulwark advisories`: import OSV records (files, directories, or an https URL the deployment
 * fetches) into an organization, list them matched against its releases, start a remediation
 * rollout to a fixed release, and check an SBOM file against a directory of records without a
 * data directory (`check-sbom`, what CI runs on the platform's own dependencies; exit 3 when a
 * runtime component has an advisory at or above --fail-on).
 */
import type { Command } from 'commander';
import { readOsvPaths, readSbomFile } from '../assessment/advisories/sources.js';
import { checkSbom } from '../assessment/advisories/sbom-check.js';
import { SEVERITIES, type Severity } from '../assessment/model.js';
import { ValidationError } from '../errors.js';
import { action, actorForOrganization, EXIT, orgCommand, print, withPlatform, type OrgFlags } from './context.js';

export function registerAdvisoriesCommands(program: Command): void {
  const advisories = program.command('advisories').description('vulnerability advisories (OSV) matched against release SBOMs');

  orgCommand(advisories, 'import', 'import OSV records from files or directories of *.json, or from an https URL')
    .argument('[paths...]', 'OSV JSON files or directories')
    .option('--url <url>', 'an https URL answering OSV JSON (private addresses refused unless assessment.advisoryPrivateAddresses)')
    .action(
      action((paths: string[], flags: OrgFlags & { url?: string }) =>
        withPlatform(flags, async (platform) => {
          if ((paths.length === 0) === (flags.url === undefined))
            throw new ValidationError('Give OSV files or directories, or --url, not both');
          const actor = await actorForOrganization(platform, flags.org);
          const service = platform.assessment.advisories;
          const result = flags.url
            ? await service.importUrl(actor, flags.url)
            : await service.import(actor, readOsvPaths(paths).records, 'cli');
          print(
            flags,
            result,
            () => `${result.added.length} added, ${result.updated.length} updated, ${result.unchanged.length} unchanged`,
          );
          return EXIT.ok;
        }),
      ),
    );

  orgCommand(advisories, 'list', "list the organization's advisories with the releases they affect and the devices running them").action(
    action((flags: OrgFlags) =>
      withPlatform(flags, async (platform) => {
        const list = await platform.assessment.advisories.list(await actorForOrganization(platform, flags.org));
        print(flags, { advisories: list }, () =>
          list.length === 0
            ? 'No advisories'
            : list
                .map((a) => {
                  const releases = a.affectedReleases.map((r) => `${r.version} (${r.devices} devices)`).join(', ');
                  return `[${a.severity}] ${a.id} ${a.summary}: ${releases || 'no release affected'}`;
                })
                .join('\n'),
        );
        return EXIT.ok;
      }),
    ),
  );

  orgCommand(advisories, 'remediate', 'start a rollout of a fixed release to the devices running a release the advisory affects')
    .requiredOption('--advisory <id>', 'the OSV ID')
    .requiredOption('--release <releaseId>', 'the fixed release')
    .action(
      action((flags: OrgFlags & { advisory: string; release: string }) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const result = await platform.assessment.advisories.remediate(actor, flags.advisory, { releaseId: flags.release });
          print(
            flags,
            result,
            () =>
              `Rollout ${result.rollout.id} started: ${result.rollout.enrolled} devices on ${result.affectedVersions.join(', ')} enrolled`,
          );
          return EXIT.ok;
        }),
      ),
    );

  advisories
    .command('check-sbom')
    .description(
      'match a CycloneDX SBOM file against OSV records (no data directory); exit 3 when a runtime component is affected at --fail-on or worse',
    )
    .requiredOption('--sbom <file>', 'CycloneDX JSON (e.g. sbom.cdx.json from npm run sbom)')
    .requiredOption('--advisories <path...>', 'OSV JSON files or directories')
    .option('--fail-on <severity>', `one of ${SEVERITIES.join(', ')}`, 'critical')
    .option('--json', 'print JSON')
    .action(
      action(async (flags: { sbom: string; advisories: string[]; failOn: string; json?: boolean }) => {
        if (!(SEVERITIES as readonly string[]).includes(flags.failOn))
          throw new ValidationError(`--fail-on must be one of ${SEVERITIES.join(', ')}`);
        const { records, files } = readOsvPaths(flags.advisories);
        const result = checkSbom(readSbomFile(flags.sbom), records, flags.failOn as Severity);
        print(flags, result, () =>
          [
            `${result.components} components checked against ${result.advisories} advisories from ${files.length} files`,
            ...result.found.map(
              (f) =>
                `  [${f.severity}] ${f.advisoryId} ${f.component}@${f.version}${f.runtime ? '' : ' (not shipped at run time)'}: ${f.summary}`,
            ),
            result.failing.length > 0
              ? `FAIL: ${result.failing.length} runtime components have a known ${flags.failOn} (or worse) vulnerability`
              : 'OK: no runtime component has a known vulnerability at the threshold',
          ].join('\n'),
        );
        return result.failing.length > 0 ? EXIT.verificationFailed : EXIT.ok;
      }),
    );
}
