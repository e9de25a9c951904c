/**
 * Master-key rotation without downtime. The old key is kept as master.key.previous, a new
 * master.key is written (each file atomically), and every sealed value is re-wrapped under it, row
 * by row with compare-and-set updates, while readers open values under either key (their boxes
 * reload the key files when they meet the new key id). Crashing anywhere leaves everything
 * readable; running it again finishes the job. Only then is the previous key removed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import type { Kysely } from 'kysely';
import type { AuditService } from '../audit/service.js';
import type { Database } from '../storage/schema.js';
import { KeyCustodyError, SoftwareKek, type SecretBox } from './custody.js';
import { masterKeyPath, previousMasterKeyPath, readKeyFile, writeKeyFileAtomic } from './master-key.js';
import { readSealedFile, SEALED_COLUMNS, sealedFiles, writeSealedFileAtomic } from './sealed-values.js';

export interface RotationOptions {
  dataDir: string;
  db: Kysely<Database>;
  /** The box loaded from the data directory's key files (loadMasterKey without BULWARK_MASTER_KEY). */
  box: SecretBox;
  audit: AuditService;
  env?: NodeJS.ProcessEnv;
  /** Rows read per query. */
  batch?: number;
  /** Who ran it, for the audit log. */
  actorId?: string;
}

export interface RotationReport {
  previousKeyId: string;
  keyId: string;
  /** True when an interrupted rotation was finished. */
  resumed: boolean;
  /** Values re-wrapped, by column or file. */
  rewrapped: Record<string, number>;
}

const MAX_PASSES = 10;

export async function rotateMasterKey(options: RotationOptions): Promise<RotationReport> {
  if ((options.env ?? process.env).BULWARK_MASTER_KEY) {
    throw new KeyCustodyError(
      'The master key comes from BULWARK_MASTER_KEY: rotate-master works on DIR/keys/master.key. Move the key into that file (mode 0600), unset the variable, then rotate.',
      'keys.master_key_from_env',
    );
  }
  const currentPath = masterKeyPath(options.dataDir);
  const previousPath = previousMasterKeyPath(options.dataDir);
  const resumed = existsSync(previousPath);
  if (!resumed) writeKeyFileAtomic(previousPath, readKeyFile(currentPath));
  const previousKeyId = new SoftwareKek(readKeyFile(previousPath)).id;
  if (new SoftwareKek(readKeyFile(currentPath)).id === previousKeyId) writeKeyFileAtomic(currentPath, randomBytes(32));
  options.box.refresh();
  const keyId = options.box.keyId;

  const rewrapped: Record<string, number> = {};
  const count = (name: string) => (rewrapped[name] = (rewrapped[name] ?? 0) + 1);
  // A server that sealed a value just before it saw the new key writes it under the old one:
  // passes repeat until one finds nothing left under an old key.
  for (let pass = 0; ; pass++) {
    if (pass === MAX_PASSES) throw new KeyCustodyError(`Values are still being sealed under the previous master key after ${MAX_PASSES} passes; run rotate-master again`, 'keys.rotation_incomplete');
    let found = 0;
    for (const column of SEALED_COLUMNS) {
      let after = '';
      for (;;) {
        const rows = await column.page(options.db, keyId, after, options.batch ?? 200);
        for (const row of rows) {
          found++;
          const next = options.box.rewrap(row.sealed, column.context(row.id));
          if (next && (await column.replace(options.db, row, next))) count(column.name);
        }
        if (rows.length === 0) break;
        after = rows[rows.length - 1]!.id;
      }
    }
    for (const file of sealedFiles(options.dataDir)) {
      const next = options.box.rewrap(readSealedFile(file), file.context);
      if (next) {
        found++;
        writeSealedFileAtomic(file, next);
        count(file.path.slice(options.dataDir.length + 1));
      }
    }
    if (found === 0) break;
  }

  await options.audit.record({
    organizationId: null,
    actor: { type: 'cli', id: options.actorId ?? process.env.USER ?? 'cli' },
    action: 'keys.master_rotated',
    target: { type: 'master_key', id: keyId },
    details: { previousKeyId, keyId, resumed, rewrapped },
  });
  rmSync(previousPath, { force: true });
  options.box.refresh();
  return { previousKeyId, keyId, resumed, rewrapped };
}
