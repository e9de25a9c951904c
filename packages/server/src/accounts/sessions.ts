/**
 * Sessions: opaque random tokens stored only as SHA-256 digests, with idle and absolute
 * timeouts, a scope that can restrict a session to one next step, step-up freshness, and the
 * CSRF token that cookie sessions must echo on every state-changing request.
 */
import { createHmac } from 'node:crypto';
import type { SessionView } from '@bulwark/protocol';
import type { Clock } from '../clock.js';
import { DAY, MINUTE, HOUR } from '../clock.js';
import type { Config } from '../ops/config.js';
import type { SessionsTable } from '../storage/schema.js';
import { constantTimeEqual, newId, newSecret, sha256Hex } from '../tokens.js';
import type { AccountsStore, SessionRow, UserRow } from './store.js';
import type { Executor } from '../storage/executor.js';

export const SESSION_TOKEN_PREFIX = 'bws';

/** What a session may do: everything (`full`), or only the one step that must come first. */
export type SessionScope = SessionsTable['scope'];

/** How long a session limited to one next step lives. */
const RESTRICTED_LIFETIME: Record<Exclude<SessionScope, 'full'>, number> = {
  mfa_pending: 5 * MINUTE,
  password_change: 15 * MINUTE,
  mfa_enrollment: 15 * MINUTE,
  passkey_enrollment: 15 * MINUTE,
};

/** Last-seen is written at most this often, so reads stay reads. */
const TOUCH_INTERVAL = MINUTE;

export interface SessionContext {
  transport: 'cookie' | 'bearer';
  sourceIp: string;
  userAgent: string;
}

export interface IssuedSession {
  token: string;
  session: SessionRow;
  csrfToken: string | null;
}

/** A session as the API lists it: a wire shape the console reads too (@bulwark/protocol). */
export type { SessionView };

type SessionFieldsRow = Pick<
  SessionRow,
  'id' | 'transport' | 'scope' | 'created_at' | 'last_seen_at' | 'expires_at' | 'source_ip' | 'user_agent'
>;

/** What a user may see of a session (listing, data export): never its token digest. */
export function sessionFields(s: SessionFieldsRow): Omit<SessionView, 'current'> {
  return {
    id: s.id,
    transport: s.transport,
    scope: s.scope,
    createdAt: new Date(s.created_at).toISOString(),
    lastSeenAt: new Date(s.last_seen_at).toISOString(),
    expiresAt: new Date(s.expires_at).toISOString(),
    sourceIp: s.source_ip,
    userAgent: s.user_agent,
  };
}

/** The sign-out reason of an account being deleted: what was handed out goes with it, not only ends. */
export const ACCOUNT_DELETED = 'account_deleted';

/**
 * What else must end when a user signs out or their sessions are all revoked (password change or
 * reset, disabling, MFA reset): the companion apps' OAuth grants (apps/clients.ts). Runs inside
 * the caller's transaction.
 */
export type SignOutListener = (userId: string, reason: string, db: Executor) => Promise<unknown>;

/** The longest a user's new session may live (single sign-on bounds its operators' sessions), or null for no extra bound. */
export type SessionBound = (user: UserRow, db: Executor) => Promise<number | null>;

export class SessionService {
  private readonly signOutListeners: SignOutListener[] = [];
  private sessionBound: SessionBound = async () => null;

  constructor(
    private readonly store: AccountsStore,
    private readonly clock: Clock,
    private readonly config: Config['sessions'],
    private readonly csrfKey: Buffer,
  ) {}

