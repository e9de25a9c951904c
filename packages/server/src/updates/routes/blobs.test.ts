import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { ClientRequest } from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { targetNameOf } from '@bulwark/protocol';
import { createOperator, signIn } from '../../testing/accounts.js';
import { organizationIdOf, testProduct } from '../../testing/devices.js';
import { ENGINES } from '../../testing/engines.js';
import { startTestPlatform, type TestPlatform } from '../../testing/server.js';

const MiB = 1024 * 1024;
/** Above the 64 MiB upload that measures memory, so that one is accepted. */
const MAX_IMAGE_BYTES = 65 * MiB;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: any;
}

/** Resolves when the request can take more, or is gone. */
function drained(req: ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      req.off('drain', done);
      req.off('close', done);
      resolve();
    };
    req.on('drain', done);
    req.on('close', done);
  });
}

/** `count` chunks of 64 KiB, each distinct, made on the fly (never all in memory). */
function* generated(count: number, seed: Buffer): Generator<Buffer> {
  for (let i = 0; i < count; i++) {
    const chunk = Buffer.from(seed);
    chunk.writeUInt32BE(i, 0);
    yield chunk;
  }
}

describe('blob routes', () => {
  for (const engine of ENGINES) {
    describe(`[${engine.engine}]`, { skip: engine.skip }, () => {
      let t: TestPlatform;
      let agent: https.Agent;
      let org: string;
      let orgB: string;
      let product: string;
      let releaser: string;
      let operator: string;
      let work: string;

      before(async () => {
        t = await startTestPlatform(engine, { auth: { loginRateLimitPerMinute: 10_000 }, updates: { maxImageBytes: MAX_IMAGE_BYTES } });
        agent = new https.Agent({ ca: t.ca, keepAlive: false });
        work = mkdtempSync(join(tmpdir(), 'bulwark-blob-routes-'));
        org = await organizationIdOf(t.platform, t.org);
        product = await testProduct(t.platform, org);
        await t.platform.accounts.service.createOrganization({ slug: 'org-b', name: 'Organization B' }, { type: 'cli', id: 'test' });
        orgB = await organizationIdOf(t.platform, 'org-b');
        releaser = await signIn(t, await createOperator(t, 'releaser@example.com', 'release_engineer'));
        operator = await signIn(t, await createOperator(t, 'operator@example.com', 'operator'));
      });
      after(async () => {
        agent?.destroy();
        await t?.close();
        if (work) rmSync(work, { recursive: true, force: true });
      });

      const url = (path: string) => `https://localhost:${t.server.port}${path}`;
      const blobPath = (hash: string) => `/api/v1/updates/blobs/${hash}`;
      const storeFiles = () => {
        const root = join(t.platform.updates.blobs.dir, 'sha256');
        try {
          return readdirSync(root, { recursive: true, withFileTypes: true })
            .filter((e) => e.isFile())
            .map((e) => e.name);
        } catch {
          return [];
        }
      };

      /** An HTTPS request whose body is sent chunk by chunk with backpressure; stops sending once answered. */
      function send(
        method: string,
        path: string,
        options: {
          headers?: Record<string, string>;
          chunks?: Iterable<Buffer>;
          token?: string;
          abortAfter?: number;
          onAbortPoint?: () => Promise<void>;
          beforeChunk?: (index: number) => Promise<void>;
        } = {},
      ): Promise<Answer> {
        const headers: Record<string, string> = { ...options.headers };
        if (options.token) headers.authorization = `Bearer ${options.token}`;
        return new Promise((resolve, reject) => {
          let answered = false;
          const req = https.request(url(path), { method, headers, agent }, (res) => {
            answered = true;
            const parts: Buffer[] = [];
            res.on('data', (c: Buffer) => parts.push(c));
            res.on('end', () => {
              const body = Buffer.concat(parts);
              let json: unknown = null;
              if (String(res.headers['content-type'] ?? '').includes('json')) json = JSON.parse(body.toString('utf8'));
              resolve({ status: res.statusCode!, headers: res.headers, body, json });
            });
          });
          req.on('error', (error) => {
            if (!answered) reject(error);
          });
          void (async () => {
            let sent = 0;
            let index = 0;
            for (const chunk of options.chunks ?? []) {
              await options.beforeChunk?.(index++);
              if (answered || req.destroyed) return;
              if (options.abortAfter !== undefined && sent >= options.abortAfter) {
                await options.onAbortPoint?.();
                req.destroy();
                return;
              }
              sent += chunk.length;
              if (!req.write(chunk)) await drained(req);
            }
            req.end();
          })();
        });
      }

      const upload = (hash: string, data: Buffer | Iterable<Buffer>, token = releaser, headers: Record<string, string> = {}) => {
        const chunks = Buffer.isBuffer(data) ? [data] : data;
        const length: Record<string, string> = Buffer.isBuffer(data) ? { 'content-length': String(data.length) } : {};
        return send('PUT', blobPath(hash), {
          token,
          chunks,
          headers: { 'content-type': 'application/octet-stream', ...length, ...headers },
        });
      };

      async function release(organizationId: string, productId: string, version: string, hash: string, length: number): Promise<void> {
        await t.platform.db
          .insertInto('firmware_releases')
          .values({
            id: randomUUID(),
            organization_id: organizationId,
            product_id: productId,
            version,
            security_version: 1,
            hardware_ids: '["hw-a"]',
            target_name: targetNameOf(productId, version),
            sha256: hash,
            length,
            notes: '',
            sbom: '{}',
            created_by: null,
            created_at: t.clock.now(),
          })
          .execute();
      }

      const targetPath = (organizationId: string, productId: string, hash: string, version: string) =>
        `/tuf/${organizationId}/targets/${productId}/${hash}.firmware-${version}.bin`;

      it('uploads an image as a stream: 201 with its hash and length, audited; 200 when uploaded again', async () => {
        const data = randomBytes(3 * MiB + 17);
        const hash = sha256(data);
        const first = await upload(hash, [data.subarray(0, MiB), data.subarray(MiB)]);
        assert.equal(first.status, 201, first.body.toString());
        assert.deepEqual(first.json, { sha256: hash, length: data.length });
        const again = await upload(hash, data);
        assert.equal(again.status, 200, again.body.toString());
        assert.deepEqual(again.json, { sha256: hash, length: data.length });
        assert.deepEqual(await t.platform.updates.blobs.stat(hash), { sha256: hash, length: data.length });
        const audited = await t.platform.db
          .selectFrom('audit_log')
          .selectAll()
          .where('action', '=', 'firmware.blob_uploaded')
          .where('target_id', '=', hash)
          .execute();
        assert.equal(audited.length, 1, 'the upload that stored it, not the repeat');
        assert.equal(audited[0]!.organization_id, org);
        assert.equal(JSON.parse(audited[0]!.details).length, data.length);
      });

      // Engine-independent and heavy: measured once, on SQLite.
      const onSqlite = engine.engine === 'sqlite' ? it : () => undefined;
      onSqlite('streams a 64 MiB upload into the store without the server holding it in memory', async () => {
        const seed = randomBytes(64 * 1024);
        const count = 1024;
        const hash = createHash('sha256');
        for (const chunk of generated(count, seed)) hash.update(chunk);
        const digest = hash.digest('hex');
        // Live memory (after a full collection) at the start and at each eighth of the way: a server
        // that buffered the body would hold 8 MiB more at each, 28 MiB at the median. Each sample is
        // the lower of two a few milliseconds apart, and the median is judged: memory the upload
        // holds stays held, while this process also runs the platform's own work (timers, TLS),
        // which now and then holds some MiB of buffers for a moment.
        const live = () => {
          gc();
          const usage = process.memoryUsage();
          return usage.heapUsed + usage.arrayBuffers;
        };
        const held = async () => {
          const first = live();
          await new Promise((resolve) => setTimeout(resolve, 5));
          return Math.min(first, live());
        };
        const baseline = await held();
        const growth: number[] = [];
        const sample = async (index: number) => {
          if (index > 0 && index % (count / 8) === 0) growth.push((await held()) - baseline);
        };
        const answer = await send('PUT', blobPath(digest), {
          token: releaser,
          chunks: generated(count, seed),
          beforeChunk: sample,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(count * seed.length) },
        });
        assert.equal(answer.status, 201, answer.body.toString());
        const sorted = [...growth].sort((a, b) => a - b);
        const median = sorted[Math.floor(sorted.length / 2)]!;
        const shown = growth.map((g) => (g / MiB).toFixed(1)).join(', ');
        console.log(`64 MiB upload: live heap + buffers above the start, each eighth of the way (MiB): ${shown}`);
        assert.equal(growth.length, 7);
        assert.ok(median < 4 * MiB, `median growth ${(median / MiB).toFixed(1)} MiB during a 64 MiB upload (${shown})`);
        assert.deepEqual(await t.platform.updates.blobs.stat(digest), { sha256: digest, length: 64 * MiB });
      });

      it('refuses bytes that do not hash to the named SHA-256 (400 update.blob_hash_mismatch) and stores nothing', async () => {
        const data = randomBytes(MiB);
        const claimed = sha256(Buffer.from('the image the release engineer meant'));
        const answer = await upload(claimed, data);
        assert.equal(answer.status, 400);
        assert.equal(answer.json.error.code, 'update.blob_hash_mismatch');
        assert.equal(answer.json.error.details.actual, sha256(data));
        assert.equal(await t.platform.updates.blobs.stat(claimed), null);
        assert.equal(await t.platform.updates.blobs.stat(sha256(data)), null);
        assert.ok(!storeFiles().some((f) => f.startsWith('.upload-')), 'no temporary file is left');
      });

      it('refuses an image larger than updates.maxImageBytes (413 update.blob_too_large) by its declared length, before reading it', async () => {
        const hash = sha256(Buffer.from('big'));
        const answer = await send('PUT', blobPath(hash), {
          token: releaser,
          chunks: [Buffer.alloc(1024)],
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(MAX_IMAGE_BYTES + 1) },
        });
        assert.equal(answer.status, 413);
        assert.equal(answer.json.error.code, 'update.blob_too_large');
        assert.equal(answer.json.error.details.limitBytes, MAX_IMAGE_BYTES);
        assert.equal(answer.headers.connection, 'close', 'the server will not read the rest');
        assert.equal(await t.platform.updates.blobs.stat(hash), null);
      });

      onSqlite('cuts off a chunked upload that runs past updates.maxImageBytes (413 update.blob_too_large), keeping nothing', async () => {
        const hash = sha256(Buffer.from('endless'));
        function* endless() {
          const chunk = Buffer.alloc(MiB, 1);
          for (;;) yield chunk;
        }
        const answer = await send('PUT', blobPath(hash), {
          token: releaser,
          chunks: endless(),
          headers: { 'content-type': 'application/octet-stream' },
        });
        assert.equal(answer.status, 413);
        assert.equal(answer.json.error.code, 'update.blob_too_large');
        assert.equal(await t.platform.updates.blobs.stat(hash), null);
        assert.ok(!storeFiles().some((f) => f.startsWith('.upload-')), 'no temporary file is left');
      });

      it('refuses uploads without credentials (401), without firmware:release (403), of another media type (415) or under a malformed hash (400)', async () => {
        const data = Buffer.from('image bytes');
        const hash = sha256(data);
        const anonymous = await send('PUT', blobPath(hash), { chunks: [data], headers: { 'content-type': 'application/octet-stream' } });
        assert.equal(anonymous.status, 401);
        assert.equal(anonymous.json.error.code, 'auth.unauthenticated');
        const forbidden = await upload(hash, data, operator);
        assert.equal(forbidden.status, 403);
        assert.equal(forbidden.json.error.details.permission, 'firmware:release');
        const json = await upload(hash, Buffer.from('{"a":1}'), releaser, { 'content-type': 'application/json' });
        assert.equal(json.status, 415);
        assert.equal(json.json.error.code, 'request.unsupported_media_type');
        for (const name of [hash.toUpperCase(), hash.slice(2), '..%2F..%2Fetc%2Fpasswd', `${hash.slice(0, 62)}%2F.`]) {
          const malformed = await upload(name, data);
          assert.equal(malformed.status, 400, name);
          assert.equal(malformed.json.error.code, 'update.blob_invalid_hash', name);
        }
        assert.equal(await t.platform.updates.blobs.stat(hash), null);
      });

      it('leaves nothing behind when the client disconnects mid-upload', async () => {
        const hash = sha256(Buffer.from('never finished'));
        const tempFiles = () => storeFiles().filter((f) => f.startsWith('.upload-'));
        let sawTemp = false;
        await assert.rejects(
          send('PUT', blobPath(hash), {
            token: releaser,
            chunks: generated(64, randomBytes(64 * 1024)),
            abortAfter: 2 * MiB,
            onAbortPoint: async () => {
              for (let i = 0; i < 100 && !sawTemp; i++) {
                sawTemp = tempFiles().length > 0;
                if (!sawTemp) await new Promise((r) => setTimeout(r, 20));
              }
            },
            headers: { 'content-type': 'application/octet-stream', 'content-length': String(4 * MiB) },
          }),
        );
        assert.ok(sawTemp, 'the upload was being written when the client went away');
        for (let i = 0; i < 100 && tempFiles().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(tempFiles(), []);
        assert.equal(await t.platform.updates.blobs.stat(hash), null);
      });

      describe('targets', () => {
        let image: Buffer;
        let hash: string;
        let path: string;

        before(async () => {
          image = randomBytes(MiB + 333);
          hash = sha256(image);
          assert.equal((await upload(hash, image)).status, 201);
          await release(org, product, '1.2.0', hash, image.length);
          path = targetPath(org, product, hash, '1.2.0');
        });

        it('serves a released image to anyone, whole, with its length, entity tag and range support', async () => {
          const whole = await send('GET', path);
          assert.equal(whole.status, 200);
          assert.ok(whole.body.equals(image));
          assert.equal(whole.headers['content-type'], 'application/octet-stream');
          assert.equal(whole.headers['content-length'], String(image.length));
          assert.equal(whole.headers['accept-ranges'], 'bytes');
          assert.equal(whole.headers.etag, `"${hash}"`);
          const head = await send('HEAD', path, { headers: { range: 'bytes=10-' } });
          assert.equal(head.status, 200, 'HEAD describes the whole image');
          assert.equal(head.headers['content-length'], String(image.length));
          assert.equal(head.body.length, 0);
        });

        it('resumes a download from the middle with identical bytes (206 with Content-Range)', async () => {
          const cut = 700_001;
          const first = await send('GET', path, { headers: { range: `bytes=0-${cut - 1}` } });
          assert.equal(first.status, 206);
          assert.equal(first.headers['content-range'], `bytes 0-${cut - 1}/${image.length}`);
          assert.equal(first.headers['content-length'], String(cut));
          const rest = await send('GET', path, { headers: { range: `bytes=${cut}-`, 'if-range': `"${hash}"` } });
          assert.equal(rest.status, 206);
          assert.equal(rest.headers['content-range'], `bytes ${cut}-${image.length - 1}/${image.length}`);
          assert.ok(Buffer.concat([first.body, rest.body]).equals(image));
          const tail = await send('GET', path, { headers: { range: 'bytes=-100' } });
          assert.equal(tail.status, 206);
          assert.ok(tail.body.equals(image.subarray(image.length - 100)));
        });

        it('answers 416 with the image size for a range past the end', async () => {
          const past = await send('GET', path, { headers: { range: `bytes=${image.length}-` } });
          assert.equal(past.status, 416);
          assert.equal(past.headers['content-range'], `bytes */${image.length}`);
          assert.equal(past.json.error.code, 'update.range_not_satisfiable');
        });

        it('serves the whole image for several ranges or an If-Range naming another version', async () => {
          const multi = await send('GET', path, { headers: { range: 'bytes=0-9,20-29' } });
          assert.equal(multi.status, 200);
          assert.ok(multi.body.equals(image));
          const stale = await send('GET', path, { headers: { range: 'bytes=100-', 'if-range': `"${'0'.repeat(64)}"` } });
          assert.equal(stale.status, 200);
          assert.ok(stale.body.equals(image));
        });

        it('answers 404 for a stored image that no release of that organization names under that target', async () => {
          const other = randomBytes(1000);
          const otherHash = sha256(other);
          assert.equal((await upload(otherHash, other)).status, 201);
          const productB = await testProduct(t.platform, orgB, 'Org B sensor');
          const refused = [
            targetPath(org, product, otherHash, '1.2.0'), // stored, but the release names another image
            targetPath(org, product, otherHash, '9.9.9'), // stored, no release at all
            targetPath(orgB, product, hash, '1.2.0'), // released, but by another organization
            targetPath(orgB, productB, hash, '1.2.0'),
            targetPath(org, product, hash, '1.2.1'), // released image under another version's name
            `/tuf/${org}/targets/${product}/firmware-1.2.0.bin`, // without the hash prefix
            `/tuf/${org}/targets/${hash}`,
            `/tuf/${org}/targets/${product}%2F..%2F${product}/${hash}.firmware-1.2.0.bin`,
          ];
          for (const target of refused) {
            const answer = await send('GET', target);
            assert.equal(answer.status, 404, target);
            assert.equal(answer.json.error.code, 'resource.not_found', target);
          }
          // The same image becomes readable once a release of org B names it, at once (a refusal is not remembered).
          assert.equal((await send('GET', targetPath(orgB, productB, hash, '1.0.0'))).status, 404);
          await release(orgB, productB, '1.0.0', hash, image.length);
          assert.equal((await send('GET', targetPath(orgB, productB, hash, '1.0.0'))).status, 200);
        });

        it('resumes with curl as an independent client: a byte range, then `-C -` completing a partial file', async () => {
          const caFile = join(work, 'ca.pem');
          writeFileSync(caFile, t.ca);
          const curl = (args: string[]) =>
            new Promise<string>((resolve, reject) =>
              execFile('curl', ['-sS', '--cacert', caFile, '-w', '%{http_code}', ...args], { timeout: 20_000 }, (error, stdout) =>
                error ? reject(error) : resolve(stdout),
              ),
            );
          const range = join(work, 'range.bin');
          assert.equal(await curl(['-r', '1000-1999', '-o', range, url(path)]), '206');
          assert.ok(readFileSync(range).equals(image.subarray(1000, 2000)));
          const partial = join(work, 'partial.bin');
          writeFileSync(partial, image.subarray(0, 400_000));
          assert.equal(await curl(['-C', '-', '-o', partial, url(path)]), '206');
          assert.ok(readFileSync(partial).equals(image));
        });
      });
    });
  }
});
