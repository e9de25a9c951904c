/**
 * HTTP routes of the updates domain (repository). Skeleton: filled by its owner.
 */
import type { FastifyInstance } from 'fastify';
import type { Platform } from '../platform.js';

export function repositoryRoutes(_platform: Platform) {
  return async function plugin(_app: FastifyInstance): Promise<void> {};
}
