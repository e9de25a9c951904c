/**
 * `bulwark devices symmetric-key | enrollment-group | sas-token`: symmetric-key devices from the
 * command line, through the same service as the HTTP API. Keys are printed once, or written to a
 * new file (mode 0600) with --key-file so they never reach the terminal. `sas-token` needs no data
 * directory: it signs a token with a key file, for field tests and scripts.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { createToken, deviceResource, keyBytes, registrationResource, SasFormatError } from '../devices/sas.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { action, actorForOrganization, deviceIdOf, orgCommand, print, withPlatform, type OrgFlags } from './context.js';

function wholeNumber(flag: string, value: string, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > max) throw new ValidationError(`${flag} must be a whole number from 0 to ${max}`);
  return n;
}

/**
 * Runs `issue` with the key file (if any) created first, empty, mode 0600 and exclusively, so an
 * existing file is never overwritten and a key is never issued that cannot be written down. The
 * key is shown once: in the output, or only in the file.
 */
async function handOut<T extends { key: string }>(
  keyFile: string | undefined,
  issue: () => Promise<T>,
): Promise<{ value: T; out: Omit<T, 'key'> & { key?: string; keyFile?: string } }> {
  if (!keyFile) {
    const value = await issue();
    return { value, out: value };
  }
  try {
    writeFileSync(keyFile, '', { mode: 0o600, flag: 'wx' });
  } catch (error) {
    throw new ValidationError(`Cannot create the key file ${keyFile}: ${(error as Error).message} (it must not exist yet)`);
  }
  let value: T;
  try {
    value = await issue();
  } catch (error) {
    rmSync(keyFile, { force: true });
    throw error;
  }
  writeFileSync(keyFile, `${value.key}\n`);
  const { key: _written, ...rest } = value;
  return { value, out: { ...rest, keyFile } };
}

function readKey(path: string): Buffer {
  try {
    return keyBytes(readFileSync(path, 'utf8'));
  } catch (error) {
    if (error instanceof SasFormatError) throw new ValidationError(`${path}: ${error.message}`);
    throw new ValidationError(`Cannot read the key file ${path}: ${(error as Error).message}`);
  }
}

export function registerSymmetricKeyCommands(devices: Command): void {
  orgCommand(devices, 'symmetric-key', "issue or rotate a device's symmetric key (shown once)")
    .argument('<device>', 'serial or platform ID')
    .option('--grace-seconds <n>', 'keep the previous key valid this long (at most 604800, seven days)', '0')
    .option('--key-file <path>', 'write the key to this new file (mode 0600) instead of printing it')
    .action(
      action((ref: string, flags: OrgFlags & { graceSeconds: string; keyFile?: string }) =>
        withPlatform(flags, async (platform) => {
          const graceSeconds = wholeNumber('--grace-seconds', flags.graceSeconds, 7 * 24 * 3600);
          const actor = await actorForOrganization(platform, flags.org);
          const id = await deviceIdOf(platform, actor, ref);
          const { value: issued, out } = await handOut(flags.keyFile, () =>
            platform.devices.symmetricKeys.issueKey(actor, id, { graceSeconds }),
          );
          print(flags, out, () =>
            [
              `${issued.rotated ? 'Rotated' : 'Issued'} key version ${issued.version} of ${issued.deviceId}`,
              issued.previousKeyValidUntil
                ? `The previous key stays valid until ${issued.previousKeyValidUntil.toISOString()}`
                : issued.rotated
                  ? 'The previous key no longer works'
                  : '',
              out.keyFile ? `Key written to ${out.keyFile}` : `Key (shown once): ${issued.key}`,
            ]
              .filter(Boolean)
              .join('\n'),
          );
        }),
      ),
    );

  const groups = devices
    .command('enrollment-group')
    .description('enrollment groups: devices derive their key from the group key (HMAC-SHA256 of their serial) and register themselves');

  orgCommand(groups, 'create', 'create an enrollment group of a product (its key is shown once)')
    .requiredOption('--name <name>', 'group name, unique in the organization')
    .requiredOption('--product <name-or-id>', 'the product devices registering through the group belong to')
    .option('--key-file <path>', 'write the group key to this new file (mode 0600) instead of printing it')
    .action(
      action((flags: OrgFlags & { name: string; product: string; keyFile?: string }) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const product = (await platform.devices.service.listProducts(actor)).find(
            (p) => p.id === flags.product || p.name === flags.product,
          );
          if (!product) throw new NotFoundError(`Product "${flags.product}"`);
          const { value: created, out } = await handOut(flags.keyFile, () =>
            platform.devices.symmetricKeys.createGroup(actor, { name: flags.name, productId: product.id }),
          );
          print(flags, out, () =>
            [
              `Enrollment group "${created.name}" created (${created.id})`,
              out.keyFile ? `Group key written to ${out.keyFile}` : `Group key (shown once): ${created.key}`,
            ].join('\n'),
          );
        }),
      ),
    );

  orgCommand(groups, 'list', 'list enrollment groups').action(
    action((flags: OrgFlags) =>
      withPlatform(flags, async (platform) => {
        const list = await platform.devices.symmetricKeys.listGroups(await actorForOrganization(platform, flags.org));
        print(
          flags,
          { groups: list },
          () =>
            list.map((g) => [g.name, g.disabledAt ? 'disabled' : 'enabled', g.productId, g.id].join('\t')).join('\n') ||
            'No enrollment groups',
        );
      }),
    ),
  );

  orgCommand(groups, 'disable', 'disable an enrollment group: no device registers through it any more')
    .argument('<group>', 'group name or ID')
    .action(
      action((ref: string, flags: OrgFlags) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const group = (await platform.devices.symmetricKeys.listGroups(actor)).find((g) => g.id === ref || g.name === ref);
          if (!group) throw new NotFoundError(`Enrollment group "${ref}"`);
          const disabled = await platform.devices.symmetricKeys.disableGroup(actor, group.id);
          print(flags, disabled, () => `Enrollment group "${disabled.name}" disabled`);
        }),
      ),
    );

  devices
    .command('sas-token')
    .description('sign a SharedAccessSignature token with a key file (no data directory needed)')
    .requiredOption('--key-file <path>', 'file holding the base64 key (the device key; for --registration-id, the derived key)')
    .option('--device <id>', 'token for devices/<id> (device authentication)')
    .option('--group <id>', 'with --registration-id: token for registrations/<group>/<registration-id>')
    .option('--registration-id <serial>', 'the serial the device registers as')
    .option('--ttl <seconds>', 'lifetime in seconds (the server refuses more than auth.deviceTokenMaxLifetimeSeconds)', '3600')
    .option('--json', 'machine-readable output')
    .action(
      action(async (flags: { keyFile: string; device?: string; group?: string; registrationId?: string; ttl: string; json?: boolean }) => {
        const registration = flags.group !== undefined || flags.registrationId !== undefined;
        if (registration === (flags.device !== undefined) || (registration && !(flags.group && flags.registrationId))) {
          throw new ValidationError('Give either --device <id>, or --group <id> with --registration-id <serial>');
        }
        const ttl = wholeNumber('--ttl', flags.ttl, 24 * 3600);
        if (ttl === 0) throw new ValidationError('--ttl must be at least 1 second');
        const resource = registration ? registrationResource(flags.group!, flags.registrationId!) : deviceResource(flags.device!);
        const expiresAt = Math.floor(Date.now() / 1000) + ttl;
        const token = createToken(readKey(flags.keyFile), resource, expiresAt);
        print(flags, { token, resource, expiresAt: new Date(expiresAt * 1000).toISOString() }, () => token);
      }),
    );
}
