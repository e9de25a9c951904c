/**
 * Serves the built web console (packages/web/dist) at /console/: the hashed files under
 * /console/assets/ with a year-long immutable cache, index.html for every other /console path
 * (the single-page app routes itself) with `no-cache`, and / redirects to /console/. The files are
 * read once at start into memory (and gzipped once): only names found then are served, so there
 * is no directory listing and no path to traverse. Console answers carry a strict CSP (scripts
 * and styles from 'self' only, no 'unsafe-inline', no framing) and X-Frame-Options DENY.
 * Without a build the platform starts all the same and says so in its log.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { NotFoundError } from '../../errors.js';
import { errorResponses, Raw, Strict } from './schemas.js';

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const IMMUTABLE = 'public, max-age=31536000, immutable';
const MEDIA_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};
const ASSET_NAME = /^[A-Za-z0-9._-]{1,128}$/;

interface StoredFile {
  body: Buffer;
  gzip: Buffer | null;
  type: string;
}

function stored(body: Buffer, type: string): StoredFile {
  const gzip = body.length > 1024 ? gzipSync(body, { level: 9 }) : null;
  return { body, gzip: gzip && gzip.length < body.length ? gzip : null, type };
}

/** The build's index.html and its assets, or null when the directory holds no build. */
export function loadConsoleBuild(dir: string): { index: StoredFile; assets: Map<string, StoredFile> } | null {
  const indexFile = join(dir, 'index.html');
  if (!existsSync(indexFile)) return null;
  const assets = new Map<string, StoredFile>();
  const assetDir = join(dir, 'assets');
  if (existsSync(assetDir)) {
    for (const name of readdirSync(assetDir)) {
      const path = join(assetDir, name);
      if (!ASSET_NAME.test(name) || !statSync(path).isFile()) continue;
      assets.set(name, stored(readFileSync(path), MEDIA_TYPES[extname(name)] ?? 'application/octet-stream'));
    }
  }
  return { index: stored(readFileSync(indexFile), 'text/html; charset=utf-8'), assets };
}

function send(request: FastifyRequest, reply: FastifyReply, file: StoredFile, cacheControl: string) {
  reply.header('content-type', file.type).header('cache-control', cacheControl).header('vary', 'accept-encoding');
  const accepts = String(request.headers['accept-encoding'] ?? '');
  if (file.gzip && /\bgzip\b/.test(accepts)) return reply.header('content-encoding', 'gzip').send(file.gzip);
  return reply.send(file.body);
}

export interface ConsoleOptions {
  /** The built console's directory (config.http.consoleDir); null: no console. */
  dir: string | null;
}

export function consoleRoutes(options: ConsoleOptions) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const build = options.dir ? loadConsoleBuild(options.dir) : null;
    if (!build) {
      app.log.warn(
        options.dir
          ? `No web console build in ${options.dir} (run \`npm run build\`); the API runs without the console`
          : 'The web console is turned off (http.consoleDir is null)',
      );
      return;
    }
    app.log.info({ dir: options.dir, assets: build.assets.size }, 'web console served at /console/');
    app.addHook('onRequest', async (_request, reply) => {
      reply.header('content-security-policy', CONSOLE_CSP).header('x-frame-options', 'DENY');
    });
    const page = { tags: ['console'], response: { 200: Raw('text/html', 'The console page (the app routes itself)') } };
    const index = (request: FastifyRequest, reply: FastifyReply) => send(request, reply, build.index, 'no-cache');

    app.get(
      '/',
      { schema: { tags: ['console'], summary: 'Redirects to the console', response: { 302: { description: 'To /console/' } } } },
      (_request, reply) => reply.redirect('/console/', 302),
    );
    app.get('/console', { schema: { ...page, summary: 'The web console' } }, index);
    app.get('/console/*', { schema: { ...page, summary: 'A page of the web console' } }, index);
    app.get(
      '/console/assets/:file',
      {
        schema: {
          tags: ['console'],
          summary: "A file of the console's build (hashed name, cached for a year)",
          params: Strict({ file: Type.String({ maxLength: 128 }) }),
          response: { 200: Raw('application/octet-stream', 'The file'), ...errorResponses(404) },
        },
      },
      (request, reply) => {
        const file = build.assets.get(request.params.file);
        if (!file) throw new NotFoundError('Console file');
        return send(request, reply, file, IMMUTABLE);
      },
    );
  };
}
