/**
 * Every place a value sealed under the master key is kept: database columns and files in the
 * data directory. Master-key rotation walks this list, so a new sealed column or file is added here.
 */
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';

export interface SealedRow {
  id: string;
  sealed: string;
}

export interface SealedColumn {
  name: string;
  context(id: string): string;
  /** Rows after `after` (by id) whose value is not yet under KEK `keyId`. */
  page(db: Kysely<Database>, keyId: string, after: string, limit: number): Promise<SealedRow[]>;
  /** Replaces the value only if it is still `expected` (a concurrent change wins); true if replaced. */
  replace(db: Kysely<Database>, row: SealedRow, sealed: string): Promise<boolean>;
}

const notUnder = (keyId: string) => `v2.${keyId}.%`;

export const SEALED_COLUMNS: SealedColumn[] = [
  {
    name: 'users.mfa_secret',
    context: (id) => `user:${id}:totp`,
    page: async (db, keyId, after, limit) =>
      (
        await db
          .selectFrom('users')
          .select(['id', 'mfa_secret'])
          .where('id', '>', after)
          .where('mfa_secret', 'is not', null)
          .where('mfa_secret', 'not like', notUnder(keyId))
          .orderBy('id')
          .limit(limit)
          .execute()
      ).map((r) => ({ id: r.id, sealed: r.mfa_secret! })),
    replace: async (db, row, sealed) =>
      Number(
        (
          await db
            .updateTable('users')
            .set({ mfa_secret: sealed })
            .where('id', '=', row.id)
            .where('mfa_secret', '=', row.sealed)
            .executeTakeFirst()
        ).numUpdatedRows,
      ) === 1,
  },
  {
    name: 'signing_keys.private_key',
    context: (id) => `signing-key:${id}`,
    page: async (db, keyId, after, limit) =>
      (
        await db
          .selectFrom('signing_keys')
          .select(['id', 'private_key'])
          .where('id', '>', after)
          .where('private_key', 'not like', notUnder(keyId))
          .orderBy('id')
          .limit(limit)
          .execute()
      ).map((r) => ({ id: r.id, sealed: r.private_key })),
    replace: async (db, row, sealed) =>
      Number(
        (
          await db
            .updateTable('signing_keys')
            .set({ private_key: sealed })
            .where('id', '=', row.id)
            .where('private_key', '=', row.sealed)
            .executeTakeFirst()
        ).numUpdatedRows,
      ) === 1,
  },
  {
    name: 'device_symmetric_keys.sealed_key',
    // The row id is `<device id>:<version>`.
    context: (id) => `device:${id.slice(0, id.lastIndexOf(':'))}:symmetric-key:${id.slice(id.lastIndexOf(':') + 1)}`,
    page: async (db, keyId, after, limit) =>
      (
        await db
          .selectFrom('device_symmetric_keys')
          .select(['id', 'sealed_key'])
          .where('id', '>', after)
          .where('sealed_key', 'not like', notUnder(keyId))
          .orderBy('id')
          .limit(limit)
          .execute()
      ).map((r) => ({ id: r.id, sealed: r.sealed_key })),
    replace: async (db, row, sealed) =>
      Number(
        (
          await db
            .updateTable('device_symmetric_keys')
            .set({ sealed_key: sealed })
            .where('id', '=', row.id)
            .where('sealed_key', '=', row.sealed)
            .executeTakeFirst()
        ).numUpdatedRows,
      ) === 1,
  },
  {
    name: 'enrollment_groups.sealed_key',
    context: (id) => `enrollment-group:${id}`,
    page: async (db, keyId, after, limit) =>
      (
        await db
          .selectFrom('enrollment_groups')
          .select(['id', 'sealed_key'])
          .where('id', '>', after)
          .where('sealed_key', 'not like', notUnder(keyId))
          .orderBy('id')
          .limit(limit)
          .execute()
      ).map((r) => ({ id: r.id, sealed: r.sealed_key })),
    replace: async (db, row, sealed) =>
      Number(
        (
          await db
            .updateTable('enrollment_groups')
            .set({ sealed_key: sealed })
            .where('id', '=', row.id)
            .where('sealed_key', '=', row.sealed)
            .executeTakeFirst()
        ).numUpdatedRows,
      ) === 1,
  },
];

export interface SealedFile {
  path: string;
  context: string;
}

/**
 * The sealed key files in DIR/pki. The convention (pki/ca.ts): `NAME.key.sealed` is sealed with
 * the context `pki:NAME`.
 */
export function sealedFiles(dataDir: string): SealedFile[] {
  const dir = join(dataDir, 'pki');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.key.sealed'))
    .sort()
    .map((name) => ({ path: join(dir, name), context: `pki:${name.slice(0, -'.key.sealed'.length)}` }));
}

export function readSealedFile(file: SealedFile): string {
  return readFileSync(file.path, 'utf8').trim();
}

/** Temporary file and rename: a reader sees the old sealed key or the new one, never half of one. */
export function writeSealedFileAtomic(file: SealedFile, sealed: string): void {
  const temp = `${file.path}.tmp-${process.pid}`;
  writeFileSync(temp, sealed, { mode: 0o600 });
  renameSync(temp, file.path);
}
