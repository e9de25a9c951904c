/**
 * The accounts API, registered under /api/v1. Each plugin receives the services it calls;
 * this one receives the union of them.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiKeyService } from '../api-keys.js';
import type { ProfileService } from '../profile.js';
import { apiKeyRoutes } from './api-keys.js';
import { authRoutes, type AuthRouteDeps } from './auth.js';
import { invitationRoutes, type InvitationRouteDeps } from './invitations.js';
import { meRoutes, type MeRouteDeps } from './me.js';
import { passkeyRoutes, type PasskeyRouteDeps } from './passkeys.js';
import { profileRoutes } from './profile.js';
import { recoveryRoutes, type RecoveryRouteDeps } from './recovery.js';
import { signupRoutes, type SignupRouteDeps } from './signup.js';
import { ssoRoutes, type SsoRouteDeps } from './sso.js';
import { userRoutes } from './users.js';

export type AccountsRouteDeps = AuthRouteDeps &
  MeRouteDeps &
  RecoveryRouteDeps &
  SignupRouteDeps &
  InvitationRouteDeps &
  SsoRouteDeps &
  PasskeyRouteDeps & { apiKeys: ApiKeyService; profile: ProfileService };

export function accountsRoutes(deps: AccountsRouteDeps) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    await app.register(authRoutes(deps));
    await app.register(meRoutes(deps));
    await app.register(userRoutes(deps));
    await app.register(apiKeyRoutes(deps));
    await app.register(profileRoutes(deps));
    await app.register(recoveryRoutes(deps));
    await app.register(signupRoutes(deps));
    await app.register(invitationRoutes(deps));
    await app.register(ssoRoutes(deps));
    await app.register(passkeyRoutes(deps));
  };
}
