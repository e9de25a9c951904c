/**
 * Master-key rotation without downtime. The old key is kept as master.key.previous, a new
 * master.key is written (each file atomically), and every sealed value is re-wrapped under it, row
 * by row with compare-and-set updates, while readers open values under either key (their boxes
 * reload the key files when they meet the new key id). Crashing anywhere leaves everything
 * readable; running it again finishes the job. Only then is the previous key removed.
 *
 * With the master key on the PKCS#11 token the same steps run on the label records
 * (master.pkcs11, master.pkcs11.previous): a new AES key is generated on the token, and the old
 * one is left there (database backups made before the rotation need it; the operator deletes it
 * with the HSM's tools when none does).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import type { AuditService } from '../audit/service.js';
import { ValidationError } from '../errors.js';
import { KeyCustodyError, SoftwareKek, type SecretBox } from './custody.js';
import {
  derivationSecretFile,
  masterKeyOnToken,
  masterKeyPath,
  newTokenMasterKeyLabel,
  previousMasterKeyPath,
  previousTokenMasterKeyPath,
  readKeyFile,
  readTokenKeyLabel,
  tokenKek,
  tokenMasterKeyPath,
  writeKeyFileAtomic,
  writeTokenKeyLabel,
} from './master-key.js';
import type { Pkcs11Token } from './pkcs11.js';
import { SEALED_COLUMNS } from './sealed-column-store.js';
import { readSealedFile, sealedFiles, writeSealedFileAtomic, type SealedFile } from './sealed-values.js';
import { rewrapConfigFile } from './sealed-config.js';
import type { Executor } from '../storage/executor.js';

export interface RotationOptions {
  dataDir: string;
  db: Executor;
  /** The box loaded from the data directory's key files (loadMasterKey without BULWARK_MASTER_KEY). */
  box: SecretBox;
  audit: AuditService;
  env?: NodeJS.ProcessEnv;
  /** Rows read per query. */
  batch?: number;
  /** Who ran it, for the audit log. */
  actorId?: string;
  /** The configured PKCS#11 token (platform.hsm), needed when the master key is on it. */
  token?: (() => Pkcs11Token) | null;
}

export interface RotationReport {
  previousKeyId: string;
  keyId: string;
  /** True when an interrupted rotation was finished. */
  resumed: boolean;
  /** Values re-wrapped, by column or file. */
  rewrapped: Record<string, number>;
  /** Master key on the token: the label of the replaced key, which stays on the token. */
  retiredTokenKeyLabel?: string;
}

/** A new current key in place, the one it replaces still readable; `finish` forgets the old one. */
interface Staged {
  resumed: boolean;
  previousKeyId: string;
  retiredTokenKeyLabel?: string;
  finish(): void;
}

function stageKeyFile(dataDir: string): Staged {
  const currentPath = masterKeyPath(dataDir);
  const previousPath = previousMasterKeyPath(dataDir);
  const resumed = existsSync(previousPath);
  if (!resumed) writeKeyFileAtomic(previousPath, readKeyFile(currentPath));
  const previousKeyId = new SoftwareKek(readKeyFile(previousPath)).id;
  if (new SoftwareKek(readKeyFile(currentPath)).id === previousKeyId) writeKeyFileAtomic(currentPath, randomBytes(32));
  return { resumed, previousKeyId, finish: () => rmSync(previousPath, { force: true }) };
}

function stageTokenKey(dataDir: string, token: () => Pkcs11Token): Staged {
  const currentPath = tokenMasterKeyPath(dataDir);
  const previousPath = previousTokenMasterKeyPath(dataDir);
  const resumed = existsSync(previousPath);
  if (!resumed) writeTokenKeyLabel(previousPath, readTokenKeyLabel(currentPath));
  const previousLabel = readTokenKeyLabel(previousPath);
  const previousKeyId = tokenKek(token(), previousLabel, previousPath).id;
  if (readTokenKeyLabel(currentPath) === previousLabel) {
    // A crash between these two lines leaves an unused key on the token, never an unrecorded one in use.
    const label = newTokenMasterKeyLabel();
    token().generateKek(label);
    writeTokenKeyLabel(currentPath, label);
  }
  return { resumed, previousKeyId, retiredTokenKeyLabel: previousLabel, finish: () => rmSync(previousPath, { force: true }) };
}

const MAX_PASSES = 10;

export async function rotateMasterKey(options: RotationOptions): Promise<RotationReport> {
  if ((options.env ?? process.env).BULWARK_MASTER_KEY) {
    throw new KeyCustodyError(
      'The master key comes from BULWARK_MASTER_KEY: rotate-master works on DIR/keys/master.key. Move the key into that file (mode 0600), unset the variable, then rotate.',
      'keys.master_key_from_env',
    );
  }
  let staged: Staged;
  if (masterKeyOnToken(options.dataDir)) {
    if (!options.token)
      throw new ValidationError(
        'The master key is on a PKCS#11 token, and keys.pkcs11 is not configured: set keys.pkcs11.tokenLabel and the PIN variable, then rotate',
        {},
        'config.pkcs11_missing',
      );
    staged = stageTokenKey(options.dataDir, options.token);
  } else {
    staged = stageKeyFile(options.dataDir);
  }
  const { resumed, previousKeyId } = staged;
  options.box.refresh();
  const keyId = options.box.keyId;

  const rewrapped: Record<string, number> = {};
  const count = (name: string) => (rewrapped[name] = (rewrapped[name] ?? 0) + 1);
  // A server that sealed a value just before it saw the new key writes it under the old one:
  // passes repeat until one finds nothing left under an old key.
  for (let pass = 0; ; pass++) {
    if (pass === MAX_PASSES)
      throw new KeyCustodyError(
        `Values are still being sealed under the previous master key after ${MAX_PASSES} passes; run rotate-master again`,
        'keys.rotation_incomplete',
      );
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
    for (const file of filesToRewrap(options.dataDir)) {
      const next = options.box.rewrap(readSealedFile(file), file.context);
      if (next) {
        found++;
        writeSealedFileAtomic(file, next);
        count(file.path.slice(options.dataDir.length + 1));
      }
    }
    const configSecrets = rewrapConfigFile(options.dataDir, options.box);
    if (configSecrets) {
      found += configSecrets;
      rewrapped['config.json'] = (rewrapped['config.json'] ?? 0) + configSecrets;
    }
    if (found === 0) break;
  }

  await options.audit.record({
    organizationId: null,
    actor: { type: 'cli', id: options.actorId ?? process.env.USER ?? 'cli' },
    action: 'keys.master_rotated',
    target: { type: 'master_key', id: keyId },
    details: {
      previousKeyId,
      keyId,
      resumed,
      rewrapped,
      ...(staged.retiredTokenKeyLabel ? { retiredTokenKeyLabel: staged.retiredTokenKeyLabel } : {}),
    },
  });
  staged.finish();
  options.box.refresh();
  return {
    previousKeyId,
    keyId,
    resumed,
    rewrapped,
    ...(staged.retiredTokenKeyLabel ? { retiredTokenKeyLabel: staged.retiredTokenKeyLabel } : {}),
  };
}

/** The sealed files of DIR/pki, and the derivation secret when the master key is on the token. */
function filesToRewrap(dataDir: string): SealedFile[] {
  const derivation = derivationSecretFile(dataDir);
  return [...sealedFiles(dataDir), ...(existsSync(derivation.path) ? [derivation] : [])];
}
