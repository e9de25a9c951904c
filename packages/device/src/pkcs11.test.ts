import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { verify, X509Certificate } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect, promisify } from 'node:util';
import pkcs11js from 'pkcs11js';
import { DeviceClient } from './client.js';
import { enroll, renew } from './est.js';
import { CERT_FILE, IdentityStore, KEY_FILE, TOKEN_KEY_FILE } from './identity.js';
import { signDer } from './keys.js';
import { DEFAULT_ENGINE, PIN_ENV, Pkcs11Error, Pkcs11Key, SOFTHSM_MODULE } from './pkcs11.js';
import { presenceOnline, startDevicePlatform, tempDir, type DevicePlatform } from './testing/platform.js';

const run = promisify(execFile);
const PIN = '4321-device';

/** A SoftHSM configuration in a temp dir with two initialised tokens; SOFTHSM2_CONF points at it before any C_Initialize. */
function softHsm(dir: string, labels: string[]): void {
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  for (const label of labels) {
    const init = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', '8765-so', '--pin', PIN], {
      encoding: 'utf8',
    });
    assert.equal(
      init.status,
      0,
      `softhsm2-util --init-token failed (Debian package softhsm2 is required): ${init.error?.message ?? init.stderr}`,
    );
  }
}

/** A session of the test's own on the token, to look at the key as the token stores it. */
function inspectToken(label: string): { p11: pkcs11js.PKCS11; session: Buffer } {
  const p11 = new pkcs11js.PKCS11();
  p11.load(SOFTHSM_MODULE);
  try {
    p11.C_Initialize();
  } catch (error) {
    if (!/ALREADY_INITIALIZED/.test((error as Error).message)) throw error;
  }
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === label)!;
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
  try {
    p11.C_Login(session, pkcs11js.CKU_USER, PIN);
  } catch (error) {
    if (!/ALREADY_LOGGED_IN/.test((error as Error).message)) throw error;
  }
  return { p11, session };
}

