/**
 * HTTP routes of the blob store. `PUT /api/v1/updates/blobs/:sha256` streams a firmware image into
 * the store (never buffered: this plugin's octet-stream parser hands the request stream through).
 * `GET|HEAD /tuf/:organizationId/targets/<productId>/<sha256>.firmware-<version>.bin` serves it
 * to devices, with single byte ranges so downloads resume. The targets path is public like all of
 * /tuf: the image repository's metadata, signed offline, is what makes an image trustworthy, and
 * the agent checks length and hash against it. It serves only images a release of that
 * organization names under that target, so the store is not readable by hash alone.
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ErrorCodes, errorBody, targetNameOf } from '@bulwark/protocol';
import { Type } from 'typebox';
import { BulwarkError, NotFoundError } from '../../errors.js';
import type { BlobUploads } from '../blob-uploads.js';
import { actorOf } from '../../accounts/routes/authentication.js';
import { ErrorRef, errorResponses, Raw, Strict } from '../../transport/http/schemas.js';
import { assertBlobHash, BlobTooLargeError, sliced, type BlobStore } from '../blobs.js';
import { decideRange, ifRangeHolds } from '../byte-range.js';
import type { ReleaseService } from '../releases.js';

const OCTET_STREAM = 'application/octet-stream';
/** `<productId>/<sha256>.firmware-<version>.bin`: TUF consistent-snapshot naming, the hash before the file name. */
const TARGET_PATH = /^([^/]+)\/([0-9a-f]{64})\.firmware-([^/]+)\.bin$/;

const BlobSchema = Strict({ sha256: Type.String(), length: Type.Integer() });

/** Refuses an upload before a byte of it is read: wrong hash syntax, media type, or declared size. */
function checkUpload(maxBytes: number) {
  return async (request: FastifyRequest<{ Params: { sha256: string } }>) => {
    assertBlobHash(request.params.sha256);
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== OCTET_STREAM) throw new BulwarkError(ErrorCodes.requestUnsupportedMediaType, `Send the image as ${OCTET_STREAM}`, 415);
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > maxBytes) throw new BlobTooLargeError(maxBytes);
  };
}

/**
 * A refused upload may still be sending: close the connection after the answer rather than let
 * the server read and discard the rest (it could be endless).
 */
async function closeIfUnread(request: FastifyRequest, reply: FastifyReply, payload: unknown) {
  if (!request.raw.complete) reply.header('connection', 'close');
  return payload;
}

export interface BlobRouteDeps {
  blobs: BlobStore;
  uploads: BlobUploads;
  /** Which images the targets route may serve: those a release of the organization names. */
  releases: Pick<ReleaseService, 'isReleased'>;
  /** config.updates.maxImageBytes */
  maxImageBytes: number;
}

export function blobRoutes(deps: BlobRouteDeps) {
  const { blobs, uploads } = deps;
  const maxBytes = deps.maxImageBytes;
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    // Scoped to this plugin: elsewhere octet-stream bodies stay refused.
    app.addContentTypeParser(OCTET_STREAM, (_request, payload, done) => done(null, payload));

    app.put(
      '/api/v1/updates/blobs/:sha256',
      {
        bodyLimit: maxBytes,
        config: { auth: { principal: 'operator', permission: 'firmware:release' } },
        onRequest: checkUpload(maxBytes),
        onSend: closeIfUnread,
        schema: {
          tags: ['updates'],
          summary: `Upload a firmware image (${OCTET_STREAM}, at most updates.maxImageBytes, within the organization's updates.blobQuotaBytes), named by its SHA-256; kept only if the bytes hash to it, deleted after updates.orphanBlobGraceHours unless a release names it`,
          params: Strict({ sha256: Type.String({ maxLength: 128, description: 'SHA-256 of the image, 64 lowercase hex characters' }) }),
          response: { 200: BlobSchema, 201: BlobSchema, ...errorResponses(400, 401, 403, 413, 415) },
        },
      },
      async (request, reply) => {
        const { sha256 } = request.params;
        const declared = request.headers['content-length'] === undefined ? undefined : Number(request.headers['content-length']);
        const stored = await uploads.upload(actorOf(request), sha256, request.body as Readable, declared);
        return reply.status(stored.created ? 201 : 200).send({ sha256, length: stored.length });
      },
    );

    app.route({
      method: ['GET', 'HEAD'],
      url: '/tuf/:organizationId/targets/*',
      config: { auth: { principal: 'none' } },
      schema: {
        tags: ['updates'],
        summary:
          'A firmware image of the image repository, by consistent-snapshot target path; single byte ranges (206) let downloads resume',
        params: Strict({ organizationId: Type.String({ minLength: 1, maxLength: 64 }), '*': Type.String({ maxLength: 512 }) }),
        response: {
          200: Raw(OCTET_STREAM, 'The whole image'),
          206: Raw(OCTET_STREAM, 'The requested byte range (Content-Range)'),
          416: ErrorRef,
          ...errorResponses(404),
        },
      },
      handler: async (request, reply) => {
        const { organizationId } = request.params;
        const match = TARGET_PATH.exec(request.params['*']);
        // Made only when refused: an error's stack trace costs more than the rest of serving an image from memory.
        const notFound = () => new NotFoundError('The target', { path: `/tuf/${organizationId}/targets/${request.params['*']}` });
        if (!match) throw notFound();
        const [, productId, sha256, version] = match as unknown as [string, string, string, string];
        if (!(await deps.releases.isReleased(organizationId, targetNameOf(productId, version), sha256))) throw notFound();
        const hot = blobs.cached(sha256);
        const blob = hot ? { sha256, length: hot.length } : await blobs.stat(sha256);
        if (!blob) {
          request.log.error({ sha256, organizationId }, 'a released image is missing from the blob store');
          throw notFound();
        }

        const etag = `"${sha256}"`;
        reply.header('accept-ranges', 'bytes').header('etag', etag).header('cache-control', 'public, max-age=3600');
        // Range is defined for GET only; HEAD describes the whole image.
        const ifRange = request.headers['if-range'];
        const ranged = request.method === 'GET' && ifRangeHolds(Array.isArray(ifRange) ? '' : ifRange, etag);
        const decision = decideRange(ranged ? request.headers.range : undefined, blob.length);
        if (decision.kind === 'unsatisfiable') {
          reply.header('content-range', `bytes */${blob.length}`);
          return reply.status(416).send(
            errorBody('update.range_not_satisfiable', `The image is ${blob.length} bytes: the requested range starts past its end`, {
              length: blob.length,
            }),
          );
        }
        reply.header('content-type', OCTET_STREAM);
        if (decision.kind === 'partial') {
          reply
            .status(206)
            .header('content-range', `bytes ${decision.start}-${decision.end}/${blob.length}`)
            .header('content-length', decision.end - decision.start + 1);
          return reply.send(hot ? sliced(hot.subarray(decision.start, decision.end + 1)) : blobs.open(sha256, decision));
        }
        reply.status(200).header('content-length', blob.length);
        if (request.method === 'HEAD' || blob.length === 0) return reply.send(undefined);
        // A small image is served from memory (read once per process), a larger one streamed from the store.
        const bytes = hot ?? (await blobs.bytes(sha256, blob.length));
        return reply.send(bytes ? sliced(bytes) : blobs.open(sha256));
      },
    });
  };
}
