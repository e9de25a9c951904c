/**
 * `bulwark audit verify` (exit 3 when the chain or a checkpoint does not verify) and
 * `bulwark audit export` (JSON lines, to stdout or a file).
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Command } from 'commander';
import { action, addDataDir, EXIT, print, withPlatform, type GlobalOptions } from './context.js';

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('verify and export the tamper-evident audit log');

  addDataDir(audit.command('verify').description('check every hash link and signed checkpoint; exit 3 on tampering'))
    .option('--json', 'machine-readable output')
    .action(
      action((flags: GlobalOptions) =>
        withPlatform(flags, async (platform) => {
          const report = await platform.audit.verify();
          print(flags, report, () =>
            report.ok
              ? `Audit log verified: ${report.entries} entries, ${report.checkpoints} signed checkpoints, last entry ${report.lastSeq}`
              : [
                  `AUDIT LOG TAMPERED: ${report.problems.length} problem(s) in ${report.entries} entries`,
                  ...report.problems.map((p) => `  entry ${p.seq}: ${p.message}`),
                ].join('\n'),
          );
          return report.ok ? EXIT.ok : EXIT.verificationFailed;
        }),
      ),
    );

  addDataDir(audit.command('export').description('write entries as JSON lines, oldest first'))
    .option('--org <slug>', 'only this organization')
    .option('-o, --out <file>', 'write to a file instead of standard output')
    .action(
      action((flags: GlobalOptions & { org?: string; out?: string }) =>
        withPlatform(flags, async (platform) => {
          let organizationId: string | undefined;
          if (flags.org) {
            const org = await platform.accounts.store.organizationBySlug(flags.org);
            if (!org) {
              process.stderr.write(`error: organization "${flags.org}" not found\n`);
              return EXIT.notFound;
            }
            organizationId = org.id;
          }
          const out = flags.out ? createWriteStream(flags.out, { mode: 0o600 }) : process.stdout;
          for await (const line of platform.audit.export(organizationId)) {
            if (!out.write(line)) await once(out, 'drain');
          }
          if (flags.out) {
            (out as ReturnType<typeof createWriteStream>).end();
            await once(out, 'finish');
          }
          return EXIT.ok;
        }),
      ),
    );
}
