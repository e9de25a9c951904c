/**
 * Scheduled backups (`backup.intervalHours`): each run writes `bulwark-backup-<UTC time>.bwb`
 * into `backup.directory`, records `backup.created` in the audit log (so a stale or missing
 * backup is visible), and deletes the oldest scheduled archives beyond `backup.keep`. Only files
 * this schedule names are ever deleted.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { AuditService } from '../../audit/service.js';
import { ValidationError } from '../../errors.js';
import type { Config } from '../config.js';
import { createBackup, type BackupResult, type DeploymentAccess } from './create.js';
import type { BackupKeySource } from './envelope.js';

const SCHEDULED = /^bulwark-backup-\d{8}T\d{6}Z\.bwb$/;

export function scheduledName(now: Date): string {
  return `bulwark-backup-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '')}.bwb`;
}

/** The key of scheduled backups, from the config's key file or BULWARK_BACKUP_PASSPHRASE; refuses a schedule without one. */
export function scheduledKey(config: Config, env: NodeJS.ProcessEnv): BackupKeySource {
  if (config.backup.keyFile) return { kind: 'key-file', path: config.backup.keyFile };
  const passphrase = env.BULWARK_BACKUP_PASSPHRASE;
  if (passphrase) return { kind: 'passphrase', passphrase };
  throw new ValidationError(
    'backup.intervalHours is set but no key: set backup.keyFile or BULWARK_BACKUP_PASSPHRASE',
    {},
    'config.invalid',
  );
}

export class BackupSchedule {
  private readonly directory: string;

  constructor(
    private readonly access: DeploymentAccess,
    private readonly key: BackupKeySource,
    private readonly audit: AuditService,
    private readonly now: () => Date = () => new Date(),
  ) {
    const { config } = access;
    if (!config.backup.directory)
      throw new ValidationError('backup.intervalHours is set but backup.directory is not', {}, 'config.invalid');
    this.directory = resolve(config.backup.directory);
    if ((this.directory + sep).startsWith(resolve(config.dataDir) + sep)) {
      throw new ValidationError(
        'backup.directory must lie outside the data directory (a backup must survive losing it)',
        {},
        'config.invalid',
      );
    }
  }

  /** Takes one backup, audits it, and prunes the oldest scheduled ones; returns the backup and the files deleted. */
  async run(): Promise<{ backup: BackupResult; deleted: string[] }> {
    let backup: BackupResult;
    try {
      backup = await createBackup(this.access, { out: join(this.directory, scheduledName(this.now())), key: this.key });
    } catch (error) {
      await this.audit.record({
        organizationId: null,
        actor: { type: 'system', id: 'backup-schedule' },
        action: 'backup.created',
        outcome: 'failure',
        details: { reason: (error as Error).message },
      });
      throw error;
    }
    await this.audit.record({
      organizationId: null,
      actor: { type: 'system', id: 'backup-schedule' },
      action: 'backup.created',
      target: { type: 'backup', id: backup.file },
      details: { bytes: backup.bytes, rows: backup.rows, entries: backup.entries, deployment: backup.deployment },
    });
    const scheduled = readdirSync(this.directory)
      .filter((name) => SCHEDULED.test(name))
      .sort();
    const deleted = scheduled.slice(0, Math.max(0, scheduled.length - this.access.config.backup.keep));
    for (const name of deleted) rmSync(join(this.directory, name), { force: true });
    return { backup, deleted };
  }
}
