/**
 * The firmware signing ceremony as key holders run it: every step a real `bulwark firmware …`
 * process (online keys from a server data directory set up in-process, the rest offline), and
 * the outputs accepted by the repository's own checks. The key files are checked with openssl:
 * what keygen writes, what it refuses, and `rekey` bringing a key from before the policy up to it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliActor } from '../accounts/roles.js';
import { loadConfig, type Config } from '../ops/config.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { openPlatform } from '../platform.js';
import { bulwark } from '../testing/cli.js';
import { Openssl } from '../testing/openssl.js';
import { checkRoot } from '../updates/tuf/accept.js';
import { keyHolder } from '../testing/tuf-ceremony.js';
import { buildRoot, expiresIn, publicKeyJson, publicKeyOf, readRoot, writeMetadata } from '../updates/tuf/offline.js';

const PASSPHRASE = 'a long offline passphrase 42';

/** PBKDF2's iteration count in a key file, as `openssl asn1parse` reads it (the INTEGER after the salt). */
async function iterationsOf(path: string): Promise<number> {
  const ssl = new Openssl();
  try {
    const lines = (await ssl.must(['asn1parse', '-in', path])).split('\n');
    const count = lines.slice(lines.findIndex((l) => l.includes(':PBKDF2'))).find((l) => / prim: INTEGER /.test(l));
    return parseInt(count!.split(':').pop()!.trim(), 16);
  } finally {
    ssl.close();
  }
}

