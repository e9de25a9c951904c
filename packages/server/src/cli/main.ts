/**
 * The `bulwark` command line: one file per command group, all on the same services as the API.
 */
import { Command, CommanderError } from 'commander';
import { registerAdminCommands } from './admin.js';
import { registerAuditCommands } from './audit.js';
import { registerDevicesCommands } from './devices.js';
import { registerFirmwareCommands } from './firmware.js';
import { EXIT } from './context.js';
import { registerKeysCommands } from './keys.js';
import { registerPkiCommands } from './pki.js';
import { registerServeCommands } from './serve.js';
import { registerTelemetryCommands } from './telemetry.js';

export function buildProgram(): Command {
  const program = new Command('bulwark')
    .description('Bulwark: a self-hostable, secure-by-default IoT device cloud')
    .version('0.1.0')
    .showHelpAfterError()
    // Options after a subcommand's name are the subcommand's (`firmware sign --version 1.4.0` is not the program's --version).
    .enablePositionalOptions()
    .exitOverride();
  registerServeCommands(program);
  registerAdminCommands(program);
  registerAuditCommands(program);
  registerDevicesCommands(program);
  registerFirmwareCommands(program);
  registerKeysCommands(program);
  registerPkiCommands(program);
  registerTelemetryCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.invalid;
      return;
    }
    throw error;
  }
}

const invokedDirectly = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly) await main(process.argv);
