/**
 * `bulwark devices …`: the platform admin's door to the device registry, through the same
 * service as the HTTP API: list, register, import a file (JSON lines or CSV, all rows or none,
 * every bad line printed), the lifecycle actions, and credentials: one-time enrollment tokens,
 * credential rotation and certificate revocation; claim codes and bindings (binding.ts). A device
 * is named by its serial or its ID.
 */
import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import { auditActor } from '../accounts/roles.js';
import { ROTATION_REASONS, type RotationReason } from '../devices/enrollment.js';
import { ImportRejectedError, type RowError } from '../devices/errors.js';
import { DEFAULT_MAX_ROWS, parseImport, type ImportFormat } from '../devices/import-format.js';
import { DEVICE_STATUSES, LIFECYCLE_ACTIONS, type LifecycleAction } from '../devices/lifecycle.js';
import type { DeviceView } from '../devices/model.js';
import { ConflictError, ValidationError } from '../errors.js';
import { AlreadyRevokedError } from '../pki/errors.js';
import { REVOCATION_REASONS, type RevocationReason } from '../pki/crl.js';
import type { DeviceStatus } from '../devices/model.js';
import { action, actorForOrganization, deviceIdOf, orgCommand, print, productIdOf, withPlatform, type OrgFlags } from './context.js';
import { registerGatewayCommands } from './gateways.js';
import { registerBindingCommands } from './binding.js';
import { registerSymmetricKeyCommands } from './symmetric-keys.js';
import { registerEnrollmentPolicyCommands } from './manufacturer-cas.js';

/** A file read from disk may be larger than an HTTP body; still bounded so a mistake cannot exhaust memory. */
const MAX_FILE_BYTES = 256 * 1024 * 1024;

function line(d: DeviceView): string {
  return [d.serial, d.status, d.productId, d.group ?? '-', d.tags.join(';') || '-', d.firmwareVersion ?? '-', d.id].join('\t');
}

