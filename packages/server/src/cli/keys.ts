/**
 * `bulwark keys rotate-master`: a new master key (a key file, or a new AES key on the PKCS#11
 * token when the master key is there), every sealed value re-wrapped under it, with servers
 * running. Interrupted, it is run again to finish.
 *
 * `bulwark keys rotate-online`: stages new TUF snapshot, timestamp and/or director keys of an
 * organization and writes the unsigned next root(s) naming them, for the root key holders to sign
 * offline (`bulwark firmware root sign`) and upload; the server switches when that root arrives.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ValidationError } from '../errors.js';
import { rotateMasterKey } from '../keys/rotation.js';
import type { OnlineRotationPlan } from '../updates/online-keys.js';
import { DEFAULT_EXPIRY_DAYS } from '../updates/tuf/offline.js';
import { ONLINE_ROLES } from '../updates/tuf/online-rotation.js';
import { action, actorForOrganization, addDataDir, print, withPlatform, type GlobalOptions } from './context.js';

interface RotateOnlineFlags extends GlobalOptions {
  org: string;
  roles: string;
  out?: string;
  cancel?: boolean;
  plan?: boolean;
  expiresDays: string;
  json?: boolean;
}

/** Writes the plan's unsigned roots into `dir` (root.json, director-root.json); returns the files written. */
function writePlan(dir: string, plan: OnlineRotationPlan): string[] {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (const [name, metadata] of [
    ['root.json', plan.root],
    ['director-root.json', plan.directorRoot],
  ] as const) {
    if (!metadata) continue;
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(metadata, null, 2) + '\n', { mode: 0o644 });
    files.push(path);
  }
  return files;
}

export function registerKeysCommands(program: Command): void {
  const keys = program.command('keys').description('master key and key custody');

  addDataDir(
    keys
      .command('rotate-master')
      .description(
        'generate a new master key (on the PKCS#11 token when the master key is there) and re-wrap every sealed secret under it (no downtime; rerun to finish an interrupted rotation)',
      ),
  )
    .option('--json', 'machine-readable output')
    .action(
      action((flags: GlobalOptions) =>
        withPlatform(flags, async (platform) => {
          const hsm = platform.hsm;
          const report = await rotateMasterKey({
            dataDir: platform.config.dataDir,
            db: platform.db,
            box: platform.box,
            audit: platform.audit,
            token: hsm ? () => hsm.get() : null,
          });
          const total = Object.values(report.rewrapped).reduce((a, b) => a + b, 0);
          print(flags, report, () =>
            [
              `Master key rotated: ${report.previousKeyId} -> ${report.keyId}${report.resumed ? ' (finished an interrupted rotation)' : ''}`,
              `Re-wrapped ${total} sealed value(s)${
                total
                  ? ': ' +
                    Object.entries(report.rewrapped)
                      .map(([k, n]) => `${k} ${n}`)
                      .join(', ')
                  : ''
              }`,
              report.retiredTokenKeyLabel
                ? `The replaced key stays on the token as "${report.retiredTokenKeyLabel}": database backups made before now need it. Delete it with your HSM's tools once none does.`
                : 'keys/master.key.previous removed. Back up the new keys/master.key offline.',
            ].join('\n'),
          );
        }),
      ),
    );

  addDataDir(
    keys
      .command('rotate-online')
      .description(
        'stage new TUF online keys (snapshot, timestamp, director) of an organization and write the unsigned next root(s) naming them; sign them offline with `firmware root sign` and upload them (POST /api/v1/updates/repository/root): the server switches to the new keys then',
      ),
  )
    .requiredOption('--org <slug>', 'organization slug')
    .option('--roles <list>', `comma-separated roles to rotate (${ONLINE_ROLES.join(', ')})`, ONLINE_ROLES.join(','))
    .option('--out <dir>', 'directory for the unsigned root.json and director-root.json (needed to start, or with --plan)')
    .option('--plan', 'write the unsigned roots of the rotation already pending again (after another root was uploaded meanwhile)')
    .option('--cancel', 'cancel the pending rotation: its staged keys are retired and never used')
    .option('--expires-days <n>', 'days until the new roots expire', String(DEFAULT_EXPIRY_DAYS))
    .option('--json', 'machine-readable output')
    .action(
      action(async (flags: RotateOnlineFlags) => {
        const expiresDays = Number(flags.expiresDays);
        if (flags.cancel && flags.plan) throw new ValidationError('--cancel and --plan exclude each other');
        if (!flags.cancel && !flags.out) throw new ValidationError('--out <dir> is needed: the unsigned roots are written there');
        if (flags.out && !flags.plan && !flags.cancel && existsSync(join(flags.out, 'root.json')))
          throw new ValidationError(`${join(flags.out, 'root.json')} exists: choose an empty --out directory`);
        await withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const rotation = platform.updates.onlineKeys;
          if (flags.cancel) {
            const result = await rotation.cancel(actor);
            print(flags, result, () => `Cancelled the pending rotation of ${result.cancelled.join(', ')}: the staged keys are retired.`);
            return;
          }
          const roles = flags.roles
            .split(',')
            .map((r) => r.trim())
            .filter(Boolean);
          const plan = flags.plan ? await rotation.plan(actor, expiresDays) : await rotation.start(actor, roles, expiresDays);
          const files = writePlan(flags.out!, plan);
          print(flags, { ...plan, files }, () =>
            [
              `Staged new ${plan.roles.join(', ')} key(s); the current ones sign until the new root(s) are uploaded.`,
              ...Object.entries(plan.pending).map(([role, key]) => `  ${role}: ${String(key.keyid)}`),
              `Unsigned next root(s): ${files.join(', ')}`,
              `Sign offline: bulwark firmware root sign --key ROOT-KEY… ${files.map((f) => f.split('/').pop()).join(' ')}`,
              'Then upload them: POST /api/v1/updates/repository/root { "root", "directorRoot" } (docs/updates.md, "Rotating the online keys").',
            ].join('\n'),
          );
        });
      }),
    );
}