function objectsLabelled(label: string, keyLabel: string, objectClass: number): Buffer[] {
  const { p11, session } = inspectToken(label);
  try {
    p11.C_FindObjectsInit(session, [
      { type: pkcs11js.CKA_CLASS, value: objectClass },
      { type: pkcs11js.CKA_LABEL, value: keyLabel },
    ]);
    const found = p11.C_FindObjects(session, 10);
    p11.C_FindObjectsFinal(session);
    return found;
  } finally {
    p11.C_CloseSession(session);
  }
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

const isPkcs11Error = (code: string) => (error: unknown) => {
  assert.ok(error instanceof Pkcs11Error, `expected a Pkcs11Error, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return true;
};

describe('a device key on a PKCS#11 token (SoftHSM), against a real platform', { concurrency: 1 }, () => {
  let p: DevicePlatform;
  const temp = tempDir('pkcs11');
  const token = { module: SOFTHSM_MODULE, tokenLabel: 'device', pin: PIN };

  before(async () => {
    // CI installs these; a missing one is a failure, not a skip.
    assert.ok(existsSync(SOFTHSM_MODULE), `${SOFTHSM_MODULE} is missing: apt install softhsm2`);
    assert.ok(existsSync(DEFAULT_ENGINE), `${DEFAULT_ENGINE} is missing: apt install libengine-pkcs11-openssl`);
    softHsm(temp.dir, ['device', 'spare']);
    p = await startDevicePlatform();
  });
  after(async () => {
    await p?.close();
    temp.remove();
  });

  const enrollOnToken = async (keyLabel: string) => {
    const deviceId = await p.register();
    const dir = join(temp.dir, keyLabel);
    const identity = await enroll({
      apiUrl: p.apiUrl,
      ca: p.t.ca,
      token: await p.enrollmentToken(deviceId),
      deviceId,
      dir,
      pkcs11: { ...token, keyLabel },
    });
    return { deviceId, dir, identity };
  };

  it('enrolls with a key generated on the token: the certificate certifies the token key, the chain verifies, no private key on disk', async () => {
    const { deviceId, dir, identity } = await enrollOnToken('enrolled');
    assert.ok(identity.key instanceof Pkcs11Key);

    // The certified public key is the one the token holds (read from the token by the test itself).
    const cert = new X509Certificate(readFileSync(join(dir, CERT_FILE)));
    assert.equal(cert.subject, `CN=${deviceId}`);
    const [publicHandle] = objectsLabelled('device', 'enrolled', pkcs11js.CKO_PUBLIC_KEY);
    const { p11, session } = inspectToken('device');
    const point = p11.C_GetAttributeValue(session, publicHandle!, [{ type: pkcs11js.CKA_EC_POINT }])[0]!.value as Buffer;
    const certSpki = cert.publicKey.export({ format: 'der', type: 'spki' });
    assert.ok(certSpki.subarray(-65).equals(point.subarray(-65)), 'the certificate holds the token’s EC point');
    assert.ok(identity.key.publicKey.export({ format: 'der', type: 'spki' }).equals(certSpki));

    // The token refuses to hand out the private key.
    const [privateHandle] = objectsLabelled('device', 'enrolled', pkcs11js.CKO_PRIVATE_KEY);
    assert.throws(() => p11.C_GetAttributeValue(session, privateHandle!, [{ type: pkcs11js.CKA_VALUE }]), /CKR_ATTRIBUTE_SENSITIVE/);
    const flags = p11.C_GetAttributeValue(session, privateHandle!, [
      { type: pkcs11js.CKA_SENSITIVE },
      { type: pkcs11js.CKA_EXTRACTABLE },
      { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
      { type: pkcs11js.CKA_TOKEN },
      { type: pkcs11js.CKA_PRIVATE },
    ]);
    assert.deepEqual(
      flags.map((a) => (a.value as Buffer)[0]),
      [1, 0, 1, 1, 1],
    );
    p11.C_CloseSession(session);

    // OpenSSL accepts the chain, through the platform's device CA, up to the root the device trusts, for client authentication.
    const deviceCa = join(p.t.config.dataDir, 'pki', 'device-ca.pem');
    const verified = await run('openssl', [
      'verify',
      '-CAfile',
      join(dir, 'ca.pem'),
      '-untrusted',
      deviceCa,
      '-purpose',
      'sslclient',
      join(dir, CERT_FILE),
    ]);
    assert.equal(verified.stdout.trim(), `${join(dir, CERT_FILE)}: OK`);

    // On disk: certificate, root and a reference without the PIN; no private key anywhere.
    assert.equal(existsSync(join(dir, KEY_FILE)), false);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, TOKEN_KEY_FILE), 'utf8')), {
      module: SOFTHSM_MODULE,
      tokenLabel: 'device',
      keyLabel: 'enrolled',
      engine: DEFAULT_ENGINE,
    });
    for (const file of filesUnder(dir)) {
      const text = readFileSync(file, 'utf8');
      assert.doesNotMatch(text, /PRIVATE KEY/, file);
      assert.ok(!text.includes(PIN), `${file} holds the PIN`);
    }
    // Nor does the PIN show when the identity is logged.
    assert.ok(!JSON.stringify(identity).includes(PIN) && !inspect(identity, { depth: 5 }).includes(PIN));
  });

  it('connects over MQTT with mutual TLS using the token key, and the platform stores its telemetry', async () => {
    const { deviceId, dir } = await enrollOnToken('mqtt');
    const client = DeviceClient.fromIdentity(dir, { brokerUrl: p.brokerUrl, pkcs11Pin: PIN });
    try {
      await client.connect();
      client.sendTelemetry({ keyOnToken: 1, temperature: 20.5 });
      await client.drained(10_000);
      assert.equal((await presenceOnline(p.t.platform.db, deviceId)).protocol, 'mqtts');
    } finally {
      await client.stop();
    }
    const rows = await p.t.platform.telemetry.store.range(deviceId, 0, Number.MAX_SAFE_INTEGER, 10);
    assert.deepEqual(
      rows.map((r) => JSON.parse(r.data) as unknown),
      [{ keyOnToken: 1, temperature: 20.5 }],
    );
  });

  it('re-enrolls over EST with mutual TLS using the token key: a new key on the token, the old one deleted, and the new one connects', async () => {
    const { deviceId, dir, identity: first } = await enrollOnToken('renewed');
    const renewed = await renew({ apiUrl: p.apiUrl, dir, pkcs11Pin: PIN });
    assert.ok(renewed.key instanceof Pkcs11Key);
    assert.match(renewed.key.reference.keyLabel, /^renewed\.[0-9a-f]{12}$/);
    assert.notEqual(new X509Certificate(renewed.cert).serialNumber, new X509Certificate(first.cert).serialNumber);
    assert.ok(
      !renewed.key.publicKey
        .export({ format: 'der', type: 'spki' })
        .equals((first.key as Pkcs11Key).publicKey.export({ format: 'der', type: 'spki' })),
    );
    assert.equal(objectsLabelled('device', 'renewed', pkcs11js.CKO_PRIVATE_KEY).length, 0, 'the replaced key is gone from the token');
    const audit = await p.t.platform.db.selectFrom('audit_log').select('details').where('action', '=', 'pki.certificate_renewed').execute();
    assert.ok(audit.some((row) => JSON.parse(row.details).deviceId === deviceId && JSON.parse(row.details).rekeyed === true));

    // Renewal keeping the key signs the CSR with the same token key again.
    const kept = await renew({ apiUrl: p.apiUrl, dir, pkcs11Pin: PIN, keepKey: true });
    assert.ok(kept.key instanceof Pkcs11Key);
    assert.equal(kept.key.reference.keyLabel, renewed.key.reference.keyLabel);

    const client = new DeviceClient({
      brokerUrl: p.brokerUrl,
      deviceId,
      ca: kept.ca,
      credentials: { type: 'certificate', key: kept.key, cert: kept.cert },
    });
    try {
      await client.connect();
      client.sendTelemetry({ renewedOnToken: true });
      await client.drained(10_000);
    } finally {
      await client.stop();
    }
    assert.equal(await p.stored(deviceId), 1);
  });

  it('signs with the token key in DER, as node:crypto does for a PEM key (the signed version report)', async () => {
    // The PIN from the environment this time (the service's way of passing it).
    process.env[PIN_ENV] = PIN;
    let identity;
    try {
      identity = new IdentityStore(join(temp.dir, 'enrolled')).load();
    } finally {
      delete process.env[PIN_ENV];
    }
    const certKey = new X509Certificate(identity.cert).publicKey;
    // Enough signatures to meet r and s with a high first bit and with leading zero bytes.
    for (let i = 0; i < 64; i++) {
      const data = Buffer.from(`report ${i}`);
      const signature = signDer(identity.key, data);
      assert.equal(verify('sha256', data, certKey, signature), true);
      assert.equal(verify('sha256', Buffer.from(`other ${i}`), certKey, signature), false);
    }
  });

  it('refuses a wrong PIN with pkcs11.pin_incorrect and writes nothing, on a fresh token and on one this process is logged in to', async () => {
    for (const tokenLabel of ['spare', 'device']) {
      const deviceId = await p.register();
      const dir = join(temp.dir, `wrong-pin-${tokenLabel}`);
      await assert.rejects(
        enroll({
          apiUrl: p.apiUrl,
          ca: p.t.ca,
          token: await p.enrollmentToken(deviceId),
          deviceId,
          dir,
          pkcs11: { module: SOFTHSM_MODULE, tokenLabel, pin: '0000-wrong', keyLabel: 'never' },
        }),
        isPkcs11Error('pkcs11.pin_incorrect'),
      );
      assert.equal(existsSync(dir), false, 'nothing written');
    }
    assert.equal(objectsLabelled('spare', 'never', pkcs11js.CKO_PRIVATE_KEY).length, 0);
    // A stored identity opened with the wrong PIN is refused too.
    assert.throws(() => new IdentityStore(join(temp.dir, 'enrolled'), { pkcs11Pin: 'nope' }).load(), isPkcs11Error('pkcs11.pin_incorrect'));
  });

  it('names what is wrong: module missing, token not found, key label not found or taken, PIN missing, engine not installed', async () => {
    const deviceId = await p.register();
    const attempt = (pkcs11: { module: string; tokenLabel: string; keyLabel: string; pin: string }) => async () =>
      enroll({ apiUrl: p.apiUrl, ca: p.t.ca, token: await p.enrollmentToken(deviceId), deviceId, dir: join(temp.dir, 'refused'), pkcs11 });
    await assert.rejects(
      attempt({ ...token, module: '/usr/lib/nowhere/libpkcs11-missing.so', keyLabel: 'x' }),
      isPkcs11Error('pkcs11.module_missing'),
    );
    // No default module: a key must not land in SoftHSM by accident.
    await assert.rejects(attempt({ ...token, module: '', keyLabel: 'x' }), isPkcs11Error('pkcs11.module_missing'));
    await assert.rejects(attempt({ ...token, tokenLabel: 'no-such-token', keyLabel: 'x' }), isPkcs11Error('pkcs11.token_not_found'));
    await assert.rejects(attempt({ ...token, keyLabel: 'enrolled' }), isPkcs11Error('pkcs11.key_exists'));
    assert.equal(existsSync(join(temp.dir, 'refused')), false);

    // A reference naming a key the token does not hold.
    const lost = join(temp.dir, 'lost');
    cpSync(join(temp.dir, 'enrolled'), lost, { recursive: true });
    const reference = JSON.parse(readFileSync(join(lost, TOKEN_KEY_FILE), 'utf8')) as Record<string, string>;
    writeFileSync(join(lost, TOKEN_KEY_FILE), JSON.stringify({ ...reference, keyLabel: 'deleted' }));
    assert.throws(() => new IdentityStore(lost, { pkcs11Pin: PIN }).load(), isPkcs11Error('pkcs11.key_not_found'));
    assert.throws(() => new IdentityStore(lost).load(), isPkcs11Error('pkcs11.pin_missing'));

    // Without the OpenSSL engine there is no mutual TLS with a token key: renewal says so.
    const noEngine = join(temp.dir, 'no-engine');
    cpSync(join(temp.dir, 'enrolled'), noEngine, { recursive: true });
    writeFileSync(join(noEngine, TOKEN_KEY_FILE), JSON.stringify({ ...reference, engine: '/usr/lib/nowhere/engines-3/pkcs11.so' }));
    await assert.rejects(renew({ apiUrl: p.apiUrl, dir: noEngine, pkcs11Pin: PIN, keepKey: true }), (error: unknown) => {
      isPkcs11Error('pkcs11.engine_missing')(error);
      assert.match((error as Error).message, /libengine-pkcs11-openssl/);
      return true;
    });
  });
});
