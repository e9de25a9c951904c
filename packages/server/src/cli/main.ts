/**
 * The `bulwark` command line: one file per command group, all on the same services as the API.
 * A command loads only its own group's module (and that module opens the platform only when the
 * command needs it): a child process running `bulwark firmware keygen` never loads the server.
 * Help, version and an unknown command load every group, so the listing and suggestions are whole.
 */
import { Command, CommanderError } from 'commander';
import { EXIT } from './context.js';

type Register = (program: Command) => void;

const serveGroup = async (): Promise<Register> => (await import('./serve.js')).registerServeCommands;

/** Each group's registration, in the order the help lists them, under its top-level command names. */
const GROUPS: { commands: string[]; load: () => Promise<Register> }[] = [
  { commands: ['init', 'serve', 'start', 'migrate'], load: serveGroup },
  { commands: ['admin'], load: async () => (await import('./admin.js')).registerAdminCommands },
  { commands: ['backup', 'restore'], load: async () => (await import('./backup.js')).registerBackupCommands },
  { commands: ['advisories'], load: async () => (await import('./advisories.js')).registerAdvisoriesCommands },
  { commands: ['apps'], load: async () => (await import('./apps.js')).registerAppsCommands },
  { commands: ['assessment'], load: async () => (await import('./assessment.js')).registerAssessmentCommands },
  { commands: ['audit'], load: async () => (await import('./audit.js')).registerAuditCommands },
  { commands: ['devices'], load: async () => (await import('./devices.js')).registerDevicesCommands },
  { commands: ['firmware'], load: async () => (await import('./firmware.js')).registerFirmwareCommands },
  { commands: ['keys'], load: async () => (await import('./keys.js')).registerKeysCommands },
  { commands: ['products'], load: async () => (await import('./products.js')).registerProductsCommands },
  { commands: ['pki'], load: async () => (await import('./pki.js')).registerPkiCommands },
  { commands: ['sso'], load: async () => (await import('./sso.js')).registerSsoCommands },
  { commands: ['telemetry'], load: async () => (await import('./telemetry.js')).registerTelemetryCommands },
];

/** The program with the group of the command in `argv` (node, script, command, …), or every group. */
export async function buildProgram(argv: string[] = []): Promise<Command> {
  const program = new Command('bulwark')
    .description('Bulwark: a self-hostable, secure-by-default IoT device cloud')
    .version('0.1.0')
    .showHelpAfterError()
    // Options after a subcommand's name are the subcommand's (`firmware sign --version 1.4.0` is not the program's --version).
    .enablePositionalOptions()
    .exitOverride();
  const named = GROUPS.find((g) => g.commands.includes(argv[2] ?? ''));
  for (const group of named ? [named] : GROUPS) (await group.load())(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await (await buildProgram(argv)).parseAsync(argv);
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
