import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../testing/temp.js';
import { HARDWARE } from '../testing/update-device.js';
import { sha256, testImage, UpdateFixture, type FixtureRelease } from '../testing/update-fixture.js';
import { makeTestPki, type Issued, type TestPki } from '../testing/update-pki.js';
import { downloadImage } from './download.js';
import { mutualTls } from './https.js';

describe('resumable image download', () => {
  let pki: TestPki;
  let fixture: UpdateFixture;
  let device: Issued;
  let release: FixtureRelease;
  const temp = tempDir('download');
  let n = 0;

  before(async () => {
    pki = await makeTestPki();
    fixture = await UpdateFixture.start(pki);
    device = await pki.device('dev-download');
    release = fixture.addRelease({ version: '1.1.0', securityVersion: 1, hardwareIds: [HARDWARE], image: testImage('dl', 120_000) });
  });
  after(async () => {
    await fixture.close();
    temp.remove();
  });

  const download = (path: string) =>
    downloadImage({
      url: `${fixture.baseUrl}${fixture.imagePath(release)}`,
      get: mutualTls({ ca: pki.ca, ...device }),
      path,
      length: release.image.length,
      hashes: { sha256: sha256(release.image) },
      idleTimeoutMs: 500,
      maxAttempts: 2,
    });

  it('resumes from a partial file with a range request, hashing the bytes it already had', async () => {
    const path = join(temp.dir, `image-${++n}`);
    writeFileSync(path, release.image.subarray(0, 50_000));
    await download(path);
    assert.ok(readFileSync(path).equals(release.image));
    assert.equal(fixture.served(fixture.imagePath(release)).at(-1)?.range, 'bytes=50000-');
  });

  it('starts over when the server ignores the range and answers 200', async () => {
    const path = join(temp.dir, `image-${++n}`);
    writeFileSync(path, release.image.subarray(0, 30_000));
    fixture.imageBehaviour.set(fixture.imagePath(release), { ignoreRange: true });
    try {
      await download(path);
    } finally {
      fixture.imageBehaviour.delete(fixture.imagePath(release));
    }
    assert.ok(readFileSync(path).equals(release.image));
    assert.equal(fixture.served(fixture.imagePath(release)).at(-1)?.status, 200);
  });

  it('refuses a resumed image whose earlier bytes were wrong, and deletes the partial file', async () => {
    const path = join(temp.dir, `image-${++n}`);
    writeFileSync(path, Buffer.alloc(40_000, 1));
    await assert.rejects(download(path), (error: Error & { code?: string }) => error.code === 'update.hash_mismatch');
    assert.equal(existsSync(path), false);
  });
});
