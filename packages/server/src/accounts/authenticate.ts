/**
 * Turns a presented credential (session token or API key) into the Actor every service
 * receives. Credential kinds register here so the transport has one door for all of them.
 */
import type { SessionRow, AccountsStore, UserRow } from './store.js';
import type { SessionService } from './sessions.js';
import { ROLE_PERMISSIONS, isOperatorRole, type Actor, type Permission } from './roles.js';

export interface Authenticated {
  actor: Actor;
  /** The session behind the actor, when it is one (not an API key). */
  session: SessionRow | null;
}

/**
 * A credential kind other than sessions (API keys, app access tokens), recognized by its token
 * prefix (`<prefix>_…`) or, for tokens that carry none of ours (JWTs), by `matches`.
 */
export interface CredentialAuthenticator {
  prefix: string;
  matches?(token: string): boolean;
  authenticate(token: string, sourceIp: string): Promise<Authenticated | null>;
}

export function permissionsOf(user: UserRow): ReadonlySet<Permission> {
  return user.kind === 'operator' && user.role && isOperatorRole(user.role) ? ROLE_PERMISSIONS[user.role] : new Set();
}

export function actorFor(
  user: UserRow,
  sourceIp: string,
  via: { session?: SessionRow; apiKeyId?: string; permissions?: ReadonlySet<Permission> },
): Actor {
  return {
    kind: user.kind,
    userId: user.id,
    organizationId: user.organization_id,
    role: user.kind === 'operator' && user.role && isOperatorRole(user.role) ? user.role : null,
    permissions: via.permissions ?? permissionsOf(user),
    via: via.apiKeyId ? 'api_key' : 'session',
    sessionId: via.session?.id ?? null,
    apiKeyId: via.apiKeyId ?? null,
    stepUpAt: via.session?.step_up_at ?? null,
    sourceIp,
  };
}

export class Authenticator {
  private readonly others: CredentialAuthenticator[] = [];

  constructor(
    private readonly store: AccountsStore,
    private readonly sessions: SessionService,
  ) {}

  register(kind: CredentialAuthenticator): void {
    this.others.push(kind);
  }

  async authenticate(token: string, sourceIp: string, transport: 'cookie' | 'bearer'): Promise<Authenticated | null> {
    const other = this.others.find((o) => (o.matches ? o.matches(token) : token.startsWith(`${o.prefix}_`)));
    if (other) return transport === 'bearer' ? other.authenticate(token, sourceIp) : null;
    const session = await this.sessions.resolve(token);
    if (!session || session.transport !== transport) return null;
    const user = await this.store.userById(session.user_id);
    if (!user || user.status !== 'active') return null;
    return { actor: actorFor(user, sourceIp, { session }), session };
  }
}