describe('bulwark firmware (CLI ceremony)', () => {
  let dir: string;
  let config: Config;
  let slug: string;
  let orgId: string;
  let productId: string;
  const at = (name: string) => join(dir, name);
  const run = async (args: string[], env: NodeJS.ProcessEnv = { BULWARK_KEY_PASSPHRASE: PASSPHRASE }) => {
    const result = await bulwark(['firmware', ...args], env);
    assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    assert.ok(!result.stdout.includes(PASSPHRASE) && !result.stderr.includes(PASSPHRASE), 'the passphrase is never printed');
    return result;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bulwark-firmware-cli-'));
    config = loadConfig({ dataDir: at('data'), env: {} });
    const init = await initialize(config, DEFAULT_INIT, { env: {} });
    slug = init.organization.slug;
    const platform = await openPlatform(config, { env: {} });
    try {
      orgId = (await platform.accounts.store.organizationBySlug(slug))!.id;
      productId = (await platform.devices.service.createProduct(cliActor(orgId, 'test'), { name: 'Sensor' })).id;
    } finally {
      await platform.close();
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keygen refuses a short or guessable passphrase and writes nothing', async () => {
    const [one, repeated] = await Promise.all([
      bulwark(['firmware', 'keygen', '--out', at('weak-1')], { BULWARK_KEY_PASSPHRASE: 'a' }),
      bulwark(['firmware', 'keygen', '--out', at('weak-2')], { BULWARK_KEY_PASSPHRASE: 'aaaaaaaaaaaaaaaa' }),
    ]);
    for (const refused of [one, repeated]) {
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /\[keys\.passphrase_weak\]/);
    }
    assert.match(one.stderr, /at least 12 characters/);
    assert.deepEqual(
      ['weak-1.key', 'weak-1.pub', 'weak-2.key', 'weak-2.pub'].filter((f) => existsSync(at(f))),
      [],
    );
  });

  it('rekey brings a 2,048-iteration key with a one-character passphrase up to the policy, and the key still signs', async () => {
    // A release key as keygen wrote it before: node's own export (PBKDF2 at 2,048 iterations), passphrase "a".
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(at('old.key'), privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'a' }), {
      mode: 0o600,
    });
    assert.equal(await iterationsOf(at('old.key')), 2048);
    const key = publicKeyOf(privateKey);
    const online = { organizationId: 'org', snapshot: keyHolder().key, timestamp: keyHolder().key, director: keyHolder().key };
    const unsigned = () => {
      writeMetadata(
        at('old-root.json'),
        buildRoot({ rootKeys: [key], threshold: 1, targetsKeys: [keyHolder().key], online, expires: expiresIn(30) }),
      );
      return at('old-root.json');
    };

    const before = await bulwark(['firmware', 'root', 'sign', '--key', at('old.key'), unsigned()], { BULWARK_KEY_PASSPHRASE: 'a' });
    assert.equal(before.code, 0, before.stderr);
    assert.match(before.stderr, /warning: .*old\.key: it is protected with PBKDF2-HMAC-SHA256, 2,048 iterations/);
    assert.match(before.stderr, /Re-encrypt it: bulwark firmware rekey --key \S*old\.key/);

    const original = readFileSync(at('old.key'));
    const keptWeak = await bulwark(['firmware', 'rekey', '--key', at('old.key')], { BULWARK_KEY_PASSPHRASE: 'a' });
    assert.equal(keptWeak.code, 2, 'keeping the one-character passphrase is refused');
    assert.match(keptWeak.stderr, /keys\.passphrase_weak/);
    assert.deepEqual(readFileSync(at('old.key')), original);

    const rekeyed = await bulwark(['firmware', 'rekey', '--key', at('old.key'), '--json'], {
      BULWARK_KEY_PASSPHRASE: 'a',
      BULWARK_NEW_KEY_PASSPHRASE: PASSPHRASE,
    });
    assert.equal(rekeyed.code, 0, rekeyed.stderr);
    assert.match(JSON.parse(rekeyed.stdout).keys[0].after, /600,000 iterations/);
    assert.ok((await iterationsOf(at('old.key'))) >= 600_000);
    assert.equal(statSync(at('old.key')).mode & 0o777, 0o600);

    const after = await run(['root', 'sign', '--key', at('old.key'), unsigned()]);
    assert.doesNotMatch(after.stderr, /warning/);
    checkRoot(readRoot(at('old-root.json')), null, Date.now(), 'root');
    assert.equal(JSON.parse(readFileSync(at('old-root.json'), 'utf8')).signatures[0].keyid, publicKeyJson(key).keyid);
  });

  it('runs the whole ceremony offline and the server accepts root, targets and a release from its outputs', async () => {
    const refused = await bulwark(['firmware', 'keygen', '--out', at('nokey')], { BULWARK_KEY_PASSPHRASE: '' });
    assert.equal(refused.code, 2, 'an empty passphrase is refused');

    await run(['online-keys', '--data-dir', at('data'), '--org', slug, '--out', at('online.json')]);
    for (const name of ['root-1', 'targets', 'release-1']) await run(['keygen', '--out', at(name)]);
    assert.equal(statSync(at('root-1.key')).mode & 0o777, 0o600);
    assert.match(readFileSync(at('root-1.key'), 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
    assert.ok((await iterationsOf(at('root-1.key'))) >= 600_000, 'PBKDF2 at the root CA key policy or more');

    await run([
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
      '--out',
      at('ceremony'),
    ]);
    await run(['root', 'sign', '--key', at('root-1.key'), at('ceremony/root.json'), at('ceremony/director-root.json')]);
    await run([
      'delegate',
      '--targets-key',
      at('targets.key'),
      '--product',
      productId,
      '--key',
      at('release-1.pub'),
      '--metadata',
      'none',
      '--out',
      at('targets.json'),
    ]);
    const image = randomBytes(3000);
    writeFileSync(at('fw.bin'), image);
    const signed = await run([
      'sign',
      '--image',
      at('fw.bin'),
      '--product',
      productId,
      '--version',
      '1.4.0',
      '--security-version',
      '3',
      '--hardware',
      'hw-rev-b',
      '--key',
      at('release-1.key'),
      '--out',
      at('signed.json'),
      '--json',
    ]);
    const { sha256, length } = JSON.parse(signed.stdout);
    assert.equal(length, image.length);

    const platform = await openPlatform(config, { env: {} });
    try {
      const actor = cliActor(orgId, 'test');
      const json = (name: string) => JSON.parse(readFileSync(at(name), 'utf8'));
      const status = await platform.updates.repository.acceptRoot(actor, {
        root: json('ceremony/root.json'),
        directorRoot: json('ceremony/director-root.json'),
      });
      assert.equal(status.directorRoot?.version, 1);
      assert.equal((await platform.updates.repository.acceptTargets(actor, json('targets.json'))).ready, true);
      const { Readable } = await import('node:stream');
      await platform.updates.blobs.put(Readable.from(image), { sha256, length });
      const release = await platform.updates.releases.create(actor, {
        productId,
        version: '1.4.0',
        notes: '',
        sbom: { bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components: [] },
        metadata: json('signed.json'),
      });
      assert.deepEqual([release.securityVersion, release.hardwareIds, release.sha256], [3, ['hw-rev-b'], sha256]);
    } finally {
      await platform.close();
    }
  });
});
