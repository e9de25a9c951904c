/**
 * Storage an organization can make the platform spend on images: its quota (refused with 413
 * update.blob_quota_exceeded before anything is stored, by declared length or while streaming,
 * and under concurrent uploads), and the sweep that deletes images no release names once their
 * grace period has passed on the platform clock. Real HTTPS uploads, both engines.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, utimesSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { cliActor } from '../accounts/roles.js';
import { HOUR } from '../clock.js';
import { createOperator, signIn, type TestUser } from '../testing/accounts.js';
import { organizationIdOf, testProduct } from '../testing/devices.js';
import { ENGINES } from '../testing/engines.js';
import { startTestPlatform, type TestPlatform } from '../testing/server.js';
import { insertRelease } from '../testing/rollout-fixtures.js';

const MiB = 1024 * 1024;
const QUOTA = 3 * MiB;
const GRACE_HOURS = 24;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

for (const engine of ENGINES) {
  describe(`blob quota and orphan sweep [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let org: string;
    let product: string;
    let releaseEngineer: TestUser;
    let releaser: string;
    let agent: https.Agent;

    before(async () => {
      t = await startTestPlatform(engine, {
        auth: { loginRateLimitPerMinute: 10_000 },
        updates: { blobQuotaBytes: QUOTA, orphanBlobGraceHours: GRACE_HOURS },
      });
      agent = new https.Agent({ ca: t.ca, keepAlive: false });
      org = await organizationIdOf(t.platform, t.org);
      product = await testProduct(t.platform, org);
      releaseEngineer = await createOperator(t, 'releaser@example.com', 'release_engineer');
    });
    after(async () => {
      agent?.destroy();
      await t?.close();
    });

    /** PUTs `data` in 64 KiB chunks, with its Content-Length or chunked (`declare` false). */
    function upload(data: Buffer, declare = true, hash = sha256(data)): Promise<{ status: number; json: any }> {
      return new Promise((resolve, reject) => {
        const headers: Record<string, string> = {
          authorization: `Bearer ${releaser}`,
          'content-type': 'application/octet-stream',
          ...(declare ? { 'content-length': String(data.length) } : {}),
        };
        const req = https.request(
          `https://localhost:${t.server.port}/api/v1/updates/blobs/${hash}`,
          { method: 'PUT', headers, agent },
          (res) => {
            const parts: Buffer[] = [];
            res.on('data', (c: Buffer) => parts.push(c));
            res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(parts).toString('utf8')) }));
          },
        );
        let answered = false;
        req.on('response', () => (answered = true));
        req.on('error', (error) => {
          if (!answered) reject(error);
        });
        void (async () => {
          for (let at = 0; at < data.length && !answered && !req.destroyed; at += 64 * 1024) {
            if (!req.write(data.subarray(at, at + 64 * 1024)))
              // Each wait removes the listener that did not fire: they piled up on the request (MaxListenersExceededWarning).
              await new Promise<void>((resolve) => {
                const done = () => {
                  req.off('drain', done).off('close', done);
                  resolve();
                };
                req.once('drain', done).once('close', done);
              });
          }
          req.end();
        })();
      });
    }

    const stored = (hash: string) => existsSync(join(t.platform.updates.blobs.dir, 'sha256', hash.slice(0, 2), hash));
    const usage = (organizationId = org) => t.platform.updates.uploads.usage(organizationId);
    const holdings = () => t.platform.db.selectFrom('firmware_blobs').select(['organization_id', 'sha256', 'stored']).execute();

    /** Empties the organization's holdings (each test starts from none, but for released images) and signs the release engineer in anew. */
    async function clean(): Promise<void> {
      t.clock.advance((GRACE_HOURS + 1) * HOUR);
      await t.platform.updates.uploads.sweep();
      releaser = await signIn(t, releaseEngineer);
    }

    it('refuses an upload past the quota by its declared length, before reading it, and stores nothing', async () => {
      await clean();
      const first = randomBytes(2 * MiB);
      assert.equal((await upload(first)).status, 201);
      assert.equal(await usage(), first.length);
      const second = randomBytes(2 * MiB);
      const refused = await upload(second);
      assert.equal(refused.status, 413);
      assert.equal(refused.json.error.code, 'update.blob_quota_exceeded');
      assert.deepEqual(refused.json.error.details, { quotaBytes: QUOTA, usedBytes: first.length });
      assert.equal(stored(sha256(second)), false);
      assert.equal(await usage(), first.length, 'a refused upload holds nothing');
      assert.equal((await upload(first)).status, 200, 'an image already held needs no room');
    });

    it('cuts a chunked upload the moment it passes the room left, and keeps nothing of it', async () => {
      await clean();
      assert.equal((await upload(randomBytes(2 * MiB))).status, 201);
      const streamed = randomBytes(MiB + 64 * 1024);
      const refused = await upload(streamed, false);
      assert.equal(refused.status, 413);
      assert.equal(refused.json.error.code, 'update.blob_quota_exceeded');
      assert.equal(stored(sha256(streamed)), false);
      assert.deepEqual(
        (await holdings()).filter((h) => h.stored === 0),
        [],
        'the reservation went with it',
      );
      const fits = randomBytes(MiB - 1024);
      assert.equal((await upload(fits, false)).status, 201, 'the room left is usable without a declared length');
    });

    it('lets only as many concurrent uploads through as fit, and counts each organization apart', async () => {
      await clean();
      const images = [randomBytes(2 * MiB), randomBytes(2 * MiB)];
      const answers = await Promise.all(images.map((image) => upload(image)));
      assert.deepEqual(answers.map((a) => a.status).sort(), [201, 413]);
      assert.equal(await usage(), 2 * MiB);

      const other = await t.platform.accounts.service.createOrganization(
        { slug: `other-${randomUUID().slice(0, 8)}`, name: 'Other' },
        { type: 'cli', id: 'test' },
      );
      const image = images[0]!;
      await t.platform.updates.uploads.upload(cliActor(other.id), sha256(image), Readable.from([image]), image.length);
      assert.equal(await usage(other.id), image.length, "another organization's quota is its own");
    });

    it('deletes an image no release names once its grace period has passed, and keeps released ones', async () => {
      await clean();
      const orphan = randomBytes(MiB);
      const released = randomBytes(MiB);
      assert.equal((await upload(orphan)).status, 201);
      assert.equal((await upload(released)).status, 201);
      await insertRelease(t.platform, org, product, '1.0.0', ['hw-a'], { sha256: sha256(released), length: released.length });

      t.clock.advance((GRACE_HOURS - 1) * HOUR);
      assert.deepEqual(
        await t.platform.updates.uploads.sweep(),
        { orphans: 0, files: 0, temporary: 0 },
        'within the grace period nothing goes',
      );
      assert.ok(stored(sha256(orphan)));

      t.clock.advance(2 * HOUR);
      assert.deepEqual(await t.platform.updates.uploads.sweep(), { orphans: 1, files: 1, temporary: 0 });
      assert.equal(stored(sha256(orphan)), false);
      assert.equal(stored(sha256(released)), true);
      assert.equal(await usage(), released.length, 'the orphan no longer counts against the quota');
      const { entries } = await t.platform.audit.query({ action: 'firmware.blob_uploaded', targetId: sha256(orphan) });
      assert.equal(entries.length, 1, 'the upload stays on the record');
    });

    it('keeps an image another organization still holds, and deletes one nothing names (uploaded before holdings were kept)', async () => {
      await clean();
      const shared = randomBytes(64 * 1024);
      const other = await t.platform.accounts.service.createOrganization(
        { slug: `keeper-${randomUUID().slice(0, 8)}`, name: 'Keeper' },
        { type: 'cli', id: 'test' },
      );
      assert.equal((await upload(shared)).status, 201);
      t.clock.advance((GRACE_HOURS - 2) * HOUR);
      await t.platform.updates.uploads.upload(cliActor(other.id), sha256(shared), Readable.from([shared]), shared.length);
      // Written straight to the store, as uploads were before holdings were kept; its age on the platform clock starts now.
      const legacy = randomBytes(1024);
      await t.platform.updates.blobs.put(Readable.from([legacy]), { sha256: sha256(legacy) });
      const written = new Date(t.clock.now());
      utimesSync(join(t.platform.updates.blobs.dir, 'sha256', sha256(legacy).slice(0, 2), sha256(legacy)), written, written);

      t.clock.advance(3 * HOUR);
      const first = await t.platform.updates.uploads.sweep();
      assert.equal(first.orphans, 1, "this organization's holding is past its grace");
      assert.equal(stored(sha256(shared)), true, 'the other organization still holds it');
      assert.equal(stored(sha256(legacy)), true, 'a file is judged by its own age as well');

      t.clock.advance(GRACE_HOURS * HOUR);
      await t.platform.updates.uploads.sweep();
      assert.equal(stored(sha256(shared)), false);
      assert.equal(stored(sha256(legacy)), false);
    });
  });
}
