/**
 * A fleet of mutual-TLS devices for bench:connections, made in seconds rather than the minutes
 * that issuing each certificate from its own CSR takes (about 15 ms a device on this machine):
 *
 * - the devices are bulk-inserted through the devices store, active;
 * - every device shares ONE P-256 key (the key does not change what a connection costs the server:
 *   the handshake verifies the client's signature the same way, whoever else holds the key);
 * - the first device's certificate is issued by the platform itself (CSR, issuer, record, audit);
 *   every other one is that certificate with its device ID (subject CN and URI SAN, same length)
 *   and serial replaced, signed again by the device issuing CA's own key, and recorded through the
 *   PKI store in bulk (no audit entry per certificate). The broker checks them as any other: chain,
 *   signature, validity, the recorded serial and fingerprint, the device's status.
 */
import 'reflect-metadata';
import { KeyObject, sign, webcrypto, X509Certificate, createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { auditActor, cliActor } from '../../packages/server/src/accounts/roles.js';
import { certificateSerial } from '../../packages/server/src/devices/identity.js';
import { loadDeviceIssuingCa, serialNumber } from '../../packages/server/src/pki/ca.js';
import { sequenceElements } from '../../packages/server/src/pki/der.js';
import { PkiStore } from '../../packages/server/src/pki/store.js';
import type { Platform } from '../../packages/server/src/platform.js';
import type { IssuedCertificatesTable } from '../../packages/server/src/storage/schema.js';
import { testProduct } from '../../packages/server/src/testing/devices.js';
import { deviceRow } from './fleet.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface ConnFleet {
  /** The key every device holds (PKCS#8 PEM). */
  key: string;
  devices: { id: string; cert: string }[];
}

/** DER length octets. */
function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const octets: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) octets.unshift(n % 256);
  return Buffer.from([0x80 | octets.length, ...octets]);
}

function derElement(tag: number, contents: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(contents.length), contents]);
}

function pem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** Registers `count` active devices of the organization and gives each a certificate (see above). */
export async function provisionConnFleet(platform: Platform, organizationId: string, count: number, prefix: string): Promise<ConnFleet> {
  const product = await testProduct(platform, organizationId);
  const now = Date.now();
  const rows = Array.from({ length: count }, (_, i) => deviceRow(organizationId, product, `${prefix}-${String(i).padStart(7, '0')}`, now));
  await platform.db.transaction().execute((trx) => platform.devices.store.insertDevices(rows, trx));

  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const key = x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as webcrypto.CryptoKey), 'PRIVATE KEY');
  const first = rows[0]!.id;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${first}`, keys, signingAlgorithm: EC_P256 });
  const template = await platform.pki.issueDeviceCertificate(
    { organizationId, deviceId: first, csrPem: csr.toString('pem') },
    auditActor(cliActor(organizationId, 'bench')),
  );

  const caKey = KeyObject.from((await loadDeviceIssuingCa(platform.config.dataDir, { box: platform.box, token: null })).signer.privateKey);
  const templateDer = Buffer.from(new X509Certificate(template.pem).raw);
  const [tbs, algorithm] = sequenceElements(templateDer);
  const tbsBytes = tbs!.bytes;
  const serialElement = sequenceElements(tbsBytes)[1]!; // [0] version, then the serial INTEGER
  const serialAt = serialElement.contents.byteOffset - tbsBytes.byteOffset;
  const idBytes = Buffer.from(first);
  const idAt: number[] = [];
  for (let at = tbsBytes.indexOf(idBytes); at >= 0; at = tbsBytes.indexOf(idBytes, at + 1)) idAt.push(at);
  if (idAt.length !== 2 || serialElement.contents.length !== 16) throw new Error('unexpected template certificate layout');

  const certificates: IssuedCertificatesTable[] = [];
  const devices: ConnFleet['devices'] = [{ id: first, cert: template.pem }];
  for (const row of rows.slice(1)) {
    const next = Buffer.from(tbsBytes);
    Buffer.from(serialNumber(), 'hex').copy(next, serialAt);
    for (const at of idAt) next.write(row.id, at, 'latin1');
    const signature = sign('sha256', next, caKey);
    const der = derElement(0x30, Buffer.concat([next, algorithm!.bytes, derElement(0x03, Buffer.concat([Buffer.from([0]), signature]))]));
    const cert = new X509Certificate(der);
    certificates.push({
      serial: certificateSerial(cert),
      organization_id: organizationId,
      device_id: row.id,
      subject: `CN=${row.id}`,
      not_before: template.notBefore.getTime(),
      not_after: template.notAfter.getTime(),
      fingerprint_sha256: createHash('sha256').update(der).digest('hex'),
      pem: pem(der),
      status: 'active',
      revoked_at: null,
      revocation_reason: null,
      created_at: now,
    });
    devices.push({ id: row.id, cert: certificates.at(-1)!.pem });
  }
  // The CA's signature over a rebuilt certificate checks like the platform's own.
  const caCert = new X509Certificate(await platform.pki.deviceCaCertificate());
  if (devices.length > 1 && !new X509Certificate(devices[1]!.cert).verify(caCert.publicKey))
    throw new Error('a rebuilt certificate does not verify');
  await platform.db.transaction().execute((trx) => new PkiStore(trx).insertCertificates(certificates));
  return { key, devices };
}
