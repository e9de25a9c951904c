/**
 * The TUF image repository of each organization: root and targets signed offline, snapshot and
 * timestamp signed by online keys and refreshed before they expire. Owner: repository helper (skeleton).
 */
import type { Kysely } from 'kysely';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import type { SigningKeys } from '../keys/signing-keys.js';
import type { Database } from '../storage/schema.js';

export class TufRepository {
  constructor(
    readonly db: Kysely<Database>,
    readonly signingKeys: SigningKeys,
    readonly audit: AuditService,
    readonly clock: Clock,
    readonly options: { timestampExpirySeconds: number; snapshotExpirySeconds: number },
  ) {}

  /** Re-signs snapshot and timestamp metadata that nears expiry (every organization). */
  async refresh(): Promise<void> {}

  /** The organization's current director root metadata (signed JSON as uploaded), or null before the ceremony. */
  async directorRoot(_organizationId: string): Promise<Record<string, unknown> | null> {
    throw new Error('not implemented');
  }
}
