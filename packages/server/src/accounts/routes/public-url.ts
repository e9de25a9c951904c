/**
 * The base URL that links in mails point at: the configured public URL, else the address this
 * node listens on. Never the request's Host header, which a caller could set to their own site
 * and so receive someone else's reset link.
 */
import type { FastifyInstance } from 'fastify';
import type { Platform } from '../../platform.js';

export function publicBaseUrl(platform: Platform, app: FastifyInstance): string {
  if (platform.config.http.publicUrl) return platform.config.http.publicUrl;
  return app.listeningOrigin.replace(/^https:\/\/(0\.0\.0\.0|\[::\])(?=:)/, 'https://localhost');
}
