/**
 * Single-use tokens for links sent by email (password reset, email verification, invitation,
 * email change). Only the SHA-256 digest is stored; consuming is one atomic UPDATE, so a token
 * works once even under concurrent use; a newer token of the same purpose voids older ones;
 * every token expires. The queries live in accounts/one-time-token-store.ts.
 */
import type { Clock } from '../clock.js';
import type { OneTimeTokensTable } from '../storage/schema.js';
import { newId, newSecret, sha256Hex } from '../tokens.js';
import { InvalidTokenError } from './errors.js';
import type { OneTimeTokenRow, OneTimeTokenStore } from './one-time-token-store.js';
import type { Executor } from '../storage/executor.js';

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
    private readonly store: OneTimeTokenStore,
    private readonly clock: Clock,
  ) {}

  /** Issues a token, voiding every earlier unused one of the same purpose for the same user (or email). */
  async issue(input: IssueTokenInput, db: Executor = this.store.db): Promise<string> {
    const now = this.clock.now();
    await this.store.revokeEarlier(input.purpose, input.organizationId, input, now, db);
    const token = newSecret(ONE_TIME_TOKEN_PREFIX);
    await this.store.insert(
      {
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
      },
      db,
    );
    return token;
  }

  /** Spends a token, or throws InvalidTokenError if it is unknown, used, voided or expired. */
  async consume(purpose: OneTimeTokenPurpose, token: string, db: Executor = this.store.db): Promise<OneTimeTokenRow> {
    const row = await this.store.markUsed(purpose, sha256Hex(token), this.clock.now(), db);
    if (!row) throw new InvalidTokenError(WHAT[purpose]);
    return row;
  }

  /** The row of a token just issued (its ID, payload and expiry). */
  rowOf(token: string, db: Executor = this.store.db): Promise<OneTimeTokenRow> {
    return this.store.byHash(sha256Hex(token), db);
  }

  /** The organization's usable tokens of one purpose (unused, not voided, unexpired), newest first; only `id` when given. */
  usable(organizationId: string, purpose: OneTimeTokenPurpose, id?: string): Promise<OneTimeTokenRow[]> {
    return this.store.usable(organizationId, purpose, this.clock.now(), id);
  }

  /** Voids one unused token (a withdrawn invitation); false when it was used or voided already. */
  revoke(id: string, db: Executor = this.store.db): Promise<boolean> {
    return this.store.revokeUnused(id, this.clock.now(), db);
  }

  /** When the user's tokens of one purpose issued since `since` were issued, newest first (used, voided or not). */
  issuedSince(userId: string, purpose: OneTimeTokenPurpose, since: number, db: Executor = this.store.db): Promise<number[]> {
    return this.store.createdSince(userId, purpose, since, db);
  }

  /** Deletes every token of the user, whatever its purpose (the account is deleted); in the caller's transaction. */
  async deleteOfUser(userId: string, db: Executor): Promise<void> {
    await this.store.deleteOfUser(userId, db);
  }

  /** Voids a user's unused tokens of one purpose (a password change voids pending resets). */
  async revokeAll(userId: string, purpose: OneTimeTokenPurpose, db: Executor = this.store.db): Promise<void> {
    await this.store.revokeAllOfUser(userId, purpose, this.clock.now(), db);
  }
}
