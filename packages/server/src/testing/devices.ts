/**
 * Real devices for tests and benchmarks: a registered device with its own P-256 key (made here,
 * as the device would) and the certificate the platform issued from its CSR.
 */
import { generateKeyPairSync } from 'node:crypto';
import { cliActor } from '../accounts/roles.js';
import type { Platform } from '../platform.js';
import { der, distinguishedName, pemOf, SEQUENCE, signedEcdsa } from './der.js';

export interface TestDevice {
  id: string;
  serial: string;
  organizationId: string;
  /** PKCS#8 PEM private key. */
  key: string;
  /** Device certificate (PEM). */
  cert: string;
  certSerial: string;
}

export async function organizationIdOf(platform: Platform, slug: string): Promise<string> {
  return (await platform.db.selectFrom('organizations').select('id').where('slug', '=', slug).executeTakeFirstOrThrow()).id;
}

/** A product of the organization to register devices under (created once per name). */
export async function testProduct(platform: Platform, organizationId: string, name = 'Test sensor'): Promise<string> {
  const existing = await platform.db
    .selectFrom('products')
    .select('id')
    .where('organization_id', '=', organizationId)
    .where('name', '=', name)
    .executeTakeFirst();
  if (existing) return existing.id;
  return (await platform.devices.service.createProduct(cliActor(organizationId, 'test'), { name })).id;
}

/** A CSR for `cn` with a fresh P-256 key; returns both as PEM. (Made with testing/der.ts: tests make thousands.) */
export async function makeCsr(cn: string): Promise<{ key: string; csr: string }> {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  // CertificationRequestInfo: version 0, subject, the key, no attributes ([0] empty).
  const info = der(
    SEQUENCE,
    der(0x02, Buffer.from([0])),
    distinguishedName([['CN', cn]]),
    publicKey.export({ type: 'spki', format: 'der' }),
    Buffer.from([0xa0, 0]),
  );
  return {
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    csr: pemOf('CERTIFICATE REQUEST', signedEcdsa(info, privateKey)),
  };
}

/** Registers a device and issues its certificate through factory provisioning. */
export async function provisionTestDevice(
  platform: Platform,
  organizationId: string,
  productId: string,
  serial: string,
): Promise<TestDevice> {
  const actor = cliActor(organizationId, 'test');
  const device = await platform.devices.service.register(actor, { serial, productId });
  const { key, csr } = await makeCsr(device.id);
  const issued = await platform.devices.enrollment.provision(actor, device.id, csr);
  return { id: device.id, serial, organizationId, key, cert: issued.certificate, certSerial: issued.serial };
}
