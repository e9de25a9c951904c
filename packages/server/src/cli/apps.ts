/**
 * `bulwark apps keys list|rotate|retire --org <slug>`: the access-token signing keys of an
 * organization's companion apps, through the same service as the API routes (audited as `cli`).
 * `rotate` makes a new active key and leaves the previous one verifying until it is retired
 * (on schedule after apps.keyOverlapHours, or now with `retire`); `retire` of the active key
 * rotates first.
 */
import type { Command } from 'commander';
import type { SigningKeyView } from '../apps/model.js';
import { action, actorForOrganization, addDataDir, EXIT, print, withPlatform, type GlobalOptions } from './context.js';

type OrgFlags = GlobalOptions & { org: string };

const line = (k: SigningKeyView) =>
  `${k.kid}  ${k.status.padEnd(9)}  created ${k.createdAt}${k.rotatedAt ? `  rotated ${k.rotatedAt}` : ''}${k.retiredAt ? `  retired ${k.retiredAt}` : ''}`;

export function registerAppsCommands(program: Command): void {
  const apps = program.command('apps').description('companion-app authorization (OAuth 2.1)');
  const keys = apps.command('keys').description("an organization's access-token signing keys (Ed25519, sealed under the master key)");
  const withOrg = (command: Command) =>
    addDataDir(command).requiredOption('--org <slug>', 'organization slug').option('--json', 'machine-readable output');

  withOrg(keys.command('list').description('the keys: active, verifying (rotated, in the overlap) and retired')).action(
    action((flags: OrgFlags) =>
      withPlatform(flags, async (platform) => {
        const listed = await platform.apps.keys.list(await actorForOrganization(platform, flags.org));
        print(flags, { keys: listed }, () =>
          listed.length ? listed.map(line).join('\n') : 'No signing key yet (one is made at the first sign-in)',
        );
        return EXIT.ok;
      }),
    ),
  );

  withOrg(keys.command('rotate').description('make a new active key; the previous one keeps verifying until retired')).action(
    action((flags: OrgFlags) =>
      withPlatform(flags, async (platform) => {
        const actor = await actorForOrganization(platform, flags.org);
        const key = await platform.apps.keys.rotate(actor, actor.organizationId);
        print(flags, key, () => `New active key ${key.kid}; the previous one verifies until it is retired`);
        return EXIT.ok;
      }),
    ),
  );

  withOrg(keys.command('retire').description('retire a key now: tokens it signed are refused (the active key is rotated first)'))
    .argument('<kid>', 'the key to retire')
    .action(
      action((kid: string, flags: OrgFlags) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const key = await platform.apps.keys.retire(actor, actor.organizationId, kid);
          print(flags, key, () => `Retired ${key.kid}: tokens it signed are refused from now on`);
          return EXIT.ok;
        }),
      ),
    );
}
