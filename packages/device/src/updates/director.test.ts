import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Metadata, MetadataKind } from '@tufjs/models';
import { tempDir } from '../testing/temp.js';
import { HARDWARE, provisionTestDevice } from '../testing/update-device.js';
import { testImage, TufKey, UpdateFixture } from '../testing/update-fixture.js';
import { makeTestPki, type TestPki } from '../testing/update-pki.js';
import { MAX_DIRECTOR_VERSION_STEP, verifyDirectorTargets } from './director.js';
import { Slots } from './slots.js';

describe('director metadata', () => {
  let pki: TestPki;
  const fixtures: UpdateFixture[] = [];
  const temp = tempDir('director');

  before(async () => {
    pki = await makeTestPki();
  });
  after(async () => {
    await Promise.all(fixtures.map((f) => f.close()));
    temp.remove();
  });

  const start = async () => {
    const fixture = await UpdateFixture.start(pki);
    fixtures.push(fixture);
    return fixture;
  };
  const rootOf = (bytes: Buffer) => Metadata.fromJSON(MetadataKind.Root, JSON.parse(bytes.toString('utf8')));
  const codeOf = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (error) {
      const { code, message } = error as { code?: string; message: string };
      return `${code}: ${message}`;
    }
    return undefined;
  };

  it('accepts the same version again only when the bytes are identical', async () => {
    const fixture = await start();
    const root = rootOf(fixture.directorRoot);
    const now = new Date();
    const first = fixture.direct('dev-1', null, { hardwareId: HARDWARE });
    const seen = verifyDirectorTargets(first, root, null, 'dev-1', now);
    assert.equal(verifyDirectorTargets(first, root, seen, 'dev-1', now).version, seen.version);
    const sameVersion = fixture.direct('dev-1', null, {
      hardwareId: HARDWARE,
      version: seen.version,
      expires: new Date(Date.now() + 7_200_000),
    });
    assert.equal(verifyDirectorTargets(sameVersion, root, null, 'dev-1', now).version, seen.version, 'validly signed on its own');
    assert.match(
      codeOf(() => verifyDirectorTargets(sameVersion, root, seen, 'dev-1', now)) ?? '',
      /^update\.metadata_invalid: .*differs from the version/,
    );
  });

  it('accepts a version at most 2^20 above the last seen (0 when none) and refuses a bigger jump', async () => {
    const fixture = await start();
    const root = rootOf(fixture.directorRoot);
    const now = new Date();
    const at = (version: number) => fixture.direct('dev-1', null, { hardwareId: HARDWARE, version });
    assert.equal(verifyDirectorTargets(at(MAX_DIRECTOR_VERSION_STEP), root, null, 'dev-1', now).version, MAX_DIRECTOR_VERSION_STEP);
    assert.match(
      codeOf(() => verifyDirectorTargets(at(MAX_DIRECTOR_VERSION_STEP + 1), root, null, 'dev-1', now)) ?? '',
      /^update\.metadata_invalid: .*forged fast-forward/,
    );
    const seen = { version: 7, sha256: 'seen' };
    assert.equal(verifyDirectorTargets(at(7 + MAX_DIRECTOR_VERSION_STEP), root, seen, 'dev-1', now).version, 7 + MAX_DIRECTOR_VERSION_STEP);
    assert.match(
      codeOf(() => verifyDirectorTargets(at(8 + MAX_DIRECTOR_VERSION_STEP), root, seen, 'dev-1', now)) ?? '',
      /^update\.metadata_invalid: /,
    );
  });

  it('refuses malformed director metadata and metadata expired by the injected clock', async () => {
    const fixture = await start();
    const root = rootOf(fixture.directorRoot);
    assert.match(
      codeOf(() => verifyDirectorTargets(Buffer.from('{"signed":'), root, null, 'dev-1', new Date())) ?? '',
      /^update\.metadata_invalid: /,
    );
    const bytes = fixture.direct('dev-1', null, { hardwareId: HARDWARE, expires: new Date(Date.now() + 3_600_000) });
    assert.equal(verifyDirectorTargets(bytes, root, null, 'dev-1', new Date()).target, null);
    assert.match(
      codeOf(() => verifyDirectorTargets(bytes, root, null, 'dev-1', new Date(Date.now() + 7_200_000))) ?? '',
      /^update\.metadata_expired: /,
    );
  });

  it('refuses an expired director root (a freeze, TUF 5.3.10) even when the director targets it trusts are unexpired', async () => {
    const fixture = await start();
    const device = await provisionTestDevice(fixture, pki, temp.dir);
    const afterRootExpiry = Date.now() + 2 * 365 * 86_400_000;
    fixture.direct(device.deviceId, null, { hardwareId: HARDWARE, expires: new Date(afterRootExpiry + 86_400_000) });
    const { check, agent } = await device.cycle({ clock: { now: () => afterRootExpiry } });
    assert.equal(check, 'refused');
    assert.equal(agent.lastError?.code, 'update.metadata_expired');
    assert.match(agent.lastError?.message ?? '', /^Director root version 1 expired at /);
  });

  it('follows a director key rotation signed by the pinned root keys', async () => {
    const fixture = await start();
    const device = await provisionTestDevice(fixture, pki, temp.dir);
    fixture.rotateDirectorKey();
    const r = fixture.addRelease({ version: '1.1.0', securityVersion: 1, hardwareIds: [HARDWARE], image: testImage('rotated', 30_000) });
    fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
    const { check, agent } = await device.cycle();
    assert.equal(check, 'reboot', agent.lastError?.message);
    assert.equal(JSON.parse(readFileSync(join(device.stateDir, 'director', 'root.json'), 'utf8')).signed.version, 2);
  });

  it('refuses a director root rotation not signed by the pinned root keys, keeping the pinned root', async () => {
    const fixture = await start();
    const device = await provisionTestDevice(fixture, pki, temp.dir);
    const rogue = new TufKey();
    fixture.rotateDirectorKey([rogue]);
    const r = fixture.addRelease({ version: '1.1.0', securityVersion: 1, hardwareIds: [HARDWARE], image: testImage('rogue-root', 30_000) });
    fixture.direct(device.deviceId, r, { hardwareId: HARDWARE });
    const { check, agent } = await device.cycle();
    assert.equal(agent.lastError?.code, 'update.metadata_invalid');
    assert.equal(check, 'refused');
    assert.equal(JSON.parse(readFileSync(join(device.stateDir, 'director', 'root.json'), 'utf8')).signed.version, 1);
    assert.deepEqual(new Slots(device.stateDir).readBoot(), { active: 'a', trial: null });
  });
});