function reportLines(errors: RowError[]): string {
  return errors
    .map((e) => `  line ${e.line}${e.serial ? ` (${e.serial})` : ''}: ${e.problems.map((p) => `${p.field} ${p.problem}`).join('; ')}`)
    .join('\n');
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerDevicesCommands(program: Command): void {
  const devices = program.command('devices').description('register, import, list and manage devices');
  registerSymmetricKeyCommands(devices);
  registerEnrollmentPolicyCommands(devices);
  registerGatewayCommands(devices);
  registerBindingCommands(devices);

  orgCommand(devices, 'add-product', 'create a product (a device model)')
    .requiredOption('--name <name>', 'product name, unique in the organization')
    .option('--hardware-revision <rev>', 'hardware revision')
    .option('--firmware-line <line>', 'allowed firmware line')
    .action(
      action((flags: OrgFlags & { name: string; hardwareRevision?: string; firmwareLine?: string }) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const product = await platform.devices.service.createProduct(actor, {
            name: flags.name,
            hardwareRevision: flags.hardwareRevision ?? null,
            firmwareLine: flags.firmwareLine ?? null,
          });
          print(flags, product, () => `Product "${product.name}" created (${product.id})`);
        }),
      ),
    );

  orgCommand(devices, 'list', 'list devices in serial order (one page; --cursor for the next)')
    .option('--status <status>', `one of ${DEVICE_STATUSES.join(', ')}`)
    .option('--product <name-or-id>', 'only this product')
    .option('--group <group>', 'only this group')
    .option('--tag <tag>', 'only devices with this tag')
    .option('--serial-prefix <prefix>', 'serials starting with this text')
    .option('--firmware <version>', 'only this reported firmware version')
    .option('--limit <n>', 'devices per page (at most 500)', '100')
    .option('--cursor <cursor>', 'the next-page cursor printed by the previous page')
    .action(
      action(
        (
          flags: OrgFlags & {
            status?: string;
            product?: string;
            group?: string;
            tag?: string;
            serialPrefix?: string;
            firmware?: string;
            limit: string;
            cursor?: string;
          },
        ) =>
          withPlatform(flags, async (platform) => {
            if (flags.status && !(DEVICE_STATUSES as readonly string[]).includes(flags.status))
              throw new ValidationError(`--status must be one of ${DEVICE_STATUSES.join(', ')}`);
            const actor = await actorForOrganization(platform, flags.org);
            const page = await platform.devices.service.list(actor, {
              ...(flags.status ? { status: flags.status as DeviceStatus } : {}),
              ...(flags.product ? { productId: await productIdOf(platform, actor, flags.product) } : {}),
              ...(flags.group ? { group: flags.group } : {}),
              ...(flags.tag ? { tag: flags.tag } : {}),
              ...(flags.serialPrefix ? { serialPrefix: flags.serialPrefix } : {}),
              ...(flags.firmware ? { firmwareVersion: flags.firmware } : {}),
              ...(flags.cursor ? { cursor: flags.cursor } : {}),
              limit: Number(flags.limit),
            });
            print(
              flags,
              page,
              () =>
                [...page.devices.map(line), page.nextCursor ? `(more: --cursor ${page.nextCursor})` : ''].join('\n').trim() || 'No devices',
            );
          }),
      ),
    );

  orgCommand(devices, 'register', 'register one device (status pending)')
    .requiredOption('--serial <serial>', "the brand's serial")
    .requiredOption('--product <name-or-id>', 'its product')
    .option('--group <group>', 'its group')
    .option('--tag <tag>', 'a tag (repeatable)', collect)
    .option('--attributes <json>', 'attributes as a JSON object')
    .action(
      action((flags: OrgFlags & { serial: string; product: string; group?: string; tag?: string[]; attributes?: string }) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          let attributes: Record<string, unknown> | undefined;
          try {
            attributes = flags.attributes === undefined ? undefined : (JSON.parse(flags.attributes) as Record<string, unknown>);
          } catch {
            throw new ValidationError('--attributes must be a JSON object');
          }
          const device = await platform.devices.service.register(actor, {
            serial: flags.serial,
            productId: await productIdOf(platform, actor, flags.product),
            ...(attributes ? { attributes } : {}),
            ...(flags.tag ? { tags: flags.tag } : {}),
            ...(flags.group ? { group: flags.group } : {}),
          });
          print(flags, device, () => `Registered ${device.serial} (${device.id}), status ${device.status}`);
        }),
      ),
    );

  orgCommand(devices, 'import', 'import devices from a JSON-lines or CSV file: all rows or none')
    .argument('<file>', 'the file (.csv is read as CSV, anything else as JSON lines)')
    .option('--format <format>', 'ndjson or csv (default: from the file name)')
    .action(
      action((file: string, flags: OrgFlags & { format?: string }) =>
        withPlatform(flags, async (platform) => {
          const format = (flags.format ?? (file.toLowerCase().endsWith('.csv') ? 'csv' : 'ndjson')) as ImportFormat;
          if (format !== 'csv' && format !== 'ndjson') throw new ValidationError('--format must be ndjson or csv');
          const actor = await actorForOrganization(platform, flags.org);
          const rows = await parseImport(createReadStream(file), format, { maxRows: DEFAULT_MAX_ROWS, maxBytes: MAX_FILE_BYTES });
          try {
            const result = await platform.devices.service.import(actor, rows, format);
            print(flags, result, () => `Imported ${result.imported} devices from ${file}`);
          } catch (error) {
            if (error instanceof ImportRejectedError && !flags.json)
              process.stderr.write(`${reportLines(error.details!.errors as RowError[])}\n`);
            if (error instanceof ImportRejectedError && flags.json) print(flags, error.details, () => '');
            throw error;
          }
        }),
      ),
    );

  for (const name of Object.keys(LIFECYCLE_ACTIONS) as LifecycleAction[]) {
    orgCommand(devices, name, `set a device's status to ${LIFECYCLE_ACTIONS[name]}`)
      .argument('<device>', 'serial or platform ID')
      .option('--reason <text>', 'why (kept in the audit log)')
      .action(
        action((ref: string, flags: OrgFlags & { reason?: string }) =>
          withPlatform(flags, async (platform) => {
            const actor = await actorForOrganization(platform, flags.org);
            const device = await platform.devices.service.transition(actor, await deviceIdOf(platform, actor, ref), name, flags.reason);
            print(flags, device, () => `${device.serial} is now ${device.status}`);
          }),
        ),
      );
  }

  orgCommand(
    devices,
    'enrollment-token',
    'create the one-time token with which a device enrolls over EST (24 hours; voids its earlier tokens)',
  )
    .argument('<device>', 'serial or platform ID')
    .action(
      action((ref: string, flags: OrgFlags) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const id = await deviceIdOf(platform, actor, ref);
          const created = await platform.devices.enrollment.createEnrollmentToken(actor, id);
          print(
            flags,
            { deviceId: id, token: created.token, expiresAt: created.expiresAt.toISOString() },
            () => `Enrollment token for ${ref} (until ${created.expiresAt.toISOString()}, shown once):\n${created.token}`,
          );
        }),
      ),
    );

  orgCommand(devices, 'rotate-credentials', 'revoke every certificate of a device and create a new enrollment token')
    .argument('<device>', 'serial or platform ID')
    .option('--reason <reason>', `one of ${ROTATION_REASONS.join(', ')}`, 'superseded')
    .action(
      action((ref: string, flags: OrgFlags & { reason: string }) =>
        withPlatform(flags, async (platform) => {
          if (!(ROTATION_REASONS as readonly string[]).includes(flags.reason))
            throw new ValidationError(`--reason must be one of ${ROTATION_REASONS.join(', ')}`);
          const actor = await actorForOrganization(platform, flags.org);
          const rotated = await platform.devices.enrollment.rotateCredentials(
            actor,
            await deviceIdOf(platform, actor, ref),
            flags.reason as RotationReason,
          );
          print(flags, { ...rotated, expiresAt: rotated.expiresAt.toISOString() }, () =>
            [
              `Revoked ${rotated.revoked.length} certificate(s) of ${ref}${rotated.revoked.length ? `: ${rotated.revoked.join(', ')}` : ''}`,
              `New enrollment token (until ${rotated.expiresAt.toISOString()}, shown once):`,
              rotated.token,
            ].join('\n'),
          );
        }),
      ),
    );

  orgCommand(devices, 'revoke-cert', 'revoke one device certificate by serial (the CRL is republished)')
    .argument('<serial>', 'certificate serial, hex (openssl x509 -serial prints it)')
    .option('--reason <reason>', `one of ${REVOCATION_REASONS.join(', ')}`, 'unspecified')
    .action(
      action((serial: string, flags: OrgFlags & { reason: string }) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const revoked = await platform.pki
            .revoke({ organizationId: actor.organizationId, serial, reason: flags.reason as RevocationReason }, auditActor(actor))
            .catch((error: unknown) => {
              // Exit 5 like every other conflict.
              if (error instanceof AlreadyRevokedError) throw new ConflictError(error.message, error.details, error.code);
              throw error;
            });
          print(
            flags,
            { serial: revoked.serial, revokedAt: revoked.revokedAt.toISOString() },
            () => `Certificate ${revoked.serial} revoked`,
          );
        }),
      ),
    );
}
