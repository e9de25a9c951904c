/**
 * Real devices for tests and benchmarks: a registered device with its own P-256 key (made here,
 * as the device would) and the certificate the platform issued from its CSR.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { cliActor } from '../accounts/roles.js';
import type { Platform } from '../platform.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

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

/** A CSR for `cn` with a fresh P-256 key; returns both as PEM. */
export async function makeCsr(cn: string): Promise<{ key: string; csr: string }> {
  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${cn}`, keys, signingAlgorithm: EC_P256 });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as webcrypto.CryptoKey);
  return { key: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'), csr: csr.toString('pem') };
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
