/**
 * Every database column holding a value sealed under the master key, and its two statements (a
 * page of rows not yet under a key, a compare-and-set replace). Master-key rotation walks this
 * list, so a new sealed column is added here; the sealed files are in sealed-values.ts.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export interface SealedRow {
  id: string;
  sealed: string;
}

export interface SealedColumn {
  name: string;
  context(id: string): string;
  /** Rows after `after` (by id) whose value is not yet under KEK `keyId`. */
  page(db: Executor, keyId: string, after: string, limit: number): Promise<SealedRow[]>;
  /** Replaces the value only if it is still `expected` (a concurrent change wins); true if replaced. */
  replace(db: Executor, row: SealedRow, sealed: string): Promise<boolean>;
}

const notUnder = (keyId: string) => `v2.${keyId}.%`;

/** Tables as the sealed columns see them: keyed by a text `id`, the column text (or null). */
type SealedTables = Record<string, { id: string } & Record<string, string | null>>;

/**
 * A sealed column of a table keyed by `id`: the same two statements for every table. Rows whose
 * value is null or names a key held on a PKCS#11 token (`pkcs11:<label>`, never sealed) are not
 * the master key's to rotate.
 */
function sealedColumn(table: keyof Database & string, column: string, context: (id: string) => string): SealedColumn {
  return {
    name: `${table}.${column}`,
    context,
    page: async (db, keyId, after, limit) =>
      (
        await (db as unknown as Kysely<SealedTables>)
          .selectFrom(table)
          .select(['id', column])
          .where('id', '>', after)
          .where(column, 'is not', null)
          .where(column, 'not like', notUnder(keyId))
          .where(column, 'not like', 'pkcs11:%')
          .orderBy('id')
          .limit(limit)
          .execute()
      ).map((r) => ({ id: String(r.id), sealed: String(r[column]) })),
    replace: async (db, row, sealed) =>
      Number(
        (
          await (db as unknown as Kysely<SealedTables>)
            .updateTable(table)
            .set({ [column]: sealed })
            .where('id', '=', row.id)
            .where(column, '=', row.sealed)
            .executeTakeFirst()
        ).numUpdatedRows,
      ) === 1,
  };
}

export const SEALED_COLUMNS: SealedColumn[] = [
  sealedColumn('users', 'mfa_secret', (id) => `user:${id}:totp`),
  sealedColumn('signing_keys', 'private_key', (id) => `signing-key:${id}`),
  // The row id is `<device id>:<version>`.
  sealedColumn(
    'device_symmetric_keys',
    'sealed_key',
    (id) => `device:${id.slice(0, id.lastIndexOf(':'))}:symmetric-key:${id.slice(id.lastIndexOf(':') + 1)}`,
  ),
  sealedColumn('enrollment_groups', 'sealed_key', (id) => `enrollment-group:${id}`),
  sealedColumn('app_signing_keys', 'private_key', (id) => `app-signing-key:${id}`),
  sealedColumn('sso_configs', 'client_secret', (id) => `sso-config:${id}:client-secret`),
];
