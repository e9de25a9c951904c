/**
 * Enrollment over EST (RFC 7030), the device's side: `enroll` makes a new key on the device,
 * sends its CSR with the one-time enrollment token (`simpleenroll`), and stores the key and the
 * certificate that comes back; `renew` does the same with the current certificate as TLS client
 * certificate (`simplereenroll`), with a new key unless told to keep the old one. The key never
 * leaves the device; it is installed only together with its certificate.
 */
import { certificatesOfPkcs7, certifiesKey, createCsr, generateDeviceKey, type DeviceKey } from './keys.js';
import { DeviceError } from './errors.js';
import { httpsRequest } from './http.js';
import { deviceIdOf, IdentityStore, type DeviceIdentity } from './identity.js';
import { Pkcs11Key, type Pkcs11KeyOptions } from './pkcs11.js';

export interface EnrollOptions {
  /** The platform's HTTPS address, e.g. https://bulwark.example.com:8443 */
  apiUrl: string;
  /** The deployment root (PEM) to trust; stored as ca.pem. */
  ca: string;
  /** The one-time enrollment token an operator created for this device. */
  token: string;
  deviceId: string;
  /** The identity directory (created 0700). */
  dir: string;
  /** Generate the key on this PKCS#11 token instead of in `dir/device.key`. */
  pkcs11?: Pkcs11KeyOptions;
}

export interface RenewOptions {
  apiUrl: string;
  dir: string;
  /** Keep the current key (renewal) instead of making a new one (re-key, the default). */
  keepKey?: boolean;
  /** The token's user PIN when the key is on a PKCS#11 token (default: BULWARK_PKCS11_PIN). */
  pkcs11Pin?: string;
}

const PKCS10 = 'application/pkcs10';

/** Enrolls with a one-time token; returns the stored identity. */
export async function enroll(options: EnrollOptions): Promise<DeviceIdentity> {
  // The token first: a wrong PIN or missing token leaves nothing on disk.
  const key = options.pkcs11 ? Pkcs11Key.generate(options.pkcs11) : generateDeviceKey();
  const store = new IdentityStore(options.dir, options.pkcs11 ? { pkcs11Pin: options.pkcs11.pin } : {});
  return withNewKey(key, async () => {
    store.prepare();
    store.writeCa(options.ca);
    const answer = await est(options.apiUrl, 'simpleenroll', options.ca, await createCsr(key, options.deviceId), {
      authorization: `Bearer ${options.token}`,
    });
    return install(store, key, answer, options.deviceId);
  });
}

/** Renews the certificate with the current one (and, by default, a new key); returns the new identity. */
export async function renew(options: RenewOptions): Promise<DeviceIdentity> {
  const store = new IdentityStore(options.dir, options.pkcs11Pin === undefined ? {} : { pkcs11Pin: options.pkcs11Pin });
  const current = store.load();
  if (options.keepKey) {
    const answer = await est(
      options.apiUrl,
      'simplereenroll',
      current.ca,
      await createCsr(current.key, current.deviceId),
      {},
      { cert: current.cert, key: current.key },
    );
    return install(store, current.key, answer, current.deviceId);
  }
  const key = typeof current.key === 'string' ? generateDeviceKey() : current.key.successor();
  const renewed = await withNewKey(key, async () => {
    const answer = await est(
      options.apiUrl,
      'simplereenroll',
      current.ca,
      await createCsr(key, current.deviceId),
      {},
      { cert: current.cert, key: current.key },
    );
    return install(store, key, answer, current.deviceId);
  });
  if (typeof current.key !== 'string') current.key.destroy();
  return renewed;
}

/** Runs `use` with a freshly made key; a token key is deleted again when it fails, and its generating session closed. */
async function withNewKey(key: DeviceKey, use: () => Promise<DeviceIdentity>): Promise<DeviceIdentity> {
  if (typeof key === 'string') return use();
  try {
    const identity = await use();
    key.close();
    return identity;
  } catch (error) {
    key.destroy();
    throw error;
  }
}

async function est(
  apiUrl: string,
  operation: string,
  ca: string,
  csr: Buffer,
  headers: Record<string, string>,
  client?: { cert: string; key: DeviceKey },
): Promise<string> {
  const url = new URL(`/.well-known/est/${operation}`, apiUrl).toString();
  const answer = await httpsRequest(url, {
    method: 'POST',
    ca,
    headers: { 'content-type': PKCS10, ...headers },
    body: csr.toString('base64'),
    ...client,
  });
  return answer.text;
}

/** Picks the certificate for our key out of the PKCS#7 answer, checks it names the device, stores the pair. */
function install(store: IdentityStore, key: DeviceKey, pkcs7: string, deviceId: string): DeviceIdentity {
  let certs: string[];
  try {
    certs = certificatesOfPkcs7(pkcs7);
  } catch (error) {
    throw new DeviceError(`The EST answer is not a base64 PKCS#7 certs-only structure: ${(error as Error).message}`, 'est.bad_answer');
  }
  const leaf = certs.find((pem) => certifiesKey(pem, key));
  if (!leaf) throw new DeviceError('The EST answer holds no certificate for the key this device sent', 'est.bad_answer');
  if (deviceIdOf(leaf) !== deviceId) throw new DeviceError(`The certificate names ${deviceIdOf(leaf)}, not ${deviceId}`, 'est.bad_answer');
  store.installPair(key, [leaf, ...certs.filter((pem) => pem !== leaf)].join('\n'));
  return store.load();
}
