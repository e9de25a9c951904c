/**
 * HTTP routes of the updates domain (rollout). Skeleton: filled by its owner.
 */
import type { FastifyInstance } from 'fastify';
import type { Platform } from '../platform.js';

export function rolloutRoutes(_platform: Platform) {
  return async function plugin(_app: FastifyInstance): Promise<void> {};
}
