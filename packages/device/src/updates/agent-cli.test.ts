import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { capture } from '../testing/update-capture.js';
import { HARDWARE } from '../testing/update-device.js';
import { sha256, testImage } from '../testing/update-fixture.js';
import { writeIdentity } from '../testing/update-pki.js';
import { useUpdateFixture } from '../testing/update-suite.js';
import { main, REBOOT_EXIT_CODE } from './agent-cli.js';
import { Slots } from './slots.js';

describe('bulwark-agent command line', () => {
  const u = useUpdateFixture('agent-cli');
  const { temp } = u;

  it('refuses bad arguments with exit code 2 and a precise message', async () => {
    const err = capture();
    assert.equal(await main(['run', '--state', temp.dir], capture().stream, err.stream), 2);
    assert.match(err.text(), /--url is required/);
    assert.equal(await main(['run', '--bogus'], capture().stream, err.stream), 2);
    assert.equal(await main(['frobnicate'], capture().stream, err.stream), 2);
    assert.match(err.text(), /unknown command frobnicate/);
  });

  it('keeps the boot variables where setup --boot-backend says (a GRUB environment block here), and refuses a run naming another backend', async () => {
    const dir = join(temp.dir, 'grub-device');
    const files = {
      root: join(temp.dir, 'g-root.json'),
      directorRoot: join(temp.dir, 'g-director-root.json'),
      image: join(temp.dir, 'g-factory.bin'),
      grubenv: join(temp.dir, 'grubenv'),
    };
    writeFileSync(files.root, u.fixture.initialRoot);
    writeFileSync(files.directorRoot, u.fixture.directorRoot);
    writeFileSync(files.image, testImage('factory'));
    const setupArgs = [
      'setup',
      '--state',
      dir,
      '--root',
      files.root,
      '--director-root',
      files.directorRoot,
      '--product',
      u.fixture.productId,
      '--image',
      files.image,
      '--target',
      u.fixture.targetName('1.0.0'),
      '--version',
      '1.0.0',
    ];
    const bad = capture();
    assert.equal(await main([...setupArgs, '--boot-backend', 'lilo'], capture().stream, bad.stream), 2);
    assert.match(bad.text(), /--boot-backend must be one of dir, grub, uboot/);
    assert.equal(await main([...setupArgs, '--boot-backend', 'grub', '--grub-env', files.grubenv], capture().stream, capture().stream), 0);
    assert.match(execFileSync('grub-editenv', [files.grubenv, 'list'], { encoding: 'utf8' }), /^bulwark_active=a$/m);

    const identity = writeIdentity(join(temp.dir, 'grub-identity'), u.pki.ca, await u.pki.device('dev-cli-grub'));
    const runArgs = [
      'run',
      '--once',
      '--state',
      dir,
      '--identity',
      identity,
      '--url',
      u.fixture.baseUrl,
      '--org',
      u.fixture.org,
      '--hardware',
      HARDWARE,
    ];
    const refused = capture();
    assert.equal(await main([...runArgs, '--boot-backend', 'uboot'], capture().stream, refused.stream), 2);
    assert.match(refused.text(), /differs from the one .* was set up with/);
    const cmdline = join(temp.dir, 'cmdline');
    writeFileSync(cmdline, 'root=PARTLABEL=rootfs_a quiet\n');
    const noSlot = capture();
    assert.equal(await main([...runArgs, '--kernel-cmdline', cmdline], capture().stream, noSlot.stream), 2);
    assert.match(noSlot.text(), /has no bulwark\.slot=a or bulwark\.slot=b/);
    writeFileSync(cmdline, 'root=PARTLABEL=rootfs_a bulwark.slot=a quiet\n');
    const ran = capture();
    assert.equal(
      await main(
        [...runArgs, '--boot-backend', 'grub', '--grub-env', files.grubenv, '--kernel-cmdline', cmdline],
        ran.stream,
        capture().stream,
      ),
      0,
    );
    assert.deepEqual(
      ran.lines().find((e) => e.event === 'boot'),
      { event: 'boot', outcome: 'normal', slot: 'a' },
    );
  });

  it('provisions a device from factory files, updates it (exit 3 to be restarted into the trial boot), and rolls back a trial whose health command fails', async () => {
    const deviceId = 'dev-cli-1';
    const identity = writeIdentity(join(temp.dir, 'identity'), u.pki.ca, await u.pki.device(deviceId));
    const state = join(temp.dir, 'state');
    const files = {
      root: join(temp.dir, 'root.json'),
      directorRoot: join(temp.dir, 'director-root.json'),
      image: join(temp.dir, 'factory.bin'),
    };
    writeFileSync(files.root, u.fixture.initialRoot);
    writeFileSync(files.directorRoot, u.fixture.directorRoot);
    writeFileSync(files.image, testImage('factory'));
    const setupArgs = [
      'setup',
      '--state',
      state,
      '--root',
      files.root,
      '--director-root',
      files.directorRoot,
      '--product',
      u.fixture.productId,
      '--image',
      files.image,
      '--target',
      u.fixture.targetName('1.0.0'),
      '--version',
      '1.0.0',
    ];
    const withoutProduct = setupArgs.filter((a, i) => a !== '--product' && setupArgs[i - 1] !== '--product');
    assert.equal(await main(withoutProduct, capture().stream, capture().stream), 2, 'setup pins a product');
    assert.equal(await main(setupArgs, capture().stream, capture().stream), 0);

    const r = u.fixture.addRelease({ version: '2.0.0', securityVersion: 1, hardwareIds: [HARDWARE], image: testImage('2.0.0', 40_000) });
    u.fixture.direct(deviceId, r, { hardwareId: HARDWARE, rolloutId: 'r-cli' });
    const runArgs = [
      'run',
      '--once',
      '--exit-on-reboot',
      '--state',
      state,
      '--identity',
      identity,
      '--url',
      u.fixture.baseUrl,
      '--org',
      u.fixture.org,
      '--hardware',
      HARDWARE,
    ];
    const first = capture();
    assert.equal(await main(runArgs, first.stream, capture().stream), REBOOT_EXIT_CODE);
    assert.deepEqual(
      first
        .lines()
        .filter((e) => e.event === 'status')
        .map((e) => e.state),
      ['downloading', 'installing', 'rebooting'],
    );
    const second = capture();
    assert.equal(await main(runArgs, second.stream, capture().stream), 0);
    assert.deepEqual(
      second.lines().find((e) => e.event === 'boot'),
      { event: 'boot', outcome: 'committed', slot: 'b' },
    );
    assert.deepEqual(
      second.lines().find((e) => e.event === 'check'),
      { event: 'check', outcome: 'up_to_date' },
    );
    const slots = new Slots(state);
    assert.deepEqual(slots.readBoot(), { active: 'b', trial: null });
    assert.equal(slots.manifest('b')?.sha256, sha256(r.image));

    const bad = u.fixture.addRelease({ version: '2.1.0', securityVersion: 1, hardwareIds: [HARDWARE], image: testImage('2.1.0', 40_000) });
    u.fixture.direct(deviceId, bad, { hardwareId: HARDWARE, rolloutId: 'r-cli-bad' });
    const failing = capture();
    const healthArgs = [
      'run',
      '--once',
      '--state',
      state,
      '--identity',
      identity,
      '--url',
      u.fixture.baseUrl,
      '--org',
      u.fixture.org,
      '--hardware',
      HARDWARE,
    ];
    assert.equal(await main([...healthArgs, '--health-command', 'test "$BULWARK_VERSION" != 2.1.0'], failing.stream, capture().stream), 0);
    assert.deepEqual(
      failing
        .lines()
        .filter((e) => e.event === 'boot')
        .map((e) => `${e.outcome} ${e.slot}`),
      ['normal b', 'reboot a', 'rolled_back b'],
    );
    assert.deepEqual(slots.readBoot(), { active: 'b', trial: null });
  });
});
