/**
 * Request and response schemas of the accounts API, shared by its route files.
 */
import { Type } from 'typebox';
import { OPERATOR_ROLES } from '../roles.js';
import type { OrganizationView, SessionAnswer, SessionView, SignInAnswer, UserView } from '@bulwark/protocol';
import { servesView, Strict, Timestamp } from '../../transport/http/schemas.js';

export const Email = Type.String({ minLength: 3, maxLength: 254 });
export const Password = Type.String({ minLength: 1, maxLength: 256 });
export const OrgSlug = Type.String({ minLength: 1, maxLength: 40 });
export const Code = Type.String({ minLength: 6, maxLength: 32, description: 'A 6-digit TOTP code or a recovery code' });
export const Role = Type.Union(OPERATOR_ROLES.map((r) => Type.Literal(r)));

export const UserSchema = servesView<UserView>()(
  Strict({
    id: Type.String(),
    organizationId: Type.String(),
    kind: Type.Union([Type.Literal('operator'), Type.Literal('consumer')]),
    email: Type.String(),
    emailVerified: Type.Boolean(),
    name: Type.String(),
    role: Type.Union([Type.String(), Type.Null()]),
    status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
    mfaEnabled: Type.Boolean(),
    locked: Type.Boolean(),
    mustChangePassword: Type.Boolean(),
    createdAt: Timestamp,
  }),
);

/** The answer of every sign-in step: the session it issued. */
export const LoginResponse = servesView<SignInAnswer>()(
  Strict({
    status: Type.Union([
      Type.Literal('ok'),
      Type.Literal('mfa_required'),
      Type.Literal('password_change_required'),
      Type.Literal('mfa_enrollment_required'),
      Type.Literal('passkey_enrollment_required'),
    ]),
    mfaFactors: Type.Optional(
      Type.Array(Type.Union([Type.Literal('totp'), Type.Literal('passkey')]), {
        description: 'At mfa_required: the factors that complete the step (POST /auth/mfa with a code, or the passkey ceremony)',
      }),
    ),
    token: Type.Optional(Type.String({ description: 'Bearer token (token mode only); shown once' })),
    csrfToken: Type.Optional(Type.String({ description: 'Echo in x-csrf-token on state-changing requests (cookie mode only)' })),
    expiresAt: Timestamp,
    user: UserSchema,
  }),
);

/** The session a request came with (`GET /auth/session`). */
export const SessionAnswerSchema = servesView<SessionAnswer>()(
  Strict({ user: UserSchema, scope: Type.String(), expiresAt: Timestamp, csrfToken: Type.Optional(Type.String()) }),
);

/** The fields of a session a user may see (listing, data export). */
export const SessionFields = {
  id: Type.String(),
  transport: Type.Union([Type.Literal('cookie'), Type.Literal('bearer')]),
  scope: Type.String(),
  createdAt: Timestamp,
  lastSeenAt: Timestamp,
  expiresAt: Timestamp,
  sourceIp: Type.String(),
  userAgent: Type.String(),
};

export const SessionSchema = servesView<SessionView>()(Strict({ ...SessionFields, current: Type.Boolean() }));

export const OrganizationSchema = servesView<OrganizationView>()(
  Strict({
    id: Type.String(),
    slug: Type.String(),
    name: Type.String(),
    mfaRequiredRoles: Type.Array(Type.String()),
    passkeyRequiredRoles: Type.Array(Type.String()),
    createdAt: Timestamp,
  }),
);
