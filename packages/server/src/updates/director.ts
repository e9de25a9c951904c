/**
 * The director (Uptane): per-device targets metadata signed by an online key, naming the exact
 * image a device must install for the rollout it is in. Owner: director/rollouts helper (skeleton).
 */
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import type { SigningKeys } from '../keys/signing-keys.js';
import type { Database } from '../storage/schema.js';
import type { TufRepository } from './repository.js';

export class Director {
  constructor(
    readonly db: Kysely<Database>,
    readonly signingKeys: SigningKeys,
    readonly repository: TufRepository,
    readonly clock: Clock,
    readonly options: { expirySeconds: number },
  ) {}
}
