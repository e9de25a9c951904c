/**
 * `bulwark pki manufacturer-ca …` and `bulwark devices enrollment-policy …`: just-in-time
 * provisioning from the command line, through the same services as the HTTP API. Registering a CA
 * takes the challenge (`challenge`) signed with the CA key where the key lives
 * (`openssl dgst -sha256 -sign ca.key -out sig.bin challenge.txt`); the signature file may be raw
 * or base64. Allow-lists are set per product (`--product`) or enrollment group (`--group`); a serial
 * file (one serial a line, `#` comments) is imported in batches.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Actor } from '../accounts/roles.js';
import type { EnrollmentPolicyView } from '../devices/enrollment-policy.js';
import type { DeviceIdSource } from '../devices/manufacturer-cas.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { Platform } from '../platform.js';
import type { EnrollmentScope } from '../storage/schema.js';
import { action, actorForOrganization, orgCommand, print, withPlatform, type OrgFlags } from './context.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

async function productIdOf(platform: Platform, actor: Actor, ref: string): Promise<string> {
  const product = (await platform.devices.service.listProducts(actor)).find((p) => p.id === ref || p.name === ref);
  if (!product) throw new NotFoundError(`Product "${ref}"`);
  return product.id;
}

/** The signature as base64, from a file holding it raw (openssl's output) or already base64. */
function signatureOf(path: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new ValidationError(`Cannot read the signature file ${path}: ${(error as Error).message}`);
  }
  const text = bytes.toString('latin1').trim();
  return /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? text : bytes.toString('base64');
}

interface ScopeFlags extends OrgFlags {
  product?: string;
  group?: string;
}

async function scopeOf(platform: Platform, actor: Actor, flags: ScopeFlags): Promise<{ scope: EnrollmentScope; id: string }> {
  if ((flags.product === undefined) === (flags.group === undefined))
    throw new ValidationError('Name exactly one of --product <name-or-id> and --group <name-or-id>');
  if (flags.product !== undefined) return { scope: 'product', id: await productIdOf(platform, actor, flags.product) };
  const group = (await platform.devices.symmetricKeys.listGroups(actor)).find((g) => g.id === flags.group || g.name === flags.group);
  if (!group) throw new NotFoundError(`Enrollment group "${flags.group}"`);
  return { scope: 'enrollment_group', id: group.id };
}

const policyText = (p: EnrollmentPolicyView) =>
  [
    `${p.scope} ${p.scopeId}`,
    `  serial patterns: ${p.serialPatterns.join(' ') || '(none)'}`,
    `  serial list: ${p.serialList ? `on, ${p.serialsListed} serials` : 'off'}`,
    `  source ranges: ${p.sourceCidrs.join(' ') || '(any address)'}`,
    `  daily quota: ${p.dailyQuota}${p.dailyQuotaSet ? '' : ' (default)'}; registered today: ${p.registrationsToday}`,
  ].join('\n');

export function registerManufacturerCaCommands(pki: Command): void {
  const cas = pki
    .command('manufacturer-ca')
    .description('manufacturer CAs a product trusts for just-in-time provisioning (registered with proof of possession of the CA key)');

  orgCommand(cas, 'challenge', 'print a single-use challenge (10 minutes) to sign with the CA key').action(
    action((flags: OrgFlags) =>
      withPlatform(flags, async (platform) => {
        const created = await platform.devices.manufacturerCas.challenge(await actorForOrganization(platform, flags.org));
        print(flags, created, () => created.challenge);
      }),
    ),
  );

  orgCommand(cas, 'register', 'trust a manufacturer CA for a product: its certificate and the challenge signed with its key')
    .requiredOption('--name <name>', 'a name for the CA')
    .requiredOption('--product <name-or-id>', 'the product its devices register into')
    .requiredOption('--cert <file>', 'the CA certificate (PEM)')
    .requiredOption('--challenge <challenge>', 'the challenge from `bulwark pki manufacturer-ca challenge`')
    .requiredOption('--signature-file <file>', 'the challenge signed with the CA key (openssl dgst -sha256 -sign), raw or base64')
    .option('--device-id-from <source>', 'where the device ID comes from: cn, serial_number or key_sha256', 'cn')
    .option('--device-id-prefix <prefix>', 'put before the derived value to make the device ID', '')
    .option('--pending', 'hold registered devices pending until an operator activates them (default: active at once)')
    .action(
      action(
        (
          flags: OrgFlags & {
            name: string;
            product: string;
            cert: string;
            challenge: string;
            signatureFile: string;
            deviceIdFrom: string;
            deviceIdPrefix: string;
            pending?: boolean;
          },
        ) =>
          withPlatform(flags, async (platform) => {
            const actor = await actorForOrganization(platform, flags.org);
            let certificate: string;
            try {
              certificate = readFileSync(flags.cert, 'utf8');
            } catch (error) {
              throw new ValidationError(`Cannot read the certificate ${flags.cert}: ${(error as Error).message}`);
            }
            const ca = await platform.devices.manufacturerCas.register(actor, {
              name: flags.name,
              productId: await productIdOf(platform, actor, flags.product),
              certificate,
              challenge: flags.challenge.trim(),
              signature: signatureOf(flags.signatureFile),
              deviceIdFrom: flags.deviceIdFrom as DeviceIdSource,
              deviceIdPrefix: flags.deviceIdPrefix,
              activation: flags.pending ? 'pending' : 'active',
            });
            print(
              flags,
              ca,
              () =>
                `Manufacturer CA "${ca.name}" registered (${ca.id})\n  ${ca.subject.replace(/\n/g, ', ')}\n  sha256 ${ca.fingerprintSha256}`,
            );
          }),
      ),
    );

  orgCommand(cas, 'list', 'list manufacturer CAs (revoked ones too) with the devices each registered').action(
    action((flags: OrgFlags) =>
      withPlatform(flags, async (platform) => {
        const list = await platform.devices.manufacturerCas.list(await actorForOrganization(platform, flags.org));
        print(
          flags,
          { manufacturerCas: list },
          () =>
            list
              .map((c) =>
                [c.name, c.revokedAt ? `revoked ${c.revokedAt}` : 'trusted', c.productId, `${c.devicesRegistered} devices`, c.id].join(
                  '\t',
                ),
              )
              .join('\n') || 'No manufacturer CAs',
        );
      }),
    ),
  );

  orgCommand(cas, 'revoke', 'stop registrations through a manufacturer CA')
    .argument('<ca>', 'name or ID')
    .option('--quarantine', 'also quarantine every active device it registered')
    .action(
      action((ref: string, flags: OrgFlags & { quarantine?: boolean }) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const ca = (await platform.devices.manufacturerCas.list(actor)).find((c) => (c.id === ref || c.name === ref) && !c.revokedAt);
          if (!ca) throw new NotFoundError(`Trusted manufacturer CA "${ref}"`);
          const { quarantined } = await platform.devices.manufacturerCas.revoke(actor, ca.id, { quarantine: flags.quarantine === true });
          print(
            flags,
            { id: ca.id, quarantined: quarantined.length },
            () => `Manufacturer CA "${ca.name}" revoked${flags.quarantine ? `; ${quarantined.length} devices quarantined` : ''}`,
          );
        }),
      ),
    );
}

