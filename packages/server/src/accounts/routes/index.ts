/**
 * The accounts API, registered under /api/v1.
 */
import type { FastifyInstance } from 'fastify';
import type { Platform } from '../../platform.js';
import { apiKeyRoutes } from './api-keys.js';
import { authRoutes } from './auth.js';
import { invitationRoutes } from './invitations.js';
import { meRoutes } from './me.js';
import { profileRoutes } from './profile.js';
import { recoveryRoutes } from './recovery.js';
import { signupRoutes } from './signup.js';
import { userRoutes } from './users.js';

export function accountsRoutes(platform: Platform) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    await app.register(authRoutes(platform));
    await app.register(meRoutes(platform));
    await app.register(userRoutes(platform));
    await app.register(apiKeyRoutes(platform));
    await app.register(profileRoutes(platform));
    await app.register(recoveryRoutes(platform));
    await app.register(signupRoutes(platform));
    await app.register(invitationRoutes(platform));
  };
}