  async issue(
    user: UserRow,
    scope: SessionScope,
    context: SessionContext,
    db: Executor = this.store.db,
    stepUp = false,
  ): Promise<IssuedSession> {
    const now = this.clock.now();
    const token = newSecret(SESSION_TOKEN_PREFIX);
    const bound = await this.sessionBound(user, db);
    const normal = scope === 'full' ? this.config.absoluteTimeoutHours * HOUR : RESTRICTED_LIFETIME[scope];
    const lifetime = bound === null ? normal : Math.min(normal, bound);
    const session: SessionRow = {
      id: newId(),
      token_hash: sha256Hex(token),
      user_id: user.id,
      organization_id: user.organization_id,
      transport: context.transport,
      scope,
      created_at: now,
      last_seen_at: now,
      expires_at: now + lifetime,
      step_up_at: stepUp ? now : null,
      source_ip: context.sourceIp,
      user_agent: context.userAgent.slice(0, 512),
      revoked_at: null,
    };
    await this.store.insertSession(session, db);
    return { token, session, csrfToken: context.transport === 'cookie' ? this.csrfToken(session.id) : null };
  }

  /** The live session for a token, or null when unknown, revoked, idle too long or past its absolute limit. */
  async resolve(token: string): Promise<SessionRow | null> {
    if (!token.startsWith(`${SESSION_TOKEN_PREFIX}_`)) return null;
    const session = await this.store.sessionByTokenHash(sha256Hex(token));
    if (!session || session.revoked_at !== null) return null;
    const now = this.clock.now();
    const idle = session.scope === 'full' && now - session.last_seen_at >= this.config.idleTimeoutMinutes * MINUTE;
    if (now >= session.expires_at || idle) {
      // Ended for good, not only for now: a clock that steps back must not bring it back to life.
      await this.revoke(session.id);
      return null;
    }
    if (now - session.last_seen_at >= TOUCH_INTERVAL) {
      await this.store.touchSession(session.id, now);
      session.last_seen_at = now;
    }
    return session;
  }

  csrfToken(sessionId: string): string {
    return createHmac('sha256', this.csrfKey).update(`csrf:${sessionId}`).digest('base64url');
  }

  verifyCsrf(sessionId: string, presented: string | undefined): boolean {
    return typeof presented === 'string' && constantTimeEqual(presented, this.csrfToken(sessionId));
  }

  async markStepUp(sessionId: string, db: Executor = this.store.db): Promise<void> {
    await this.store.updateSession(sessionId, { step_up_at: this.clock.now() }, db);
  }

  get stepUpMinutes(): number {
    return this.config.stepUpMinutes;
  }

  hasFreshStepUp(stepUpAt: number | null): boolean {
    return stepUpAt !== null && this.clock.now() - stepUpAt < this.config.stepUpMinutes * MINUTE;
  }

  async revoke(sessionId: string, db: Executor = this.store.db): Promise<void> {
    await this.store.updateSession(sessionId, { revoked_at: this.clock.now() }, db);
  }

  async revokeAll(userId: string, db: Executor = this.store.db, exceptSessionId?: string): Promise<number> {
    const revoked = await this.store.revokeSessions(userId, this.clock.now(), db, exceptSessionId);
    await this.signedOut(userId, 'sessions_revoked', db);
    return revoked;
  }

  /** Deletes sessions that ended more than `days` ago (retention.sessionsDays); returns how many. */
  prune(days: number): Promise<number> {
    return this.store.deleteEndedSessions(this.clock.now() - days * DAY, this.config.idleTimeoutMinutes * MINUTE);
  }

  boundSessions(bound: SessionBound): void {
    this.sessionBound = bound;
  }

  onSignOut(listener: SignOutListener): void {
    this.signOutListeners.push(listener);
  }

  /** Ends what the user's sign-in handed out beside sessions (app grants); called on logout and by revokeAll. */
  async signedOut(userId: string, reason: string, db: Executor = this.store.db): Promise<void> {
    for (const listener of this.signOutListeners) await listener(userId, reason, db);
  }

  async list(userId: string, currentSessionId: string | null): Promise<SessionView[]> {
    const now = this.clock.now();
    const idle = this.config.idleTimeoutMinutes * MINUTE;
    const rows = await this.store.activeSessions(userId, now);
    return rows
      .filter((s) => s.scope !== 'full' || now - s.last_seen_at < idle)
      .map((s) => ({ ...sessionFields(s), current: s.id === currentSessionId }));
  }
}
