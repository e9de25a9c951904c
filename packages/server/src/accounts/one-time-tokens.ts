/**
 * Single-use tokens for links sent by email (password reset, email verification, invitation,
 * email change). Only the SHA-256 digest is stored; consuming is one atomic UPDATE, so a token
 * works once even under concurrent use; a newer token of the same purpose voids older ones;
 * every token expires.
 */
import type { Selectable } from 'kysely';
import type { Clock } from '../clock.js';
import type { OneTimeTokensTable } from '../storage/schema.js';
import { newId, newSecret, sha256Hex } from '../tokens.js';
import { InvalidTokenError } from './errors.js';
import type { Executor } from './store.js';

export type OneTimeTokenRow = Selectable<OneTimeTokensTable>;

/** What a one-time token is for: a token issued for one purpose is never accepted for another. */
export type OneTimeTokenPurpose = OneTimeTokensTable['purpose'];

export const ONE_TIME_TOKEN_PREFIX = 'bwt';

const WHAT: Record<OneTimeTokenPurpose, string> = {
  password_reset: 'password reset',
  email_verify: 'email verification',
  invitation: 'invitation',
  email_change: 'email change',
  device_enrollment: 'device enrollment',
  manufacturer_ca_proof: 'manufacturer CA proof of possession',
};

export interface IssueTokenInput {
  purpose: OneTimeTokenPurpose;
  organizationId: string;
  userId: string | null;
  email: string;
  payload?: Record<string, unknown>;
  ttlMs: number;
}

export class OneTimeTokens {
  constructor(
    private readonly db: Executor,
    private readonly clock: Clock,
  ) {}

  /** Issues a token, voiding every earlier unused one of the same purpose for the same user (or email). */
  async issue(input: IssueTokenInput, db: Executor = this.db): Promise<string> {
    const now = this.clock.now();
    let earlier = db
      .updateTable('one_time_tokens')
      .set({ revoked_at: now })
      .where('purpose', '=', input.purpose)
      .where('organization_id', '=', input.organizationId)
      .where('used_at', 'is', null)
      .where('revoked_at', 'is', null);
    earlier = input.userId ? earlier.where('user_id', '=', input.userId) : earlier.where('email', '=', input.email);
    await earlier.execute();
    const token = newSecret(ONE_TIME_TOKEN_PREFIX);
    await db
      .insertInto('one_time_tokens')
      .values({
        id: newId(),
        token_hash: sha256Hex(token),
        purpose: input.purpose,
        organization_id: input.organizationId,
        user_id: input.userId,
        email: input.email,
        payload: JSON.stringify(input.payload ?? {}),
        created_at: now,
        expires_at: now + input.ttlMs,
        used_at: null,
        revoked_at: null,
      })
      .execute();
    return token;
  }

  /** Spends a token, or throws InvalidTokenError if it is unknown, used, voided or expired. */
  async consume(purpose: OneTimeTokenPurpose, token: string, db: Executor = this.db): Promise<OneTimeTokenRow> {
    const now = this.clock.now();
    const row = await db
      .updateTable('one_time_tokens')
      .set({ used_at: now })
      .where('token_hash', '=', sha256Hex(token))
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new InvalidTokenError(WHAT[purpose]);
    return row;
  }

  /** When the user's tokens of one purpose issued since `since` were issued, newest first (used, voided or not). */
  async issuedSince(userId: string, purpose: OneTimeTokenPurpose, since: number, db: Executor = this.db): Promise<number[]> {
    const rows = await db
      .selectFrom('one_time_tokens')
      .select('created_at')
      .where('user_id', '=', userId)
      .where('purpose', '=', purpose)
      .where('created_at', '>', since)
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map((r) => Number(r.created_at));
  }

  /** Voids a user's unused tokens of one purpose (a password change voids pending resets). */
  async revokeAll(userId: string, purpose: OneTimeTokenPurpose, db: Executor = this.db): Promise<void> {
    await db
      .updateTable('one_time_tokens')
      .set({ revoked_at: this.clock.now() })
      .where('user_id', '=', userId)
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .where('revoked_at', 'is', null)
      .execute();
  }
}
