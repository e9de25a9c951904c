/**
 * The doors of device enrollment. Under /api/v1: factory provisioning (one CSR or a batch),
 * one-time enrollment tokens, credential rotation and bootstrap CAs, for operators and API keys
 * with devices:write. Under /.well-known/est (RFC 7030): `cacerts`, `simpleenroll` (an enrollment
 * token as bearer, or a bootstrap certificate as TLS client certificate) and `simplereenroll` (the
 * device's current certificate as TLS client certificate); base64 DER PKCS#10 in, base64 PKCS#7
 * certs-only out, so a device with only openssl and curl can enroll. The application/pkcs10
 * parser is this plugin's own.
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { Type } from 'typebox';
import { ErrorCodes, type RotatedCredentialsView } from '@bulwark/protocol';
import { AuthenticationError, ValidationError } from '../../errors.js';
import type { PkiService } from '../../pki/service.js';
import type { BootstrapCaService } from '../bootstrap-cas.js';
import { RegistrationRefusedError } from '../errors.js';
import { manufacturerCaRoutes, type ManufacturerCaRouteDeps } from './manufacturer-cas.js';
import { actorOf } from '../../accounts/routes/authentication.js';
import { errorResponses, Id, IdParams, Raw, servesView, Strict, Timestamp } from '../../transport/http/schemas.js';
import { bootstrapCaRoutes } from './bootstrap-cas.js';
import { MAX_ENROLLMENT_BATCH, ROTATION_REASONS, type EnrolledCertificate, type EnrollmentService } from '../enrollment.js';
import { DeviceAuthenticationError } from '../identity.js';

const CsrPem = Type.String({ minLength: 1, maxLength: 16_384, description: 'PKCS#10 CSR (PEM) whose subject CN is the device ID' });
const Issued = { certificate: Type.String(), chain: Type.String(), serial: Type.String(), notAfter: Timestamp };
const PKCS7 = 'application/pkcs7-mime; smime-type=certs-only';

function view(cert: EnrolledCertificate) {
  return { certificate: cert.certificate, chain: cert.chain, serial: cert.serial, notAfter: cert.notAfter.toISOString() };
}

/** A certs-only PKCS#7 of the given PEM certificates, base64 as RFC 7030 answers. */
function pkcs7(...pems: string[]): string {
  const blocks = pems.join('\n').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  return new x509.X509Certificates(blocks.map((pem) => new x509.X509Certificate(pem))).export('base64');
}

/** The base64 DER CSR of an EST request, as PEM; anything else is refused before it reaches the issuer. */
function csrFromBase64(body: unknown): string {
  const b64 = typeof body === 'string' ? body.replace(/\s+/g, '') : '';
  if (!b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64))
    throw new ValidationError('Send the CSR as base64 DER PKCS#10 with content type application/pkcs10', undefined, 'pki.csr_invalid');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}

function bearer(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (header === undefined) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw new AuthenticationError('EST enrollment needs "Authorization: Bearer <enrollment token>" or a bootstrap certificate');
  return match[1]!;
}

/** The DER of the client certificate presented in the TLS handshake (not verified by TLS: the service does), or null. */
function peerCertificate(request: FastifyRequest): Buffer | null {
  const socket = request.raw.socket as Partial<TLSSocket>;
  const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : null;
  return peer?.raw ? peer.raw : null;
}

function requirePkcs10(request: FastifyRequest): string {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/pkcs10')
    throw new ValidationError('Send the CSR with content type application/pkcs10', undefined, 'pki.csr_invalid');
  return csrFromBase64(request.body);
}

/**
 * Logs every refused device certificate with its reason: the audit log keeps one entry per reason,
 * address and minute (EnrollmentService), the node's log keeps them all.
 */
async function loggingRefusals<T>(request: FastifyRequest, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof DeviceAuthenticationError)
      request.log.warn({ reason: error.reason, path: request.url }, 'device certificate refused');
    if (error instanceof RegistrationRefusedError)
      request.log.warn({ reason: error.code, path: request.url }, 'just-in-time registration refused');
    throw error;
  }
}

