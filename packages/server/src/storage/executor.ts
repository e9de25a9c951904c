/**
 * What every store method runs its queries on: the database handle or an open transaction (a
 * Kysely transaction is a Kysely), so a service can pass one transaction to several stores.
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export type Executor = Kysely<Database>;
