/**
 * `bulwark telemetry prune [--dry-run]`: one retention pass now, through the same job a server
 * runs periodically; `--dry-run` counts what would be deleted and deletes nothing.
 */
import type { Command } from 'commander';
import { action, addDataDir, EXIT, print, withPlatform, type GlobalOptions } from './context.js';

export function registerTelemetryCommands(program: Command): void {
  const telemetry = program.command('telemetry').description('telemetry storage');

  addDataDir(
    telemetry.command('prune').description("delete telemetry older than its product's retention (or telemetry.retentionDays), in batches"),
  )
    .option('--dry-run', 'count what would be deleted; delete nothing')
    .option('--json', 'machine-readable output')
    .action(
      action((flags: GlobalOptions & { dryRun?: boolean }) =>
        withPlatform(flags, async (platform) => {
          const report = await platform.telemetry.retention.run({ dryRun: flags.dryRun === true });
          print(flags, report, () =>
            [
              `${report.dryRun ? 'Would delete' : 'Deleted'} ${report.rows} telemetry rows${report.dryRun ? '' : ` in ${report.batches} batches`}`,
              ...report.products
                .filter((p) => p.rows > 0)
                .map(
                  (p) =>
                    `  product ${p.productId}: ${p.rows} rows before ${p.cutoff} (${p.retentionDays} days${p.usesDefault ? ', the default' : ''})`,
                ),
            ].join('\n'),
          );
          return EXIT.ok;
        }),
      ),
    );
}
