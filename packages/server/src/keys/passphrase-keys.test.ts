/**
 * Passphrase-encrypted key files as every offline key is kept: what is written (read back by
 * OpenSSL itself), which passphrases are refused, how a file from before the policy is reported,
 * opened and re-encrypted in place, and that no write leaves a half-written or replaced key.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Openssl } from '../testing/openssl.js';
import {
  checkPassphrase,
  encryptPrivateKey,
  KEY_ENCRYPTION,
  keyProtectionOf,
  openKeyFile,
  rekeyFiles,
  writeNewKeyFile,
} from './passphrase-keys.js';

const PASSPHRASE = 'a long offline passphrase 42';
const NEXT = 'another offline passphrase 9';

const spki = (key: KeyObject) => (key.type === 'public' ? key : createPublicKey(key)).export({ type: 'spki', format: 'pem' });
/** A key file as node's own export writes one: PBKDF2 at OpenSSL's default 2,048 iterations. */
const legacyPem = (key: KeyObject, passphrase: string) =>
  key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;

/** The PBKDF2 iteration count as `openssl asn1parse` shows it (the INTEGER after the salt). */
async function opensslIterations(ssl: Openssl, path: string): Promise<number> {
  const lines = (await ssl.must(['asn1parse', '-in', path])).split('\n');
  const kdf = lines.findIndex((l) => l.includes(':PBKDF2'));
  const count = lines.slice(kdf).find((l) => / prim: INTEGER /.test(l));
  return parseInt(count!.split(':').pop()!.trim(), 16);
}