export interface EnrollmentRouteDeps extends ManufacturerCaRouteDeps {
  enrollment: EnrollmentService;
  bootstrapCas: BootstrapCaService;
  /** The CA chain EST's /cacerts serves. */
  pki: PkiService;
}

export function enrollmentRoutes(deps: EnrollmentRouteDeps) {
  const { enrollment, pki } = deps;
  return async function plugin(root: FastifyInstance): Promise<void> {
    await root.register(
      async (scope) => {
        const app = scope.withTypeProvider<TypeBoxTypeProvider>();
        const write = { auth: { principal: 'operator', permission: 'devices:write' } } as const;
        app.get(
          '/devices/:id/certificates',
          {
            config: { auth: { principal: 'operator', permission: 'devices:read' } },
            schema: {
              tags: ['devices'],
              summary: "The device's certificates, newest first (at most 20): serial, SHA-256 fingerprint, validity, revocation",
              params: IdParams,
              response: {
                200: Strict({
                  certificates: Type.Array(
                    Strict({
                      serial: Type.String(),
                      fingerprintSha256: Type.String(),
                      notBefore: Timestamp,
                      notAfter: Timestamp,
                      status: Type.Union([Type.Literal('active'), Type.Literal('revoked')]),
                      revokedAt: Type.Union([Timestamp, Type.Null()]),
                      revocationReason: Type.Union([Type.String(), Type.Null()]),
                    }),
                  ),
                }),
                ...errorResponses(401, 403, 404),
              },
            },
          },
          async (request) => ({ certificates: await enrollment.certificatesOf(actorOf(request), request.params.id) }),
        );
        app.post(
          '/devices/:id/certificate',
          {
            config: write,
            schema: {
              tags: ['devices'],
              summary: "Issue a device's certificate from its CSR (factory provisioning)",
              params: IdParams,
              body: Strict({ csr: CsrPem }),
              response: { 200: Strict(Issued), ...errorResponses(400, 401, 403, 404, 409) },
            },
          },
          async (request) => view(await enrollment.provision(actorOf(request), request.params.id, request.body.csr)),
        );
        app.post(
          '/devices/certificates',
          {
            config: write,
            schema: {
              tags: ['devices'],
              summary: 'Issue the certificates of many devices; each item succeeds or fails on its own',
              body: Strict({ items: Type.Array(Strict({ deviceId: Id, csr: CsrPem }), { minItems: 1, maxItems: MAX_ENROLLMENT_BATCH }) }),
              response: {
                200: Strict({
                  results: Type.Array(
                    Type.Union([
                      Strict({ deviceId: Type.String(), ...Issued }),
                      Strict({ deviceId: Type.String(), error: Strict({ code: Type.String(), message: Type.String() }) }),
                    ]),
                  ),
                }),
                ...errorResponses(400, 401, 403),
              },
            },
          },
          async (request) => ({
            results: (await enrollment.provisionBatch(actorOf(request), request.body.items)).map((r) =>
              'error' in r ? r : { deviceId: r.deviceId, ...view(r) },
            ),
          }),
        );
        app.post(
          '/devices/:id/enrollment-token',
          {
            config: write,
            schema: {
              tags: ['devices'],
              summary:
                'Create a one-time token with which the device enrolls over EST (24 hours, single use); for a device already enrolled, a session needs a recent step-up (an API key with devices:write does not)',
              params: IdParams,
              response: { 201: Strict({ token: Type.String(), expiresAt: Timestamp }), ...errorResponses(401, 403, 404, 409) },
            },
          },
          async (request, reply) => {
            const created = await enrollment.createEnrollmentToken(actorOf(request), request.params.id);
            return reply.status(201).send({ token: created.token, expiresAt: created.expiresAt.toISOString() });
          },
        );
        app.post(
          '/devices/:id/credentials/rotate',
          {
            config: write,
            // The body is optional: none means the default reason.
            preValidation: async (request) => {
              request.body ??= {};
            },
            schema: {
              tags: ['devices'],
              summary:
                'Revoke every certificate of the device (CRL republished) and create a new one-time enrollment token; a session needs a recent step-up (an API key with devices:write does not)',
              params: IdParams,
              body: Strict({ reason: Type.Optional(Type.Union(ROTATION_REASONS.map((r) => Type.Literal(r)))) }),
              response: {
                200: servesView<RotatedCredentialsView>()(
                  Strict({ deviceId: Type.String(), revoked: Type.Array(Type.String()), token: Type.String(), expiresAt: Timestamp }),
                ),
                ...errorResponses(400, 401, 403, 404, 409),
              },
            },
          },
          async (request): Promise<RotatedCredentialsView> => {
            const rotated = await enrollment.rotateCredentials(actorOf(request), request.params.id, request.body.reason ?? 'superseded');
            return {
              deviceId: rotated.deviceId,
              revoked: rotated.revoked,
              token: rotated.token,
              expiresAt: rotated.expiresAt.toISOString(),
            };
          },
        );
        await bootstrapCaRoutes(deps)(app);
        await manufacturerCaRoutes(deps)(app);
      },
      { prefix: '/api/v1' },
    );

    await root.register(
      async (est) => {
        est.addContentTypeParser('application/pkcs10', { parseAs: 'string' }, (_request, body, done) => done(null, body));
        const none = { auth: { principal: 'none' as const } };
        est.get(
          '/cacerts',
          {
            config: none,
            schema: {
              tags: ['est'],
              summary: 'EST: the device issuing CA and root (base64 PKCS#7 certs-only)',
              response: { 200: Raw(PKCS7, 'Base64 PKCS#7 certs-only: the device issuing CA and the root') },
            },
          },
          async (_request, reply) => {
            reply
              .header('content-type', PKCS7)
              .header('content-transfer-encoding', 'base64')
              .header('cache-control', 'public, max-age=300');
            return pkcs7(await pki.caChain());
          },
        );
        est.post(
          '/simpleenroll',
          {
            config: none,
            schema: {
              tags: ['est'],
              summary:
                'EST: enroll with a one-time enrollment token (bearer), or a bootstrap or manufacturer certificate (TLS client certificate: a device of a manufacturer CA registers just in time); base64 DER PKCS#10 in, base64 PKCS#7 out',
              response: {
                200: Raw(PKCS7, 'Base64 PKCS#7 certs-only: the new device certificate'),
                ...errorResponses(400, 401, 403, 409, 429, 503),
              },
            },
          },
          async (request, reply) => {
            const token = bearer(request);
            const bootstrap = token === null ? peerCertificate(request) : null;
            if (token === null && bootstrap === null)
              throw new AuthenticationError(
                'EST enrollment needs "Authorization: Bearer <enrollment token>" or a bootstrap certificate in the TLS handshake',
              );
            const csr = requirePkcs10(request);
            const cert =
              token !== null
                ? await enrollment.enrollWithToken(token, csr, request.ip)
                : await loggingRefusals(request, () => enrollment.enrollWithDeviceCertificate(bootstrap!, csr, request.ip));
            reply.header('content-type', PKCS7).header('content-transfer-encoding', 'base64');
            return pkcs7(cert.certificate);
          },
        );
        est.post(
          '/simplereenroll',
          {
            config: none,
            schema: {
              tags: ['est'],
              summary:
                "EST: renew or re-key with the device's current certificate as TLS client certificate; base64 DER PKCS#10 in, base64 PKCS#7 out",
              response: {
                200: Raw(PKCS7, 'Base64 PKCS#7 certs-only: the renewed device certificate'),
                ...errorResponses(400, 401, 403, 409),
              },
            },
          },
          async (request, reply) => {
            const current = peerCertificate(request);
            if (!current)
              throw new AuthenticationError(
                "EST re-enrollment needs the device's current certificate as TLS client certificate",
                ErrorCodes.deviceCertificateRequired,
              );
            const csr = requirePkcs10(request);
            const cert = await loggingRefusals(request, () => enrollment.reenroll(current, csr, request.ip));
            reply.header('content-type', PKCS7).header('content-transfer-encoding', 'base64');
            return pkcs7(cert.certificate);
          },
        );
      },
      { prefix: '/.well-known/est' },
    );
  };
}
