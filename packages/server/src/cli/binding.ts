/**
 * `bulwark devices claim-codes | binding | reset-binding`: the operator side of binding from the
 * command line, through the same services as the HTTP API. `claim-codes` makes a new one-time code
 * for each device named (serials or IDs, on the command line or one a line in --file), for the
 * box label at provisioning; the codes are printed once (serial, ID, code and the label link its QR
 * code holds, tab-separated), with --labels DIR also each label's QR code as `<serial>.svg`, and
 * only their hashes are kept.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { claimLabelSvg } from '../binding/claim-codes.js';
import { MAX_BULK_CODES } from '../binding/claims.js';
import { ValidationError } from '../errors.js';
import { action, actorForOrganization, deviceIdOf, orgCommand, print, withPlatform, type OrgFlags } from './context.js';

export function registerBindingCommands(devices: Command): void {
  orgCommand(devices, 'claim-codes', `make a new one-time claim code for each device (at most ${MAX_BULK_CODES}), printed once`)
    .argument('[devices...]', 'serials or platform IDs')
    .option('--file <path>', 'a file of serials or IDs, one a line')
    .option(
      '--labels <dir>',
      "also write each label's QR code (its link) to <dir>/<serial>.svg (a new or empty folder; files only you can read)",
    )
    .action(
      action((refs: string[], flags: OrgFlags & { file?: string; labels?: string }) =>
        withPlatform(flags, async (platform) => {
          const named = [...refs, ...(flags.file ? readFileSync(flags.file, 'utf8').split(/\r?\n/) : [])]
            .map((r) => r.trim())
            .filter(Boolean);
          if (named.length === 0) throw new ValidationError('Name at least one device (serial or ID), or give --file');
          if (named.length > MAX_BULK_CODES) throw new ValidationError(`At most ${MAX_BULK_CODES} devices at a time`);
          const actor = await actorForOrganization(platform, flags.org);
          const ids: string[] = [];
          for (const ref of named) ids.push(await deviceIdOf(platform, actor, ref));
          // Checked before any code is made (a new code replaces the old one): a new or empty folder, so no label is overwritten.
          if (flags.labels) {
            mkdirSync(flags.labels, { recursive: true, mode: 0o700 });
            if (readdirSync(flags.labels).length > 0) throw new ValidationError(`--labels ${flags.labels}: give a new or empty folder`);
          }
          const codes = await platform.binding.claims.issueCodes(actor, ids);
          // Each file holds a code: only this user may read it.
          for (const c of flags.labels ? codes : [])
            writeFileSync(join(flags.labels!, labelFileName(c)), claimLabelSvg(c.link), { flag: 'wx', mode: 0o600 });
          print(flags, { codes }, () => codes.map((c) => [c.serial, c.deviceId, c.code, c.link].join('\t')).join('\n'));
        }),
      ),
    );

  orgCommand(devices, 'binding', "show a device's binding: owner, shares, invitations, claim code made/used, last reset")
    .argument('<device>', 'serial or platform ID')
    .action(
      action((ref: string, flags: OrgFlags) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const view = await platform.binding.service.operatorView(actor, await deviceIdOf(platform, actor, ref));
          print(flags, view, () =>
            [
              `owner: ${view.owner ? `${view.owner.email} since ${view.owner.since}` : '(not bound)'}`,
              ...view.shares.map((s) => `${s.role}: ${s.email} since ${s.since}`),
              `claim code: ${view.claimCode ? `made ${view.claimCode.createdAt}, ${view.claimCode.usedAt ? `used ${view.claimCode.usedAt}` : 'unused'}` : 'none'}`,
              `last reset: ${view.lastReset ? `${view.lastReset.requestedAt}, ${view.lastReset.confirmedAt ? `confirmed ${view.lastReset.confirmedAt}` : 'not confirmed yet'}` : 'none'}`,
            ].join('\n'),
          );
        }),
      ),
    );

  orgCommand(devices, 'reset-binding', 'unbind a device from its owner and every share; the device is told to erase its user data')
    .argument('<device>', 'serial or platform ID')
    .action(
      action((ref: string, flags: OrgFlags) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const view = await platform.binding.service.operatorReset(actor, await deviceIdOf(platform, actor, ref));
          print(flags, view, () => `Binding of ${view.deviceId} reset: the device is free to be claimed with a new code`);
        }),
      ),
    );
}

/** `<serial>.svg` when the serial is a safe file name, else `<device ID>.svg`. */
function labelFileName(code: { serial: string; deviceId: string }): string {
  return `${/^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/.test(code.serial) ? code.serial : code.deviceId}.svg`;
}
