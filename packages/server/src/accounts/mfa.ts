/**
 * TOTP second factor (RFC 6238, 30 s steps, SHA-1, 6 digits: what every authenticator app
 * speaks): enrolment with an otpauth URI, confirmation by a first code, ten single-use recovery
 * codes stored hashed, replay refusal (a time step is accepted once), disable and reset.
 * The secret is sealed under the master key with the user's ID as context.
 */
import { randomBytes } from 'node:crypto';
import { generateSecret, generateURI, verify as verifyTotp } from 'otplib';
import type { TotpEnrolment } from '@bulwark/protocol';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { ConflictError } from '../errors.js';
import type { SecretBox } from '../keys/master-key.js';
import { newId, sha256Hex } from '../tokens.js';
import { MfaInvalidError } from './errors.js';
import { auditActor, type Actor } from './roles.js';
import type { AccountsStore, UserRow } from './store.js';
import type { Executor } from '../storage/executor.js';

const RECOVERY_CODE_COUNT = 10;
const BASE32 = 'abcdefghijkmnpqrstuvwxyz23456789';

function newRecoveryCode(): string {
  const bytes = randomBytes(10);
  const chars = [...bytes].map((b) => BASE32[b % BASE32.length]).join('');
  return `${chars.slice(0, 5)}-${chars.slice(5)}`;
}

function normalizeRecoveryCode(code: string): string {
  const compact = code.trim().toLowerCase().replace(/[\s-]/g, '');
  return `${compact.slice(0, 5)}-${compact.slice(5)}`;
}

export class MfaService {
  constructor(
    private readonly store: AccountsStore,
    private readonly box: SecretBox,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  private secretContext(userId: string): string {
    return `user:${userId}:totp`;
  }

  async beginEnrollment(actor: Actor, issuer: string): Promise<TotpEnrolment> {
    const user = await this.store.userById(actor.userId);
    if (!user) throw new MfaInvalidError();
    if (user.mfa_enabled_at !== null)
      throw new ConflictError(
        'MFA is already enabled: disable it first to enrol a new authenticator',
        undefined,
        'auth.mfa_already_enabled',
      );
    const secret = generateSecret({ length: 20 });
    await this.store.updateUser(user.id, {
      mfa_secret: this.box.seal(secret, this.secretContext(user.id)),
      mfa_last_step: null,
      updated_at: this.clock.now(),
    });
    return { secret, otpauthUri: generateURI({ issuer, label: user.email, secret }) };
  }

  /** Confirms the pending secret with a first code; returns the recovery codes, shown this once. */
  async confirmEnrollment(actor: Actor, code: string, db: Executor): Promise<string[]> {
    const user = await this.store.userById(actor.userId, db);
    if (!user?.mfa_secret || user.mfa_enabled_at !== null) {
      throw new ConflictError(
        'There is no MFA enrolment in progress: start one with POST /api/v1/me/mfa/totp',
        undefined,
        'auth.mfa_not_enrolling',
      );
    }
    const step = await this.matchTotp(user, code);
    if (step === null) throw new MfaInvalidError();
    const now = this.clock.now();
    await this.store.updateUser(user.id, { mfa_enabled_at: now, mfa_last_step: step, updated_at: now }, db);
    const codes = await this.replaceRecoveryCodes(user.id, db);
    await this.audit.record(
      {
        organizationId: user.organization_id,
        actor: auditActor(actor),
        action: 'mfa.enabled',
        target: { type: 'user', id: user.id },
        sourceIp: actor.sourceIp,
      },
      db,
    );
    return codes;
  }

  async regenerateRecoveryCodes(actor: Actor, db: Executor): Promise<string[]> {
    const user = await this.store.userById(actor.userId, db);
    if (!user?.mfa_enabled_at) throw new ConflictError('MFA is not enabled', undefined, 'auth.mfa_not_enabled');
    const codes = await this.replaceRecoveryCodes(user.id, db);
    await this.audit.record(
      {
        organizationId: user.organization_id,
        actor: auditActor(actor),
        action: 'mfa.recovery_codes_regenerated',
        target: { type: 'user', id: user.id },
        sourceIp: actor.sourceIp,
      },
      db,
    );
    return codes;
  }

  private async replaceRecoveryCodes(userId: string, db: Executor): Promise<string[]> {
    await this.store.deleteRecoveryCodes(userId, db);
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    await this.store.insertRecoveryCodes(
      codes.map((c) => ({ id: newId(), user_id: userId, code_hash: sha256Hex(c), used_at: null })),
      db,
    );
    return codes;
  }

  /** Clears the factor (the user disabling it after step-up, or an admin resetting a lost device). */
  async clear(userId: string, db: Executor): Promise<void> {
    await this.store.deleteRecoveryCodes(userId, db);
    await this.store.updateUser(userId, { mfa_secret: null, mfa_enabled_at: null, mfa_last_step: null, updated_at: this.clock.now() }, db);
  }

  /**
   * Accepts a current TOTP code (one step of drift either way, each step once) or an unused
   * recovery code, which is then spent. Returns false for anything else.
   */
  async verifyFactor(user: UserRow, code: string, db: Executor): Promise<boolean> {
    if (!user.mfa_enabled_at || !user.mfa_secret) return false;
    const trimmed = code.trim();
    if (/^\d{6}$/.test(trimmed)) {
      const step = await this.matchTotp(user, trimmed);
      if (step === null || (user.mfa_last_step !== null && step <= user.mfa_last_step)) return false;
      return this.store.advanceMfaStep(user.id, step, db);
    }
    return this.store.spendRecoveryCode(user.id, sha256Hex(normalizeRecoveryCode(trimmed)), this.clock.now(), db);
  }

  /** The time step a code matches, or null. */
  private async matchTotp(user: UserRow, code: string): Promise<number | null> {
    if (!user.mfa_secret || !/^\d{6}$/.test(code.trim())) return null;
    const secret = this.box.openText(user.mfa_secret, this.secretContext(user.id));
    const epoch = Math.floor(this.clock.now() / 1000);
    const result = await verifyTotp({ secret, token: code.trim(), epoch, epochTolerance: 30 });
    return result.valid ? Math.floor(epoch / 30) + result.delta : null;
  }

  async remainingRecoveryCodes(userId: string): Promise<number> {
    return this.store.unusedRecoveryCodes(userId);
  }
}
