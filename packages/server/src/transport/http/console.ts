/**
 * Serves the two faces of the web build (packages/web): the operators' console at /console/ from
 * the build directory, and the consumers' companion app at /app/ from its `app/` subdirectory.
 * Each face: its hashed files under <base>/assets/ with a year-long immutable cache, its index.html
 * for every other <base> path (the single-page app routes itself) with `no-cache`; / redirects to
 * /console/, and the pages that mailed links name (/verify-email, /reset-password, /account/email)
 * to the app's, keeping the token in the fragment (an operator's email-change link names the
 * console's /console/account/email instead). The files are read once at start into memory with
 * their gzip (precompressed by the web build): only names found then are served, so there is no
 * directory listing and no path to
 * traverse. Every answer carries a strict CSP (scripts and styles from 'self' only, no
 * 'unsafe-inline', no framing), X-Frame-Options DENY and a Permissions-Policy that allows the
 * camera (the claim-code scanner) to this origin alone. Without a build the platform starts all
 * the same and says so in its log.
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

/**
 * The browser features the pages may use: the camera for the companion app's claim-code scanner,
 * on this origin only; no microphone, location or payment, for this origin or anything it embeds.
 */
export const PERMISSIONS_POLICY = 'camera=(self), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=()';

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

/**
 * A file of the build with its gzip: the build's `<file>.gz` (packages/web/scripts/precompress.mjs)
 * when it is there and not older than the file, else compressed here (a build without them).
 */
function stored(path: string, type: string): StoredFile {
  const body = readFileSync(path);
  if (body.length <= 1024) return { body, gzip: null, type };
  const precompressed = `${path}.gz`;
  const gzip =
    existsSync(precompressed) && statSync(precompressed).mtimeMs >= statSync(path).mtimeMs
      ? readFileSync(precompressed)
      : gzipSync(body, { level: 9 });
  return { body, gzip: gzip.length < body.length ? gzip : null, type };
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
      if (!ASSET_NAME.test(name) || name.endsWith('.gz') || !statSync(path).isFile()) continue;
      assets.set(name, stored(path, MEDIA_TYPES[extname(name)] ?? 'application/octet-stream'));
    }
  }
  return { index: stored(indexFile, 'text/html; charset=utf-8'), assets };
}

function send(request: FastifyRequest, reply: FastifyReply, file: StoredFile, cacheControl: string) {
  reply.header('content-type', file.type).header('cache-control', cacheControl).header('vary', 'accept-encoding');
  const accepts = String(request.headers['accept-encoding'] ?? '');
  if (file.gzip && /\bgzip\b/.test(accepts)) return reply.header('content-encoding', 'gzip').send(file.gzip);
  return reply.send(file.body);
}

export interface ConsoleOptions {
  /** The web build's directory (config.http.consoleDir): the console there, the companion app in its app/; null: neither. */
  dir: string | null;
}

type Build = NonNullable<ReturnType<typeof loadConsoleBuild>>;

/** The faces of the web build: where each is served and where its files are below the build directory. */
export const WEB_FACES = [
  { name: 'web console', base: '/console', subdir: '' },
  { name: 'companion app', base: '/app', subdir: 'app' },
] as const;

/** Whether `dir` (http.consoleDir) holds a build of the companion app, which answers the hosted OAuth pages (/app/authorize). */
export const servesCompanionApp = (dir: string | null): boolean => dir !== null && existsSync(join(dir, WEB_FACES[1].subdir, 'index.html'));

/**
 * Pages that mailed links point at (accounts/account-mail.ts tokenLink, profile-mail.ts
 * accountLink), answered by the companion app. An operator's email-change link names the
 * console's page itself (/console/account/email, profile-mail.ts emailChangePage); the redirect of
 * /account/email stays for the links mailed before it did.
 */
const MAILED_PAGES = ['verify-email', 'reset-password', 'account/email'] as const;

function serveFace(app: FastifyInstance, face: (typeof WEB_FACES)[number], build: Build): void {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['console'];
  const page = { tags, response: { 200: Raw('text/html', `The ${face.name} page (the app routes itself)`) } };
  const index = (request: FastifyRequest, reply: FastifyReply) => send(request, reply, build.index, 'no-cache');
  typed.get(face.base, { schema: { ...page, summary: `The ${face.name}` } }, index);
  typed.get(`${face.base}/*`, { schema: { ...page, summary: `A page of the ${face.name}` } }, index);
  typed.get(
    `${face.base}/assets/:file`,
    {
      schema: {
        tags,
        summary: `A file of the ${face.name}'s build (hashed name, cached for a year)`,
        params: Strict({ file: Type.String({ maxLength: 128 }) }),
        response: { 200: Raw('application/octet-stream', 'The file'), ...errorResponses(404) },
      },
    },
    (request, reply) => {
      const file = build.assets.get(request.params.file);
      if (!file) throw new NotFoundError(`File of the ${face.name}`);
      return send(request, reply, file, IMMUTABLE);
    },
  );
}

export function consoleRoutes(options: ConsoleOptions) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const builds = WEB_FACES.map((face) => ({ face, build: options.dir ? loadConsoleBuild(join(options.dir, face.subdir)) : null }));
    for (const { face, build } of builds) {
      if (build) app.log.info({ dir: options.dir, assets: build.assets.size }, `${face.name} served at ${face.base}/`);
      else
        app.log.warn(
          options.dir
            ? `No ${face.name} build in ${join(options.dir, face.subdir)} (run \`npm run build\`); the API runs without it`
            : `The ${face.name} is turned off (http.consoleDir is null)`,
        );
    }
    if (builds.every(({ build }) => !build)) return;
    app.addHook('onRequest', async (_request, reply) => {
      reply
        .header('content-security-policy', CONSOLE_CSP)
        .header('x-frame-options', 'DENY')
        .header('permissions-policy', PERMISSIONS_POLICY);
    });
    for (const { face, build } of builds) if (build) serveFace(app, face, build);
    if (builds[0]!.build)
      app.get(
        '/',
        { schema: { tags: ['console'], summary: 'Redirects to the console', response: { 302: { description: 'To /console/' } } } },
        (_request, reply) => reply.redirect('/console/', 302),
      );
    if (builds[1]!.build)
      for (const name of MAILED_PAGES)
        app.get(
          `/${name}`,
          {
            schema: {
              tags: ['console'],
              summary: `The mailed link's page: redirects to the companion app's (the browser keeps the #token fragment)`,
              response: { 302: { description: `To /app/${name}` } },
            },
          },
          (_request, reply) => reply.redirect(`/app/${name}`, 302),
        );
  };
}
