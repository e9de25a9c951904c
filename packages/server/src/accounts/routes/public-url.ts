/**
 * The base URL that links in mails point at: the configured public URL, else the address this
 * node listens on. Never the request's Host header, which a caller could set to their own site
 * and so receive someone else's reset link.
 */
import type { FastifyInstance } from 'fastify';

export function publicBaseUrl(publicUrl: string | undefined, app: FastifyInstance): string {
  if (publicUrl) return publicUrl;
  return app.listeningOrigin.replace(/^https:\/\/(0\.0\.0\.0|\[::\])(?=:)/, 'https://localhost');
}
