/**
 * Passkeys (WebAuthn Level 2 through @simplewebauthn/server): registering a credential for a
 * signed-in user, listing, renaming and removing one's own, and the assertion checks every
 * passkey sign-in shares (passwordless, second factor, step-up). Challenges are stored as
 * digests, taken once, short-lived and bound to the session that asked (or, before any session
 * exists, to a ceremony secret the caller holds). User verification is always required, so a
 * passkey proves possession and a PIN or biometric at once. Sessions are LoginService's.
 */
import { createHmac } from 'node:crypto';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { ErrorCodes, type PasskeyView } from '@bulwark/protocol';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { ConflictError, NotFoundError, ValidationError } from '../errors.js';
import type { Config } from '../ops/config.js';
import { newId, newSecret, sha256Hex } from '../tokens.js';
import { PasskeyChallengeError, PasskeyRefusal } from './errors.js';
import type { PasskeyChallengeRow, PasskeyRow, PasskeyStore } from './passkey-store.js';
import { auditActor, type Actor } from './roles.js';
import type { AccountsStore, OrganizationRow, UserRow } from './store.js';
import type { Executor } from '../storage/executor.js';

/** COSE algorithms accepted: ES256, EdDSA, RS256 (what platform authenticators and security keys make). */
const ALGORITHMS = [-7, -8, -257];
const CEREMONY_PREFIX = 'bwc';

/** Who the credentials are for: the RP ID authenticators scope them to, and the origins whose responses count. */
export interface RelyingParty {
  id: string;
  name: string;
  origins: string[];
}

/**
 * The relying party from config: `passkeys.origins`, else the public origin (http.publicUrl, or
 * the address this node listens on); `passkeys.rpId`, else the first origin's host name.
 */
export function relyingParty(config: Config['passkeys'], publicOrigin: string): RelyingParty {
  const url = new URL(publicOrigin);
  // An IP address is no RP ID to a browser: a node with no public URL, reached on its loopback address, is `localhost`.
  if (url.hostname === '127.0.0.1' || url.hostname === '[::1]') url.hostname = 'localhost';
  const origins = config.origins ?? [url.origin];
  return { id: config.rpId ?? new URL(origins[0]!).hostname, name: config.rpName, origins };
}

export function passkeyRequiredFor(org: OrganizationRow, user: UserRow): boolean {
  // Operators who sign in through single sign-on (no password) take their phishing resistance from the identity provider.
  return (
    user.kind === 'operator' &&
    user.role !== null &&
    user.password_hash !== null &&
    (JSON.parse(org.passkey_required_roles) as string[]).includes(user.role)
  );
}

/** A passkey as the API lists it: a wire shape the console reads too (@bulwark/protocol). */
export type { PasskeyView };

function toView(row: PasskeyRow): PasskeyView {
  return {
    id: row.id,
    name: row.name,
    credentialId: row.credential_id,
    transports: JSON.parse(row.transports) as string[],
    deviceType: row.device_type,
    backedUp: row.backed_up === 1,
    createdAt: new Date(row.created_at).toISOString(),
    lastUsedAt: row.last_used_at === null ? null : new Date(row.last_used_at).toISOString(),
  };
}

/** Where an assertion's challenge must come from. */
export type AssertionBinding =
  { purpose: 'authentication'; ceremony: string | undefined } | { purpose: 'mfa' | 'step_up'; sessionId: string; userId: string };

/** A verified assertion: whose credential, and the counter it moved to. */
export interface VerifiedAssertion {
  credential: PasskeyRow;
  user: UserRow;
}

/** The challenge in a response's clientDataJSON, or null when it cannot be read. */
function challengeOf(clientDataJSON: string): string | null {
  try {
    const parsed = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8')) as { challenge?: unknown };
    return typeof parsed.challenge === 'string' && parsed.challenge.length <= 512 ? parsed.challenge : null;
  } catch {
    return null;
  }
}

export class PasskeyService {
  constructor(
    private readonly store: PasskeyStore,
    private readonly accounts: AccountsStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly config: Config['passkeys'],
    /** Derives the WebAuthn user handle from a user ID, so handles carry no personal data and need no column. */
    private readonly handleKey: Buffer,
  ) {}

  userHandle(userId: string): string {
    return createHmac('sha256', this.handleKey).update(`webauthn-user:${userId}`).digest('base64url');
  }

