/**
 * Who may do what. Operators hold one role in their organization; consumers hold none and may
 * act only on themselves (and, later, on devices bound to them). Services call
 * `requirePermission` with the actor; routes declare the same permission for the edge check
 * and the OpenAPI document.
 */
import { OPERATOR_ROLES, PERMISSIONS, ROLE_PERMISSIONS, type OperatorRole, type Permission } from '@bulwark/protocol';
import { auditedActorOf } from '../audit/service.js';
import { ForbiddenError } from '../errors.js';

// The roles, permissions and what each role holds are wire words (the console names and shows them too): @bulwark/protocol holds them.
export { OPERATOR_ROLES, PERMISSIONS, ROLE_PERMISSIONS, type OperatorRole, type Permission };

/** Roles an actor of the given role may grant: nobody grants above their own rank. */
export function grantableRoles(role: OperatorRole): OperatorRole[] {
  if (role === 'owner') return [...OPERATOR_ROLES];
  if (role === 'admin') return ['admin', 'operator', 'release_engineer', 'auditor'];
  return [];
}

export function isOperatorRole(value: string): value is OperatorRole {
  return (OPERATOR_ROLES as readonly string[]).includes(value);
}

/**
 * What a companion app's OAuth access token may do for its consumer (issue 14). A route that an
 * app may call names the scope it needs (`config.auth.appScope`); routes that name none refuse app
 * tokens. `devices:read` reads bound devices and their live state, `devices:control` sets desired
 * state and sends allowed commands, `devices:share` invites, revokes and transfers, `account`
 * reads and changes the consumer's own account.
 */
export const APP_SCOPES = ['devices:read', 'devices:control', 'devices:share', 'account'] as const;
export type AppScope = (typeof APP_SCOPES)[number];

/** The authenticated caller, as every service sees it. */
export interface Actor {
  kind: 'operator' | 'consumer';
  userId: string;
  organizationId: string;
  role: OperatorRole | null;
  permissions: ReadonlySet<Permission>;
  via: 'session' | 'api_key' | 'cli' | 'app';
  /** Set when the caller is a companion app holding an OAuth access token for this consumer. */
  app?: { clientId: string; scopes: ReadonlySet<AppScope>; tokenId: string };
  sessionId: string | null;
  apiKeyId: string | null;
  /** When the actor last re-proved a factor in this session (step-up), ms epoch. */
  stepUpAt: number | null;
  sourceIp: string;
}

export function requirePermission(actor: Actor, permission: Permission): void {
  if (!actor.permissions.has(permission)) {
    throw new ForbiddenError(
      `This action needs the ${permission} permission, which your ${actor.role ?? actor.kind} account does not have`,
      'auth.forbidden',
      { permission },
    );
  }
}

export function requireOperator(actor: Actor): void {
  if (actor.kind !== 'operator') throw new ForbiddenError('This action is for operator accounts only', 'auth.forbidden');
}

/** How the actor is named in an audit entry (kept here for callers that build an entry themselves). */
export function auditActor(actor: Actor): { type: 'user' | 'api_key' | 'cli'; id: string } {
  return auditedActorOf(actor);
}

/** The platform admin at the command line: acts as owner of one organization, audited as `cli`. */
export function cliActor(organizationId: string, who = process.env.USER ?? 'cli'): Actor {
  return {
    kind: 'operator',
    userId: who,
    organizationId,
    role: 'owner',
    permissions: ROLE_PERMISSIONS.owner,
    via: 'cli',
    sessionId: null,
    apiKeyId: null,
    stepUpAt: Date.now(),
    sourceIp: 'local',
  };
}
