/**
 * `bulwark keys rotate-master`: a new master key (a key file, or a new AES key on the PKCS#11
 * token when the master key is there), every sealed value re-wrapped under it, with servers
 * running. Interrupted, it is run again to finish.
 */
import type { Command } from 'commander';
import { rotateMasterKey } from '../keys/rotation.js';
import { action, addDataDir, print, withPlatform, type GlobalOptions } from './context.js';

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
}
