/**
 * Operators' roles and the permissions an actor (a role, an API key's scopes) may hold: the server
 * checks them (ROLE_PERMISSIONS maps each role to its permissions), and the console and other
 * clients name them when they invite an operator or create a scoped API key, and offer an action
 * only to the roles that hold its permission. Below them, the account views the API serves (a user,
 * a sign-in step's answer, the current session, a session, a TOTP enrolment, an organization and
 * its passkey policy, an API key, a passkey, an operator invitation): the server builds each in one
 * place (server/src/accounts/) and the console reads them.
 */
export const OPERATOR_ROLES = ['owner', 'admin', 'operator', 'release_engineer', 'auditor'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

export const PERMISSIONS = [
  'org:read',
  'org:manage',
  'users:read',
  'users:manage',
  'audit:read',
  'devices:read',
  'devices:write',
  'firmware:read',
  'firmware:release',
  'rollouts:read',
  'rollouts:manage',
  'assessment:read',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** A user as the API shows it (never a password digest or an MFA secret). */
export interface UserView {
  id: string;
  organizationId: string;
  kind: 'operator' | 'consumer';
  email: string;
  emailVerified: boolean;
  name: string;
  role: string | null;
  status: 'active' | 'disabled';
  mfaEnabled: boolean;
  locked: boolean;
  mustChangePassword: boolean;
  createdAt: string;
}

/** What a session may do: everything (`full`), or only the one step that must come first. */
export type SessionScope = 'full' | 'mfa_pending' | 'password_change' | 'mfa_enrollment' | 'passkey_enrollment';

/** Where a sign-in stands: done (`ok`), or the one step that must come before the session is whole. */
export type SignInStatus = 'ok' | 'mfa_required' | 'password_change_required' | 'mfa_enrollment_required' | 'passkey_enrollment_required';

/** A factor that completes the second step of a sign-in: a TOTP (or recovery) code, or a passkey. */
export type MfaFactor = 'totp' | 'passkey';

/** The answer of a sign-in step (password, second factor, passkey, single sign-on, a changed password): the session it issued. */
export interface SignInAnswer {
  status: SignInStatus;
  /** At mfa_required: the factors that complete the step. */
  mfaFactors?: MfaFactor[];
  /** The bearer token (token mode only), shown once. */
  token?: string;
  /** Echoed in x-csrf-token on state-changing requests (cookie mode only). */
  csrfToken?: string;
  expiresAt: string;
  user: UserView;
}

/** The session a request came with (`GET /auth/session`); a cookie session is handed its CSRF token again. */
export interface SessionAnswer {
  user: UserView;
  scope: SessionScope;
  expiresAt: string;
  csrfToken?: string;
}

/** A TOTP enrolment begun (`POST /me/mfa/totp`): the secret, shown this once, and its otpauth URI (the QR code). */
export interface TotpEnrolment {
  secret: string;
  otpauthUri: string;
}

/** An organization as the API shows it (`GET /org`, and the answer of a change of its policies). */
export interface OrganizationView {
  id: string;
  slug: string;
  name: string;
  /** The roles that must use a second factor. */
  mfaRequiredRoles: string[];
  /** The roles that must sign in with a passkey. */
  passkeyRequiredRoles: string[];
  createdAt: string;
}

/** The organization's passkey policy as `PUT /org/passkey-policy` takes it: the roles that must sign in with a passkey. */
export interface PasskeyPolicy {
  passkeyRequiredRoles: string[];
}

/** A session of the signed-in user as the API lists it (never its token or digest). */
export interface SessionView {
  id: string;
  transport: 'cookie' | 'bearer';
  scope: SessionScope;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  sourceIp: string;
  userAgent: string;
  /** The session this request came with. */
  current: boolean;
}

/** An API key as the API lists it (the secret is shown once, at creation, never again). */
export interface ApiKeyView {
  id: string;
  userId: string;
  name: string;
  scopes: Permission[];
  createdAt: string;
  expiresAt: string;
  lastUsedAt: string | null;
  revoked: boolean;
  revokedAt: string | null;
  expired: boolean;
}

/** A passkey (WebAuthn credential) of the signed-in user. */
export interface PasskeyView {
  id: string;
  name: string;
  credentialId: string;
  transports: string[];
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
  createdAt: string;
  lastUsedAt: string | null;
}

const READ_ONLY: Permission[] = [
  'org:read',
  'users:read',
  'audit:read',
  'devices:read',
  'firmware:read',
  'rollouts:read',
  'assessment:read',
];

export const ROLE_PERMISSIONS: Record<OperatorRole, ReadonlySet<Permission>> = {
  owner: new Set(PERMISSIONS),
  admin: new Set(PERMISSIONS),
  operator: new Set<Permission>(['org:read', 'devices:read', 'devices:write', 'firmware:read', 'rollouts:read', 'assessment:read']),
  release_engineer: new Set<Permission>([
    'org:read',
    'devices:read',
    'firmware:read',
    'firmware:release',
    'rollouts:read',
    'rollouts:manage',
  ]),
  auditor: new Set<Permission>(READ_ONLY),
};

/** Whether an operator of `role` holds `permission` (false for a consumer, whose role is null, or an unknown role). */
export function roleHolds(role: string | null, permission: Permission): boolean {
  return role !== null && (OPERATOR_ROLES as readonly string[]).includes(role) && ROLE_PERMISSIONS[role as OperatorRole].has(permission);
}

/** An invitation of an operator into the organization, pending until accepted (`GET /api/v1/invitations`). */
export interface OperatorInvitationView {
  id: string;
  email: string;
  name: string;
  role: OperatorRole;
  /** The inviting user, or null when the platform admin invited from the command line. */
  invitedBy: string | null;
  createdAt: string;
  expiresAt: string;
}
