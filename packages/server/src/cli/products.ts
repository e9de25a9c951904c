/**
 * `bulwark products commands show|set|withdraw <product> --org <slug>`: the commands a product's
 * devices take, through the same service as `PUT /api/v1/products/:id/commands`. `set` reads a
 * JSON file holding the declarations (an array of `{name, description, params}`), checked as the
 * API checks them (nothing is written when one is wrong); `withdraw` removes the declaration (any
 * command name is sent again). Each change is audited. A product is named by its name or its ID.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Actor } from '../accounts/roles.js';
import type { CommandDeclaration } from '../devices/command-catalogue.js';
import type { ProductView } from '../devices/model.js';
import { ValidationError } from '../errors.js';
import type { Platform } from '../platform.js';
import { action, actorForOrganization, orgCommand, print, productIdOf, withPlatform, type OrgFlags } from './context.js';

/** A declarations file is small (at most 50 commands of 20 parameters); anything far larger is a mistake. */
const MAX_FILE_BYTES = 1024 * 1024;

function describe(commands: CommandDeclaration[] | null | undefined): string {
  if (!commands) return 'No commands declared: any command name is sent.';
  if (commands.length === 0) return 'No command is allowed (an empty declaration).';
  return commands
    .map((c) => {
      const params = c.params.map((p) => `${p.name}: ${p.type}${p.required ? '' : '?'}`).join(', ');
      return `${c.name}(${params})${c.description ? `\t${c.description}` : ''}`;
    })
    .join('\n');
}

async function declarationsIn(path: string): Promise<unknown> {
  const text = await readFile(path, 'utf8');
  if (Buffer.byteLength(text) > MAX_FILE_BYTES) throw new ValidationError(`${path} is larger than 1 MiB`, { field: 'file' });
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ValidationError(`${path} is not JSON: ${(error as Error).message}`, { field: 'file' });
  }
}

export function registerProductsCommands(program: Command): void {
  const products = program.command('products').description("a product's declarations");
  const commands = products.command('commands').description("the commands a product's devices take");

  orgCommand(commands, 'show', "print a product's declared commands")
    .argument('<product>', 'product name or ID')
    .action(
      action((product: string, flags: OrgFlags) =>
        onProduct(flags, product, async (platform, actor, id) => {
          const view = (await platform.devices.service.listProducts(actor)).find((p) => p.id === id)!;
          print(flags, { productId: id, commands: view.commands ?? null }, () => describe(view.commands));
        }),
      ),
    );

  const answer = (flags: OrgFlags, view: ProductView) =>
    print(flags, { productId: view.id, commands: view.commands ?? null }, () => `Product "${view.name}": ${describe(view.commands)}`);

  orgCommand(commands, 'set', "declare a product's commands from a JSON file (replacing any declaration)")
    .argument('<product>', 'product name or ID')
    .requiredOption('--file <path>', 'JSON array of {name, description, params: [{name, type, required, description}]}')
    .action(
      action(async (product: string, flags: OrgFlags & { file: string }) => {
        const declarations = await declarationsIn(flags.file);
        await onProduct(flags, product, async (platform, actor, id) =>
          answer(flags, await platform.devices.service.declareCommands(actor, id, declarations)),
        );
      }),
    );

  orgCommand(commands, 'withdraw', "withdraw a product's declaration (any command name is sent again)")
    .argument('<product>', 'product name or ID')
    .action(
      action((product: string, flags: OrgFlags) =>
        onProduct(flags, product, async (platform, actor, id) =>
          answer(flags, await platform.devices.service.declareCommands(actor, id, null)),
        ),
      ),
    );
}

/** Runs `fn` on the platform as the organization's CLI actor, with the product named by `ref`. */
function onProduct(
  flags: OrgFlags,
  ref: string,
  fn: (platform: Platform, actor: Actor, productId: string) => Promise<void>,
): Promise<void> {
  return withPlatform(flags, async (platform) => {
    const actor = await actorForOrganization(platform, flags.org);
    await fn(platform, actor, await productIdOf(platform, actor, ref));
  });
}
