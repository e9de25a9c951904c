/**
 * HTTP routes of the blob store: streaming image upload and the public TUF targets path with range requests. Skeleton.
 */
import type { FastifyInstance } from 'fastify';
import type { Platform } from '../platform.js';

export function blobRoutes(_platform: Platform) {
  return async function plugin(_app: FastifyInstance): Promise<void> {};
}
