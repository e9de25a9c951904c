/**
 * The online signing keys' table (signing_keys) through Kysely: the current and the staged key of
 * a purpose, inserts, the activation's retire-and-move, and the row a verifier opens. Every method
 * takes the executor so a caller's transaction is used throughout (SQLite has one connection).
 */
import type { SigningKeysTable } from '../storage/schema.js';
import type { Executor } from '../storage/executor.js';

export class SigningKeyStore {
  constructor(readonly db: Executor) {}

  /** The newest unretired key stored under the purpose (as stored: a staged key's purpose carries its prefix). */
  newest(purpose: string, db: Executor = this.db): Promise<SigningKeysTable | undefined> {
    return db
      .selectFrom('signing_keys')
      .selectAll()
      .where('purpose', '=', purpose)
      .where('retired_at', 'is', null)
      .orderBy('created_at', 'desc')
      .executeTakeFirst();
  }

  async insert(row: SigningKeysTable, db: Executor = this.db): Promise<void> {
    await db.insertInto('signing_keys').values(row).execute();
  }

  /** Retires every unretired key of the purpose; returns their IDs. */
  async retireAll(purpose: string, at: number, db: Executor = this.db): Promise<string[]> {
    const retired = await db
      .selectFrom('signing_keys')
      .select('id')
      .where('purpose', '=', purpose)
      .where('retired_at', 'is', null)
      .execute();
    await db.updateTable('signing_keys').set({ retired_at: at }).where('purpose', '=', purpose).where('retired_at', 'is', null).execute();
    return retired.map((r) => r.id);
  }

  /** Moves the unretired key `id` from purpose `from` to `to`; whether it moved. */
  async movePurpose(id: string, from: string, to: string, db: Executor = this.db): Promise<boolean> {
    const moved = await db
      .updateTable('signing_keys')
      .set({ purpose: to })
      .where('id', '=', id)
      .where('purpose', '=', from)
      .where('retired_at', 'is', null)
      .executeTakeFirst();
    return Number(moved.numUpdatedRows) === 1;
  }

  /** The ID of the unretired key stored under the purpose, if any. */
  async unretiredId(purpose: string, db: Executor = this.db): Promise<string | undefined> {
    const row = await db
      .selectFrom('signing_keys')
      .select('id')
      .where('purpose', '=', purpose)
      .where('retired_at', 'is', null)
      .executeTakeFirst();
    return row?.id;
  }

  async retire(id: string, at: number, db: Executor = this.db): Promise<void> {
    await db.updateTable('signing_keys').set({ retired_at: at }).where('id', '=', id).execute();
  }

  /** The sealed (or token-held) private half of any key ever stored, retired ones included. */
  privateKeyOf(id: string, db: Executor = this.db): Promise<Pick<SigningKeysTable, 'id' | 'private_key'> | undefined> {
    return db.selectFrom('signing_keys').select(['id', 'private_key']).where('id', '=', id).executeTakeFirst();
  }
}
