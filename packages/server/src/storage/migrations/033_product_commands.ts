/**
 * Products declare the commands their devices take (`products.commands`: a JSON array of
 * `{ name, description, params: [{ name, type, required, description }] }`), so the console offers
 * them with their parameters and the platform refuses a command or a parameter the product does
 * not declare. NULL: none declared, and any well-formed command is sent as before.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('products').addColumn('commands', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('products').dropColumn('commands').execute();
}
