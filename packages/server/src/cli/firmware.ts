/**
 * `bulwark firmware …`: the offline side of firmware updates (keys, root and targets signing). Skeleton.
 */
import type { Command } from 'commander';

export function registerFirmwareCommands(program: Command): void {
  program.command('firmware').description('firmware signing and the update repository');
}
