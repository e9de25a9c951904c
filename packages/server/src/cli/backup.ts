/**
 * `bulwark backup keygen|create|verify|drill` and `bulwark restore` (docs/operations.md, "Backup
 * and restore"). The backup key file or passphrase (BULWARK_BACKUP_PASSPHRASE) is kept apart from
 * the data directory; restore names the deployment it expects (`--deployment`, the fingerprint
 * `backup create` prints) so an archive of another deployment is refused unless told otherwise.
 */
import type { Command } from 'commander';
import { ValidationError } from '../errors.js';
import type { BackupKeySource } from '../ops/backup/envelope.js';
import { action, addDataDir, configFor, EXIT, print, withPlatform, type GlobalOptions } from './context.js';

interface KeyFlags {
  keyFile?: string;
}

interface DeploymentFlags {
  deployment?: string;
  anyDeployment?: boolean;
}

function keySource(flags: KeyFlags): BackupKeySource {
  if (flags.keyFile) return { kind: 'key-file', path: flags.keyFile };
  const passphrase = process.env.BULWARK_BACKUP_PASSPHRASE;
  if (passphrase) return { kind: 'passphrase', passphrase };
  throw new ValidationError(
    'A backup needs its key: --key-file FILE (bulwark backup keygen) or a passphrase in BULWARK_BACKUP_PASSPHRASE',
    {},
    'backup.key_invalid',
  );
}

const withKey = (command: Command): Command =>
  command.option('--key-file <file>', 'backup key file (bulwark backup keygen); otherwise the passphrase in BULWARK_BACKUP_PASSPHRASE');

