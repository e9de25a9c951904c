/**
 * The accounts API, registered under /api/v1.
 */
import type { FastifyInstance } from 'fastify';
import type { Platform } from '../../platform.js';
import { authRoutes } from './auth.js';
import { meRoutes } from './me.js';
import { userRoutes } from './users.js';

export function accountsRoutes(platform: Platform) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    await app.register(authRoutes(platform));
    await app.register(meRoutes(platform));
    await app.register(userRoutes(platform));
  };
}
