/**
 * The firmware ceremony with offline keys on PKCS#11 tokens (SoftHSM): the targets key and two
 * release keys generated on two tokens, a release signed by both (threshold 2) in one `bulwark
 * firmware sign`, verified by tuf-js and accepted by the server; the private keys never readable
 * (CKA_VALUE refused) and never in a file; wrong PINs, PINs in URIs and unknown keys refused
 * with nothing written.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Metadata, MetadataKind, type Targets } from '@tufjs/models';
import pkcs11js from 'pkcs11js';
import { productRoleOf } from '@bulwark/protocol';
import { cliActor } from '../accounts/roles.js';
import { Pkcs11Error, Pkcs11Token } from '../keys/pkcs11.js';
import { loadConfig, type Config } from '../ops/config.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { openPlatform } from '../platform.js';
import { bulwark } from '../testing/cli.js';
import { addTestToken, createTestToken, softHsmSkip, type TestToken } from '../testing/softhsm.js';
import { parseTokenKeyUri } from '../updates/tuf/token-keys.js';

const PASSPHRASE = 'a long offline passphrase 42';

describe('bulwark firmware with keys on PKCS#11 tokens', { skip: softHsmSkip }, () => {
  let dir: string;
  let token: TestToken;
  let config: Config;
  let orgId: string;
  let productId: string;
  const at = (name: string) => join(dir, name);
  const uri = (tokenLabel: string, object: string) => `pkcs11:token=${tokenLabel};object=${object}`;
  const env = () => ({ BULWARK_KEY_PASSPHRASE: PASSPHRASE, BULWARK_PKCS11_PIN: token.pin, SOFTHSM2_CONF: process.env.SOFTHSM2_CONF });
  const run = async (args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const result = await bulwark(['firmware', ...args], { ...env(), ...extra });
    assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    assert.ok(!`${result.stdout}${result.stderr}`.includes(token.pin), 'the PIN is never printed');
    return result;
  };
  const refused = async (args: string[], code: string, extra: NodeJS.ProcessEnv = {}) => {
    const result = await bulwark(['firmware', ...args], { ...env(), ...extra });
    assert.notEqual(result.code, 0, `${args.join(' ')} must fail`);
    assert.match(result.stderr, new RegExp(`\\[${code.replace('.', '\\.')}\\]`), result.stderr);
    return result;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bulwark-firmware-token-'));
    token = createTestToken('ceremony-a');
    addTestToken('ceremony-b');
    config = loadConfig({ dataDir: at('data'), env: {} });
    const init = await initialize(config, DEFAULT_INIT, { env: {} });
    const platform = await openPlatform(config, { env: {} });
    try {
      orgId = (await platform.accounts.store.organizationBySlug(init.organization.slug))!.id;
      productId = (await platform.devices.service.createProduct(cliActor(orgId, 'test'), { name: 'Token sensor' })).id;
    } finally {
      await platform.close();
    }
    await run(['online-keys', '--data-dir', at('data'), '--org', orgId, '--out', at('online.json')]);
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    token?.remove();
  });

  it('generates keys on two tokens, signs a release with both (threshold 2) that tuf-js verifies and the server accepts', async () => {
    await run(['keygen', '--out', at('root-1')]);
    const targets = await run(['keygen', '--out', at('targets'), '--pkcs11', uri('ceremony-a', 'targets'), '--json']);
    assert.equal(JSON.parse(targets.stdout).object, 'targets');
    await run(['keygen', '--out', at('release-1'), '--pkcs11', uri('ceremony-a', 'release-1')]);
    await run(['keygen', '--out', at('release-2'), '--pkcs11', uri('ceremony-b', 'release-2')]);
    for (const name of ['targets', 'release-1', 'release-2']) {
      assert.ok(existsSync(at(`${name}.pub`)));
      assert.ok(!existsSync(at(`${name}.key`)), `no private key file for the token key ${name}`);
    }
    const duplicate = await refused(['keygen', '--out', at('again'), '--pkcs11', uri('ceremony-a', 'release-1')], 'keys.token_key_exists');
    assert.ok(!existsSync(at('again.pub')), 'a refused keygen writes nothing');

    await run(
      [
        'root',
        'create',
        '--online',
        at('online.json'),
        '--root-key',
        at('root-1.pub'),
        '--threshold',
        '1',
        '--targets-key',
        at('targets.pub'),
      ].concat(['--out', at('ceremony')]),
    );
    await run(['root', 'sign', '--key', at('root-1.key'), at('ceremony/root.json'), at('ceremony/director-root.json')]);
    await run([
      'delegate',
      '--targets-key',
      uri('ceremony-a', 'targets'),
      '--product',
      productId,
      '--key',
      at('release-1.pub'),
      at('release-2.pub'),
      '--threshold',
      '2',
      '--metadata',
      'none',
      '--out',
      at('targets.json'),
    ]);
    const image = randomBytes(4096);
    writeFileSync(at('fw.bin'), image);
    const signArgs = (out: string, ...keys: string[]) => [
      'sign',
      '--image',
      at('fw.bin'),
      '--product',
      productId,
      '--version',
      '2.0.0',
      '--security-version',
      '1',
      '--hardware',
      'hw-a',
      '--key',
      ...keys,
      '--out',
      at(out),
      '--json',
    ];
    const one = await run(signArgs('one.json', uri('ceremony-a', 'release-1')));
    const both = await run(signArgs('both.json', uri('ceremony-a', 'release-1'), uri('ceremony-b', 'release-2')));
    const { sha256, length } = JSON.parse(both.stdout);
    assert.deepEqual(JSON.parse(one.stdout).sha256, sha256);

    // tuf-js: the delegating targets verify the product line's metadata under the delegation's keys and threshold.
    const json = (name: string) => JSON.parse(readFileSync(at(name), 'utf8'));
    const topLevel = Metadata.fromJSON(MetadataKind.Targets, json('targets.json')) as Metadata<Targets>;
    const role = productRoleOf(productId);
    topLevel.verifyDelegate(role, Metadata.fromJSON(MetadataKind.Targets, json('both.json')));
    assert.throws(
      () => topLevel.verifyDelegate(role, Metadata.fromJSON(MetadataKind.Targets, json('one.json'))),
      /was signed by 1\/2 keys/,
      'one of two release signatures is under the threshold',
    );

    const platform = await openPlatform(config, { env: {} });
    try {
      const actor = cliActor(orgId, 'test');
      await platform.updates.repository.acceptRoot(actor, {
        root: json('ceremony/root.json'),
        directorRoot: json('ceremony/director-root.json'),
      });
      assert.equal((await platform.updates.repository.acceptTargets(actor, json('targets.json'))).ready, true);
      await platform.updates.blobs.put(Readable.from(image), { sha256, length });
      const release = {
        productId,
        version: '2.0.0',
        notes: '',
        sbom: { bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components: [] },
      };
      await assert.rejects(platform.updates.releases.create(actor, { ...release, metadata: json('one.json') }), 'one signature is refused');
      const created = await platform.updates.releases.create(actor, { ...release, metadata: json('both.json') });
      assert.equal(created.sha256, sha256);
    } finally {
      await platform.close();
    }
    void duplicate;
  });

  it('never lets a token key be read, and refuses a wrong PIN, a PIN in the URI and an unknown key, writing nothing', async () => {
    const opened = Pkcs11Token.open({ tokenLabel: 'ceremony-a', pin: token.pin });
    try {
      const signer = opened.signer('release-1');
      assert.equal(signer.algorithm, 'ed25519');
      assert.throws(() => opened.attribute(signer.privateKey, pkcs11js.CKA_VALUE), Pkcs11Error, 'CKA_VALUE of the private key is refused');
    } finally {
      opened.close();
    }
    for (const file of readdirSync(dir)) {
      if (!file.endsWith('.json') && !file.endsWith('.pub')) continue;
      assert.doesNotMatch(readFileSync(at(file), 'utf8'), /PRIVATE KEY/, `${file} holds no private key`);
    }

    writeFileSync(at('fw2.bin'), randomBytes(100));
    const args = (key: string, out: string) =>
      [
        'sign',
        '--image',
        at('fw2.bin'),
        '--product',
        productId,
        '--version',
        '2.0.1',
        '--security-version',
        '1',
        '--hardware',
        'hw-a',
      ].concat(['--key', key, '--out', at(out)]);
    await refused(args(uri('ceremony-a', 'release-1'), 'wrong-pin.json'), 'keys.hsm_error', { BULWARK_PKCS11_PIN: '0000-wrong' });
    await refused(args(uri('ceremony-a', 'release-1'), 'no-pin.json'), 'keys.pkcs11_pin_missing', { BULWARK_PKCS11_PIN: '' });
    await refused(args(`${uri('ceremony-a', 'release-1')}?pin-value=1234`, 'pin-uri.json'), 'keys.pkcs11_uri_invalid');
    await refused(args(uri('ceremony-a', 'nobody'), 'unknown.json'), 'keys.hsm_error');
    await refused(args('pkcs11:object=release-1', 'no-token.json'), 'keys.pkcs11_uri_invalid');
    for (const out of ['wrong-pin.json', 'no-pin.json', 'pin-uri.json', 'unknown.json', 'no-token.json'])
      assert.ok(!existsSync(at(out)), `${out} is not written`);
  });

  it('parses the RFC 7512 subset it documents', () => {
    assert.deepEqual(parseTokenKeyUri('pkcs11:token=My%20HSM;object=release-1?module-path=/opt/hsm.so&pin-env=HSM_PIN'), {
      token: 'My HSM',
      object: 'release-1',
      module: '/opt/hsm.so',
      pinEnv: 'HSM_PIN',
    });
    for (const bad of [
      'pkcs11:token=a',
      'pkcs11:token=a;object=b;colour=red',
      'pkcs11:token=a;object=b?pin-source=file:/pin',
      'pkcs11:token=a;token=b;object=c',
      'pkcs11:token=a;object=b?pin-env=lower',
    ])
      assert.throws(() => parseTokenKeyUri(bad), { code: 'keys.pkcs11_uri_invalid' }, bad);
  });
});