describe('passphrase-encrypted key files', () => {
  const ssl = new Openssl();
  const at = (name: string) => join(ssl.dir, name);
  after(() => ssl.close());

  it('writes PBES2 with PBKDF2-HMAC-SHA256 at 600,000 iterations and AES-256-CBC, which openssl opens, for Ed25519 and P-256 keys', async () => {
    for (const [name, pair] of [
      ['ed25519', generateKeyPairSync('ed25519')],
      ['p256', generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ] as const) {
      writeNewKeyFile(at(`${name}.key`), encryptPrivateKey(pair.privateKey, PASSPHRASE));
      assert.equal(statSync(at(`${name}.key`)).mode & 0o777, 0o600);
      const parsed = await ssl.must(['asn1parse', '-in', at(`${name}.key`)]);
      assert.match(parsed, /:PBES2[\s\S]*:PBKDF2[\s\S]*:hmacWithSHA256[\s\S]*:aes-256-cbc/);
      assert.equal(await opensslIterations(ssl, at(`${name}.key`)), 600_000);
      assert.ok(KEY_ENCRYPTION.iterations >= 600_000);
      ssl.write('pass', `${PASSPHRASE}\n`);
      assert.equal(await ssl.must(['pkey', '-in', at(`${name}.key`), '-passin', 'file:pass', '-pubout']), spki(pair.publicKey));
      assert.equal((await ssl.run(['pkey', '-in', at(`${name}.key`), '-passin', 'pass:not the passphrase', '-noout'])).ok, false);
      const opened = openKeyFile(at(`${name}.key`), PASSPHRASE, 'REKEY');
      assert.equal(opened.warning, null);
      assert.deepEqual([opened.protection.iterations, opened.protection.current], [600_000, true]);
    }
  });

  it('refuses a missing, short, repeated, sequential or breached passphrase with a stable code', () => {
    assert.throws(() => checkPassphrase(undefined, 'set X'), { code: 'keys.passphrase_missing', message: /set X/ });
    assert.throws(() => checkPassphrase('', 'set X'), { code: 'keys.passphrase_missing' });
    for (const weak of ['a', 'short words', 'aaaaaaaaaaaaaaaa', 'abcdefghijklmnop', '123456789012', 'password1234']) {
      assert.throws(() => checkPassphrase(weak, 'set X'), { code: 'keys.passphrase_weak' }, weak);
    }
    assert.throws(() => encryptPrivateKey(generateKeyPairSync('ed25519').privateKey, 'a'), {
      code: 'keys.passphrase_weak',
      message: /at least 12 characters/,
    });
    assert.equal(checkPassphrase(PASSPHRASE, 'set X'), PASSPHRASE);
  });

  it("reports a key file from node's own export (2,048 iterations) and its weak passphrase, still opens it, and re-encrypts it in place at the policy", async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    writeFileSync(at('legacy.key'), legacyPem(privateKey, 'a'), { mode: 0o644 });
    assert.equal(await opensslIterations(ssl, at('legacy.key')), 2048);

    const opened = openKeyFile(at('legacy.key'), 'a', 'bulwark firmware rekey --key legacy.key');
    assert.equal(spki(opened.privateKey), spki(publicKey));
    assert.equal(opened.protection.current, false);
    assert.match(opened.warning!, /2,048 iterations/);
    assert.match(opened.warning!, /passphrase would be refused/);
    assert.match(opened.warning!, /Re-encrypt it: bulwark firmware rekey --key legacy\.key$/);

    assert.throws(
      () => rekeyFiles([at('legacy.key')], 'a', 'a', 'set NEW'),
      { code: 'keys.passphrase_weak' },
      'a weak new passphrase is refused',
    );
    const [result] = rekeyFiles([at('legacy.key')], 'a', NEXT, 'set NEW');
    assert.match(result!.before.description, /PBKDF2-HMAC-SHA256, 2,048 iterations, AES-256-CBC/);
    assert.deepEqual([result!.after.iterations, result!.after.current], [600_000, true]);
    assert.equal(await opensslIterations(ssl, at('legacy.key')), 600_000);
    assert.equal(statSync(at('legacy.key')).mode & 0o777, 0o600);
    assert.equal(spki(openKeyFile(at('legacy.key'), NEXT, 'REKEY').privateKey), spki(publicKey));
    assert.throws(
      () => openKeyFile(at('legacy.key'), 'a', 'REKEY'),
      { code: 'keys.passphrase_wrong' },
      'the old passphrase no longer opens it',
    );
    assert.deepEqual(
      readdirSync(ssl.dir).filter((f) => f.includes('.tmp-')),
      [],
      'no temporary file is left',
    );
  });

  it('changes no file when one of several does not open with the passphrase', () => {
    writeFileSync(at('one.key'), legacyPem(generateKeyPairSync('ed25519').privateKey, PASSPHRASE));
    writeFileSync(at('two.key'), legacyPem(generateKeyPairSync('ed25519').privateKey, 'another passphrase entirely'));
    const before = [readFileSync(at('one.key')), readFileSync(at('two.key'))];
    assert.throws(() => rekeyFiles([at('one.key'), at('two.key')], PASSPHRASE, NEXT, 'set NEW'), {
      code: 'keys.passphrase_wrong',
      message: /two\.key/,
    });
    assert.deepEqual([readFileSync(at('one.key')), readFileSync(at('two.key'))], before);
  });

  it('never writes a new key file over an existing one', () => {
    writeFileSync(at('taken.key'), 'precious');
    assert.throws(() => writeNewKeyFile(at('taken.key'), encryptPrivateKey(generateKeyPairSync('ed25519').privateKey, PASSPHRASE)), {
      code: 'keys.key_file_exists',
    });
    assert.equal(readFileSync(at('taken.key'), 'utf8'), 'precious');
    assert.deepEqual(
      readdirSync(ssl.dir).filter((f) => f.includes('.tmp-')),
      [],
    );
  });

  it('tells a file that is not a private key from a wrong passphrase, and reports an unencrypted key', () => {
    writeFileSync(at('key.pub'), '{"keytype":"ed25519"}');
    assert.throws(() => openKeyFile(at('key.pub'), PASSPHRASE, 'REKEY'), { code: 'keys.key_file_invalid' });
    assert.throws(() => openKeyFile(at('missing.key'), PASSPHRASE, 'REKEY'), { code: 'keys.key_file_invalid' });
    const cert = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    assert.throws(() => keyProtectionOf(cert, 'cert.pem'), { code: 'keys.key_file_invalid', message: /CERTIFICATE/ });
    writeFileSync(at('plain.key'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
    assert.match(openKeyFile(at('plain.key'), PASSPHRASE, 'REKEY').warning!, /not encrypted, below the policy/);
  });
});