  async count(userId: string, db: Executor = this.store.db): Promise<number> {
    return this.store.countOfUser(userId, db);
  }

  /** The users of an organization who hold a passkey (the security report's factor column). */
  holders(organizationId: string): Promise<Set<string>> {
    return this.store.holders(organizationId);
  }

  async list(actor: Actor): Promise<PasskeyView[]> {
    return (await this.store.ofUser(actor.userId)).map(toView);
  }

  /** Creation options for the actor's next passkey; the challenge is bound to this session. */
  async registrationOptions(actor: Actor, sessionId: string, rp: RelyingParty): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const user = await this.accounts.userById(actor.userId);
    if (!user) throw new NotFoundError('User');
    const existing = await this.store.ofUser(user.id);
    if (existing.length >= this.config.maxPerUser) throw this.limitReached();
    const options = await generateRegistrationOptions({
      rpName: rp.name,
      rpID: rp.id,
      userName: user.email,
      userDisplayName: user.name,
      userID: Buffer.from(this.userHandle(user.id), 'base64url'),
      attestationType: 'none',
      timeout: this.config.challengeSeconds * 1000,
      excludeCredentials: existing.map((c) => ({ id: c.credential_id, transports: JSON.parse(c.transports) as string[] })),
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
      supportedAlgorithmIDs: ALGORITHMS,
    });
    await this.saveChallenge(options.challenge, { purpose: 'registration', userId: user.id, sessionId });
    return options;
  }

  /** Verifies a registration response for the actor and stores the credential; audited either way. */
  async register(
    actor: Actor,
    sessionId: string,
    rp: RelyingParty,
    response: RegistrationResponseJSON,
    name: string | undefined,
  ): Promise<PasskeyView> {
    const refuse = async (reason: string, details: Record<string, unknown> = {}) => {
      await this.audit.record({
        organizationId: actor.organizationId,
        actor: auditActor(actor),
        action: 'passkey.registered',
        outcome: 'failure',
        target: { type: 'user', id: actor.userId },
        sourceIp: actor.sourceIp,
        details: { reason, ...details },
      });
    };
    const challenge = await this.takeChallenge(response.response.clientDataJSON);
    if (!challenge || challenge.purpose !== 'registration' || challenge.session_id !== sessionId || challenge.user_id !== actor.userId) {
      await refuse('challenge_invalid');
      throw new PasskeyChallengeError();
    }
    let info;
    try {
      const verified = await verifyRegistrationResponse({
        response,
        expectedChallenge: (c) => sha256Hex(c) === challenge.challenge_hash,
        expectedOrigin: rp.origins,
        expectedRPID: rp.id,
        requireUserVerification: true,
        supportedAlgorithmIDs: ALGORITHMS,
      });
      if (!verified.verified) throw new Error('registration did not verify');
      info = verified.registrationInfo;
    } catch (error) {
      await refuse('verification_failed', { error: (error as Error).message.slice(0, 200) });
      throw new ValidationError(
        `The passkey registration was refused: ${(error as Error).message.slice(0, 200)}`,
        undefined,
        ErrorCodes.passkeyRegistrationInvalid,
      );
    }
    const now = this.clock.now();
    const row: PasskeyRow = {
      id: newId(),
      organization_id: actor.organizationId,
      user_id: actor.userId,
      credential_id: info.credential.id,
      public_key: Buffer.from(info.credential.publicKey).toString('base64url'),
      counter: info.credential.counter,
      transports: JSON.stringify((response.response.transports ?? []).slice(0, 8)),
      device_type: info.credentialDeviceType,
      backed_up: info.credentialBackedUp ? 1 : 0,
      aaguid: info.aaguid,
      name: name?.trim() || 'Passkey',
      created_at: now,
      last_used_at: null,
    };
    return this.store.db.transaction().execute(async (trx) => {
      await this.accounts.lockUser(actor.userId, trx);
      if ((await this.store.countOfUser(actor.userId, trx)) >= this.config.maxPerUser) throw this.limitReached();
      if (await this.store.byCredentialId(row.credential_id, trx))
        throw new ConflictError('This authenticator is registered already', undefined, ErrorCodes.passkeyExists);
      await this.store.insertCredential(row, trx);
      await this.audit.record(
        {
          organizationId: actor.organizationId,
          actor: auditActor(actor),
          action: 'passkey.registered',
          target: { type: 'passkey', id: row.id },
          sourceIp: actor.sourceIp,
          details: { name: row.name, aaguid: row.aaguid, deviceType: row.device_type, backedUp: row.backed_up === 1 },
        },
        trx,
      );
      return toView(row);
    });
  }

  async rename(actor: Actor, id: string, name: string): Promise<PasskeyView> {
    const trimmed = name.trim();
    if (!trimmed) throw new ValidationError('name must not be empty', { field: 'name' });
    const row = await this.store.ofUserById(actor.userId, id);
    if (!row) throw new NotFoundError('Passkey');
    await this.store.db.transaction().execute(async (trx) => {
      await this.store.rename(id, trimmed, trx);
      await this.audit.record(
        {
          organizationId: actor.organizationId,
          actor: auditActor(actor),
          action: 'passkey.renamed',
          target: { type: 'passkey', id },
          sourceIp: actor.sourceIp,
          details: { name: trimmed, previous: row.name },
        },
        trx,
      );
    });
    return toView({ ...row, name: trimmed });
  }

  /**
   * Removes one of the actor's passkeys. Refused when the organization's policy needs what it
   * leaves behind: the last passkey of a role that must use one, or the last second factor of a
   * role that must use MFA.
   */
  async remove(actor: Actor, id: string): Promise<void> {
    await this.store.db.transaction().execute(async (trx) => {
      await this.accounts.lockUser(actor.userId, trx);
      const row = await this.store.ofUserById(actor.userId, id, trx);
      if (!row) throw new NotFoundError('Passkey');
      const user = await this.accounts.userById(actor.userId, trx);
      const org = await this.accounts.organizationById(actor.organizationId, trx);
      const left = (await this.store.countOfUser(actor.userId, trx)) - 1;
      if (user && org && left === 0) {
        if (passkeyRequiredFor(org, user))
          throw new ConflictError(
            `Your organization requires a passkey for the ${user.role} role: register another before removing this one`,
            undefined,
            ErrorCodes.passkeyRequiredByPolicy,
          );
        const mfaRoles = JSON.parse(org.mfa_required_roles) as string[];
        if (user.kind === 'operator' && user.role && mfaRoles.includes(user.role) && user.mfa_enabled_at === null)
          throw new ConflictError(
            `Your organization requires a second factor for the ${user.role} role: enrol TOTP or another passkey first`,
            undefined,
            ErrorCodes.mfaRequiredByPolicy,
          );
      }
      await this.store.delete(id, trx);
      await this.audit.record(
        {
          organizationId: actor.organizationId,
          actor: auditActor(actor),
          action: 'passkey.removed',
          target: { type: 'passkey', id },
          sourceIp: actor.sourceIp,
          details: { name: row.name },
        },
        trx,
      );
    });
  }

  /** Removes every passkey of a user (an administrator's MFA reset); in the caller's transaction. */
  clear(userId: string, db: Executor): Promise<number> {
    return this.store.deleteOfUser(userId, db);
  }

  /**
   * Request options for an assertion. Passwordless sign-in names no credential (the authenticator
   * offers its discoverable ones), so the answer is the same whoever asks; it returns the ceremony
   * secret the verification must present. The second factor and step-up list the user's own.
   */
  async assertionOptions(
    binding: { purpose: 'authentication' } | { purpose: 'mfa' | 'step_up'; sessionId: string; userId: string },
    rp: RelyingParty,
  ): Promise<{ options: PublicKeyCredentialRequestOptionsJSON; ceremony: string | null }> {
    const allow = binding.purpose === 'authentication' ? [] : await this.store.ofUser(binding.userId);
    const options = await generateAuthenticationOptions({
      rpID: rp.id,
      timeout: this.config.challengeSeconds * 1000,
      userVerification: 'required',
      allowCredentials: allow.map((c) => ({ id: c.credential_id, transports: JSON.parse(c.transports) as string[] })),
    });
    if (binding.purpose === 'authentication') {
      const ceremony = newSecret(CEREMONY_PREFIX);
      await this.saveChallenge(options.challenge, { purpose: 'authentication', bindingHash: sha256Hex(ceremony) });
      return { options, ceremony };
    }
    await this.saveChallenge(options.challenge, { purpose: binding.purpose, userId: binding.userId, sessionId: binding.sessionId });
    return { options, ceremony: null };
  }

  /**
   * Verifies an assertion against its stored challenge and the credential's public key, then moves
   * the signature counter forward. Throws PasskeyRefusal (with the reason and, once the credential
   * is known, its user) for the caller to audit and count; the caller answers generically.
   */
  async verifyAssertion(response: AuthenticationResponseJSON, binding: AssertionBinding, rp: RelyingParty): Promise<VerifiedAssertion> {
    const challenge = await this.takeChallenge(response.response.clientDataJSON);
    const bound =
      challenge !== undefined &&
      challenge.purpose === binding.purpose &&
      (binding.purpose === 'authentication'
        ? binding.ceremony !== undefined && challenge.binding_hash === sha256Hex(binding.ceremony)
        : challenge.session_id === binding.sessionId && challenge.user_id === binding.userId);
    if (!bound) throw new PasskeyRefusal('challenge_invalid', binding.purpose === 'authentication' ? null : binding.userId);
    const credential = await this.store.byCredentialId(response.id);
    if (!credential) throw new PasskeyRefusal('unknown_credential', binding.purpose === 'authentication' ? null : binding.userId);
    if (binding.purpose !== 'authentication' && credential.user_id !== binding.userId)
      throw new PasskeyRefusal('credential_of_another_user', binding.userId, { credentialOwner: credential.user_id });
    const user = await this.accounts.userById(credential.user_id);
    if (!user) throw new PasskeyRefusal('unknown_credential', null);
    const handle = response.response.userHandle;
    if (handle !== undefined && handle !== this.userHandle(user.id)) throw new PasskeyRefusal('user_handle_mismatch', user.id);
    let newCounter: number;
    try {
      // The stored counter is checked below, after the signature: only a valid signature may prove a clone.
      const verified = await verifyAuthenticationResponse({
        response,
        expectedChallenge: (c) => sha256Hex(c) === challenge!.challenge_hash,
        expectedOrigin: rp.origins,
        expectedRPID: rp.id,
        requireUserVerification: true,
        credential: {
          id: credential.credential_id,
          publicKey: Buffer.from(credential.public_key, 'base64url'),
          counter: 0,
        },
      });
      if (!verified.verified) throw new Error('signature did not verify');
      newCounter = verified.authenticationInfo.newCounter;
    } catch (error) {
      throw new PasskeyRefusal('verification_failed', user.id, {
        credential: credential.id,
        error: (error as Error).message.slice(0, 200),
      });
    }
    if ((newCounter > 0 || credential.counter > 0) && newCounter <= credential.counter)
      throw new PasskeyRefusal('counter_regression', user.id, {
        credential: credential.id,
        stored: credential.counter,
        presented: newCounter,
      });
    if (!(await this.store.advanceCounter(credential.id, credential.counter, newCounter, this.clock.now())))
      throw new PasskeyRefusal('counter_raced', user.id, { credential: credential.id });
    return { credential: { ...credential, counter: newCounter }, user };
  }

  private async saveChallenge(
    challenge: string,
    bound: { purpose: PasskeyChallengeRow['purpose']; userId?: string; sessionId?: string; bindingHash?: string },
  ): Promise<void> {
    const now = this.clock.now();
    // Expired challenges go as new ones come: the table holds at most a few minutes of ceremonies.
    await this.store.deleteExpiredChallenges(now);
    await this.store.insertChallenge({
      id: newId(),
      challenge_hash: sha256Hex(challenge),
      purpose: bound.purpose,
      user_id: bound.userId ?? null,
      session_id: bound.sessionId ?? null,
      binding_hash: bound.bindingHash ?? null,
      created_at: now,
      expires_at: now + this.config.challengeSeconds * 1000,
    });
  }

  /** Takes (deletes) the response's challenge: a live one, once. */
  private async takeChallenge(clientDataJSON: string): Promise<PasskeyChallengeRow | undefined> {
    const challenge = challengeOf(clientDataJSON);
    if (challenge === null) return undefined;
    const row = await this.store.takeChallenge(sha256Hex(challenge));
    return row && row.expires_at > this.clock.now() ? row : undefined;
  }

  private limitReached(): ConflictError {
    return new ConflictError(
      `You hold ${this.config.maxPerUser} passkeys already, the most allowed: remove one first`,
      { max: this.config.maxPerUser },
      ErrorCodes.passkeyLimitReached,
    );
  }
}
