import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tufMetadataPath, tufTargetsPath } from '@bulwark/protocol';
import { capture } from '../testing/update-capture.js';
import { HARDWARE } from '../testing/update-device.js';
import { testImage } from '../testing/update-fixture.js';
import { useUpdateFixture } from '../testing/update-suite.js';
import { main } from './agent-cli.js';

describe('bulwark-agent tuf-client (the TUF conformance suite interface)', () => {
  const u = useUpdateFixture('tuf-client');
  let n = 0;

  /** A fresh client: its metadata and target directories, and its command line against the fixture. */
  function client() {
    const dir = join(u.temp.dir, `client-${++n}`);
    const metadataDir = join(dir, 'metadata');
    const targetDir = join(dir, 'targets');
    mkdirSync(metadataDir, { recursive: true });
    mkdirSync(targetDir, { recursive: true });
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, u.pki.ca);
    const remote = ['--ca', ca, '--metadata-url', `${u.fixture.baseUrl}${tufMetadataPath(u.fixture.org)}`];
    const run = async (...args: string[]) => {
      const out = capture();
      const err = capture();
      const code = await main(['tuf-client', '--metadata-dir', metadataDir, ...args], out.stream, err.stream);
      return { code, out: out.text(), err: err.text() };
    };
    return {
      metadataDir,
      targetDir,
      init: () => {
        writeFileSync(join(dir, 'initial-root.json'), u.fixture.initialRoot);
        return run('init', join(dir, 'initial-root.json'));
      },
      refresh: () => run(...remote, 'refresh'),
      download: (...names: string[]) =>
        run(
          ...remote,
          ...names.flatMap((name) => ['--target-name', name]),
          '--target-base-url',
          `${u.fixture.baseUrl}${tufTargetsPath(u.fixture.org)}`,
          '--target-dir',
          targetDir,
          'download',
        ),
    };
  }

  it('initializes from a trusted root, refreshes the top-level metadata, downloads a signed target once and then keeps its verified copy', async () => {
    const release = u.fixture.addRelease({
      version: '3.0.0',
      securityVersion: 1,
      hardwareIds: [HARDWARE],
      image: testImage('3.0.0', 50_000),
    });
    const c = client();
    assert.equal((await c.init()).code, 0);
    assert.deepEqual(readdirSync(c.metadataDir), ['root.json']);

    const refreshed = await c.refresh();
    assert.equal(refreshed.code, 0, refreshed.err);
    assert.deepEqual(readdirSync(c.metadataDir).sort(), ['root.json', 'snapshot.json', 'targets.json', 'timestamp.json']);

    const name = u.fixture.targetName('3.0.0');
    const first = await c.download(name);
    assert.equal(first.code, 0, first.err);
    assert.deepEqual(readFileSync(join(c.targetDir, encodeURIComponent(name))), release.image);
    assert.equal(u.fixture.served(u.fixture.imagePath(release)).length, 1);

    const second = await c.download(name);
    assert.equal(second.code, 0, second.err);
    assert.match(second.out, /cached/);
    assert.equal(u.fixture.served(u.fixture.imagePath(release)).length, 1, 'the verified copy is not fetched again');
  });

  it('refuses a tampered target and an unknown one with exit 1 and their codes, keeping nothing', async () => {
    const release = u.fixture.addRelease({
      version: '3.1.0',
      securityVersion: 1,
      hardwareIds: [HARDWARE],
      image: testImage('3.1.0', 20_000),
    });
    u.fixture.imageBehaviour.set(u.fixture.imagePath(release), { body: testImage('evil', 20_000) });
    const c = client();
    await c.init();

    const tampered = await c.download(u.fixture.targetName('3.1.0'));
    assert.equal(tampered.code, 1);
    assert.match(tampered.err, /update\.hash_mismatch/);
    const unknown = await c.download(u.fixture.targetName('9.9.9'));
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /update\.target_unknown/);
    assert.deepEqual(readdirSync(c.targetDir), []);
  });

  it('fails the refresh of a metadata directory never initialized, and refuses bad arguments with exit 2', async () => {
    const c = client();
    const refreshed = await c.refresh();
    assert.equal(refreshed.code, 1);
    assert.match(refreshed.err, /update\.metadata_invalid: No trusted image repository root/);
    assert.equal(existsSync(join(c.metadataDir, 'timestamp.json')), false);
    assert.equal(await main(['tuf-client', 'refresh'], capture().stream, capture().stream), 2);
    assert.equal(await main(['tuf-client', '--metadata-dir', c.metadataDir, 'frobnicate'], capture().stream, capture().stream), 2);
  });
});
