/**
 * The firmware signing ceremony as key holders run it: every step a real `bulwark firmware …`
 * process (online keys from a server data directory set up in-process, the rest offline), and
 * the outputs accepted by the repository's own checks.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliActor } from '../accounts/roles.js';
import { loadConfig, type Config } from '../ops/config.js';
import { DEFAULT_INIT, initialize } from '../ops/init.js';
import { openPlatform } from '../platform.js';
import { bulwark } from '../testing/cli.js';

const PASSPHRASE = 'a long offline passphrase 42';

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

  it('runs the whole ceremony offline and the server accepts root, targets and a release from its outputs', async () => {
    const refused = await bulwark(['firmware', 'keygen', '--out', at('nokey')], { BULWARK_KEY_PASSPHRASE: '' });
    assert.equal(refused.code, 2, 'an empty passphrase is refused');

    await run(['online-keys', '--data-dir', at('data'), '--org', slug, '--out', at('online.json')]);
    for (const name of ['root-1', 'targets', 'release-1']) await run(['keygen', '--out', at(name)]);
    assert.equal(statSync(at('root-1.key')).mode & 0o777, 0o600);
    assert.match(readFileSync(at('root-1.key'), 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);

    await run(['root', 'create', '--online', at('online.json'), '--root-key', at('root-1.pub'), '--threshold', '1', '--targets-key', at('targets.pub'), '--out', at('ceremony')]);
    await run(['root', 'sign', '--key', at('root-1.key'), at('ceremony/root.json'), at('ceremony/director-root.json')]);
    await run(['delegate', '--targets-key', at('targets.key'), '--product', productId, '--key', at('release-1.pub'), '--metadata', 'none', '--out', at('targets.json')]);
    const image = randomBytes(3000);
    writeFileSync(at('fw.bin'), image);
    const signed = await run(['sign', '--image', at('fw.bin'), '--product', productId, '--version', '1.4.0', '--security-version', '3', '--hardware', 'hw-rev-b', '--key', at('release-1.key'), '--out', at('signed.json'), '--json']);
    const { sha256, length } = JSON.parse(signed.stdout);
    assert.equal(length, image.length);

    const platform = await openPlatform(config, { env: {} });
    try {
      const actor = cliActor(orgId, 'test');
      const json = (name: string) => JSON.parse(readFileSync(at(name), 'utf8'));
      const status = await platform.updates.repository.acceptRoot(actor, { root: json('ceremony/root.json'), directorRoot: json('ceremony/director-root.json') });
      assert.equal(status.directorRoot?.version, 1);
      assert.equal((await platform.updates.repository.acceptTargets(actor, json('targets.json'))).ready, true);
      const { Readable } = await import('node:stream');
      await platform.updates.blobs.put(Readable.from(image), { sha256, length });
      const release = await platform.updates.releases.create(actor, { productId, version: '1.4.0', notes: '', sbom: { bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components: [] }, metadata: json('signed.json') });
      assert.deepEqual([release.securityVersion, release.hardwareIds, release.sha256], [3, ['hw-rev-b'], sha256]);
    } finally {
      await platform.close();
    }
  });
});
