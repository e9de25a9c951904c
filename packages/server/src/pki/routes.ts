/**
 * Public PKI endpoints: the device issuing CA's CRL (`/pki/crl.pem`, the distribution point written
 * into device certificates) and the CA chain (`/pki/ca.pem`). No authentication: relying parties
 * and devices fetch them before they hold any credential; both are signed or self-verifying.
 */
import type { FastifyInstance } from 'fastify';
import type { PkiService } from './service.js';
import { Raw } from '../transport/http/schemas.js';

export function pkiRoutes({ pki }: { pki: PkiService }) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const none = { auth: { principal: 'none' as const } };
    app.get(
      '/pki/crl.pem',
      {
        config: none,
        schema: {
          tags: ['pki'],
          summary: 'Certificate revocation list of the device issuing CA (PEM)',
          response: { 200: Raw('application/x-pem-file', 'The CRL, signed by the device issuing CA') },
        },
      },
      async (_request, reply) => {
        const pem = await pki.crlFor();
        reply.header('content-type', 'application/x-pem-file').header('cache-control', 'public, max-age=300');
        return pem;
      },
    );
    app.get(
      '/pki/ca.pem',
      {
        config: none,
        schema: {
          tags: ['pki'],
          summary: 'Device issuing CA and root CA certificates (PEM)',
          response: { 200: Raw('application/x-pem-file', 'The device issuing CA certificate, then the root') },
        },
      },
      async (_request, reply) => {
        reply.header('content-type', 'application/x-pem-file').header('cache-control', 'public, max-age=300');
        return pki.caChain();
      },
    );
  };
}