export function registerEnrollmentPolicyCommands(devices: Command): void {
  const policy = devices
    .command('enrollment-policy')
    .description('allow-lists on self-registration, per product (manufacturer CAs) or enrollment group');
  const scoped = (name: string, description: string) =>
    orgCommand(policy, name, description)
      .option('--product <name-or-id>', 'the product (its manufacturer CAs)')
      .option('--group <name-or-id>', 'the enrollment group');

  scoped('show', "show the allow-list and today's registrations").action(
    action((flags: ScopeFlags) =>
      withPlatform(flags, async (platform) => {
        const actor = await actorForOrganization(platform, flags.org);
        const { scope, id } = await scopeOf(platform, actor, flags);
        const view = await platform.devices.enrollmentPolicies.get(actor, scope, id);
        print(flags, view, () => policyText(view));
      }),
    ),
  );

  scoped('set', 'set the allow-list (options left out keep their value)')
    .option('--serial-pattern <glob>', 'a serial pattern (* any run, ? one character); repeat for several', collect)
    .option('--no-serial-patterns', 'remove every serial pattern')
    .option('--cidr <range>', 'an allowed source address range (203.0.113.0/24, 2001:db8::/32); repeat for several', collect)
    .option('--no-cidrs', 'accept registrations from any address')
    .option('--daily-quota <n|default>', 'new devices per UTC day')
    .option('--serial-list <on|off>', 'whether the imported serial list is part of the allow-list')
    .action(
      action(
        (
          flags: ScopeFlags & {
            serialPattern?: string[];
            serialPatterns?: boolean;
            cidr?: string[];
            cidrs?: boolean;
            dailyQuota?: string;
            serialList?: string;
          },
        ) =>
          withPlatform(flags, async (platform) => {
            const actor = await actorForOrganization(platform, flags.org);
            const { scope, id } = await scopeOf(platform, actor, flags);
            if (flags.dailyQuota !== undefined && flags.dailyQuota !== 'default' && !/^\d+$/.test(flags.dailyQuota))
              throw new ValidationError('--daily-quota is a whole number or "default"');
            if (flags.serialList !== undefined && !['on', 'off'].includes(flags.serialList))
              throw new ValidationError('--serial-list is on or off');
            const view = await platform.devices.enrollmentPolicies.set(actor, scope, id, {
              ...(flags.serialPattern
                ? { serialPatterns: flags.serialPattern }
                : flags.serialPatterns === false
                  ? { serialPatterns: [] }
                  : {}),
              ...(flags.cidr ? { sourceCidrs: flags.cidr } : flags.cidrs === false ? { sourceCidrs: [] } : {}),
              ...(flags.dailyQuota !== undefined ? { dailyQuota: flags.dailyQuota === 'default' ? null : Number(flags.dailyQuota) } : {}),
              ...(flags.serialList !== undefined ? { serialList: flags.serialList === 'on' } : {}),
            });
            print(flags, view, () => policyText(view));
          }),
      ),
    );

  scoped('import-serials', 'import a file of serials (one a line) into the allow-list, and turn the list on')
    .requiredOption('--file <path>', 'the serial file')
    .option('--replace', 'drop the serials listed before')
    .action(
      action((flags: ScopeFlags & { file: string; replace?: boolean }) =>
        withPlatform(flags, async (platform) => {
          const actor = await actorForOrganization(platform, flags.org);
          const { scope, id } = await scopeOf(platform, actor, flags);
          let text: string;
          try {
            text = readFileSync(flags.file, 'utf8');
          } catch (error) {
            throw new ValidationError(`Cannot read ${flags.file}: ${(error as Error).message}`);
          }
          const serials = text
            .split(/\r?\n/)
            .map((line) => line.trim())
            .filter((line) => line && !line.startsWith('#'));
          if (serials.length === 0) throw new ValidationError(`${flags.file} holds no serial`);
          const view = await platform.devices.enrollmentPolicies.importSerials(actor, scope, id, serials, flags.replace === true);
          print(flags, view, () => `Imported ${serials.length} serials\n${policyText(view)}`);
        }),
      ),
    );
}