const withDeployment = (command: Command): Command =>
  command
    .option('--deployment <sha256>', 'root CA fingerprint of the deployment the archive must belong to (printed by backup create)')
    .option('--any-deployment', 'accept an archive of any deployment (its fingerprint is still printed)');

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export function registerBackupCommands(program: Command): void {
  const backup = program.command('backup').description('encrypted, signed backups of a deployment: create, verify, drill');

  backup
    .command('keygen')
    .description('write a new backup key file (keep it apart from the data directory and its backups)')
    .requiredOption('-o, --out <file>', 'where to write the key (never overwritten)')
    .option('--json', 'machine-readable output')
    .action(
      action(async (flags: { out: string; json?: boolean }) => {
        const { createBackupKeyFile } = await import('../ops/backup/envelope.js');
        const id = createBackupKeyFile(flags.out);
        print(
          flags,
          { file: flags.out, keyId: id },
          () => `Backup key ${id} written to ${flags.out} (mode 0600). Keep it apart from the backups.`,
        );
      }),
    );

  addDataDir(withKey(backup.command('create').description('back up the database, PKI, sealed keys and blobs while the node runs')))
    .requiredOption('-o, --out <file>', 'archive to write (through a temporary file and a rename)')
    .option('--json', 'machine-readable output')
    .action(
      action((flags: GlobalOptions & KeyFlags & { out: string }) =>
        withPlatform(flags, async (platform) => {
          const { createBackup } = await import('../ops/backup/create.js');
          const hsm = platform.hsm;
          const result = await createBackup(
            { config: platform.config, box: platform.box, token: hsm ? () => hsm.get() : null },
            { out: flags.out, key: keySource(flags) },
          );
          await platform.audit.record({
            organizationId: null,
            actor: { type: 'cli', id: process.env.USER ?? 'cli' },
            action: 'backup.created',
            target: { type: 'backup', id: result.file },
            details: { bytes: result.bytes, rows: result.rows, entries: result.entries, deployment: result.deployment },
          });
          print(flags, result, () =>
            [
              `Backup written: ${result.file} (${mib(result.bytes)}, ${result.entries} entries, ${result.rows} rows in ${result.tables} tables, ${result.seconds.toFixed(1)} s)`,
              `Deployment: ${result.deployment}`,
              'Not in the archive, and needed to restore it (keep each apart from the data and the backups):',
              ...result.keepApart.map((what) => `  - ${what}`),
            ].join('\n'),
          );
        }),
      ),
    );

  withDeployment(withKey(backup.command('verify').description('decrypt and check an archive (signature, every hash) without restoring it')))
    .argument('<archive>')
    .option('--json', 'machine-readable output')
    .action(
      action(async (archive: string, flags: KeyFlags & DeploymentFlags & { json?: boolean }) => {
        const { verifyArchive } = await import('../ops/backup/restore.js');
        const { rmSync } = await import('node:fs');
        const { tmpdir } = await import('node:os');
        const { join } = await import('node:path');
        const verified = await verifyArchive(
          { archive, key: keySource(flags), ...deploymentOptions(flags) },
          join(tmpdir(), 'bulwark-verify'),
        );
        rmSync(verified.staging, { recursive: true, force: true });
        const { manifest } = verified;
        const rows = Object.values(manifest.tables).reduce((sum, table) => sum + table.rows, 0);
        print(
          flags,
          {
            ok: true,
            deployment: manifest.deployment,
            created: manifest.created,
            engine: manifest.engine,
            entries: manifest.entries.length,
            rows,
          },
          () =>
            `Backup verified: deployment ${manifest.deployment}, taken ${manifest.created}, ${manifest.engine}, ${manifest.entries.length} entries, ${rows} rows`,
        );
      }),
    );

  addDataDir(withKey(backup.command('drill').description('restore an archive into scratch space and compare it with its manifest')))
    .argument('<archive>')
    .option('--json', 'machine-readable output')
    .action(
      action(async (archive: string, flags: GlobalOptions & KeyFlags) => {
        const { restoreDrill } = await import('../ops/backup/drill.js');
        const { deploymentOf } = await import('../ops/backup/restore.js');
        const config = await configFor(flags);
        const report = await restoreDrill(
          config,
          { archive, key: keySource(flags), deployment: deploymentOf(config.dataDir) },
          async (restored) =>
            withPlatform({ dataDir: restored.dataDir }, async (platform) => {
              const audit = await platform.audit.verify();
              return { ok: audit.ok, entries: audit.entries, problems: audit.problems.length };
            }),
        );
        await withPlatform(flags, (platform) =>
          platform.audit.record({
            organizationId: null,
            actor: { type: 'cli', id: process.env.USER ?? 'cli' },
            action: 'backup.drilled',
            target: { type: 'backup', id: archive },
            outcome: report.ok ? 'success' : 'failure',
            details: {
              created: report.created,
              rows: report.rows,
              tables: report.tables,
              mismatches: report.mismatches.length,
              auditOk: report.audit.ok,
            },
          }),
        );
        print(flags, report, () =>
          [
            `Restore drill ${report.ok ? 'PASSED' : 'FAILED'}: ${report.rows} rows in ${report.tables} tables restored in ${report.seconds.toFixed(1)} s`,
            ...report.mismatches.map(
              (m) =>
                `  ${m.table}: expected ${m.expected?.rows ?? 'none'} rows, restored ${m.restored?.rows ?? 'none'} (or their digest differs)`,
            ),
            `  audit chain: ${report.audit.ok ? 'verified' : 'BROKEN'} (${report.audit.entries} entries)`,
          ].join('\n'),
        );
        return report.ok ? EXIT.ok : EXIT.verificationFailed;
      }),
    );

  withDeployment(
    withKey(program.command('restore').description('restore an archive into an empty data directory (and an empty PostgreSQL database)')),
  )
    .argument('<archive>')
    .requiredOption('-d, --data-dir <dir>', 'the data directory to create (absent or empty)')
    .option(
      '--database <url>',
      'the empty PostgreSQL database to restore into: required for a PostgreSQL backup; for a SQLite backup, moves the deployment to PostgreSQL',
    )
    .option('--master-key <file>', 'the master key file to place in the restored data directory')
    .option('--json', 'machine-readable output')
    .action(
      action(
        async (
          archive: string,
          flags: KeyFlags & DeploymentFlags & { dataDir: string; database?: string; masterKey?: string; json?: boolean },
        ) => {
          const { restoreBackup } = await import('../ops/backup/restore.js');
          const result = await restoreBackup({
            archive,
            key: keySource(flags),
            ...deploymentOptions(flags),
            dataDir: flags.dataDir,
            ...(flags.database ? { databaseUrl: flags.database } : {}),
            ...(flags.masterKey ? { masterKeyFile: flags.masterKey } : {}),
          });
          const { digests: _digests, copied, ...summary } = result;
          print(
            flags,
            {
              ...summary,
              ...(copied ? { copied: { migration: copied.migration, rows: copied.rows, tables: Object.keys(copied.tables).length } } : {}),
            },
            () =>
              [
                `Restored deployment ${result.deployment} (backup of ${result.created}) into ${result.dataDir}: ${result.rows} rows in ${result.tables} tables, ${result.entries} entries, ${result.seconds.toFixed(1)} s`,
                `Database: ${result.databaseUrl}`,
                copied
                  ? `Moved from SQLite to PostgreSQL at migration ${copied.migration}: ${copied.rows} rows in ${Object.keys(copied.tables).length} tables, each read back and matched`
                  : '',
                flags.masterKey ? '' : 'Place the master key (keys/master.key, BULWARK_MASTER_KEY, or the token) before starting the node.',
              ]
                .filter(Boolean)
                .join('\n'),
          );
        },
      ),
    );
}

function deploymentOptions(flags: DeploymentFlags): { deployment?: string; anyDeployment?: boolean } {
  return { ...(flags.deployment ? { deployment: flags.deployment } : {}), ...(flags.anyDeployment ? { anyDeployment: true } : {}) };
}
