import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import {
  BlobHashMismatchError,
  BlobInvalidHashError,
  BlobLengthMismatchError,
  BlobStore,
  BlobTooLargeError,
  HOT_IMAGE_MAX_BYTES,
  SERVE_SLICE_BYTES,
  sliced,
} from './blobs.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Every file under the store, relative to it (blobs and temporary files alike). */
function filesIn(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else out.push(relative(dir, path));
    }
  };
  try {
    walk(dir);
  } catch {
    return out;
  }
  return out.sort();
}

/** An upload that never ends, counting the bytes it was asked for. */
class EndlessUpload extends Readable {
  produced = 0;
  constructor(private readonly chunk: Buffer) {
    super();
  }
  override _read(): void {
    this.produced += this.chunk.length;
    this.push(this.chunk);
  }
}

const collect = async (stream: Readable) => Buffer.concat(await stream.toArray());

describe('blob store', () => {
  let root: string;
  let n = 0;
  const freshStore = (maxBytes = 4 * 1024 * 1024) => new BlobStore(join(root, `store-${++n}`), { maxBytes });

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'bulwark-blobs-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('stores a blob under sha256/<2 hex>/<hash> with private permissions and reads it back whole and by range', async () => {
    const store = freshStore();
    const data = randomBytes(300_000);
    const hash = sha256(data);
    const put = await store.put(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), { sha256: hash, length: data.length });
    assert.deepEqual(put, { sha256: hash, length: data.length, created: true });
    assert.deepEqual(filesIn(store.dir), [join('sha256', hash.slice(0, 2), hash)]);
    assert.equal(statSync(join(store.dir, 'sha256', hash.slice(0, 2), hash)).mode & 0o777, 0o600);
    assert.equal(statSync(join(store.dir, 'sha256', hash.slice(0, 2))).mode & 0o777, 0o700);
    assert.equal(statSync(join(store.dir, 'sha256')).mode & 0o777, 0o700);

    assert.deepEqual(await store.stat(hash), { sha256: hash, length: data.length });
    assert.ok((await collect(store.open(hash))).equals(data));
    assert.ok((await collect(store.open(hash, { start: 1000, end: 1999 }))).equals(data.subarray(1000, 2000)));
    assert.ok((await collect(store.open(hash, { start: 299_999, end: 299_999 }))).equals(data.subarray(299_999)));
    assert.equal(await store.stat(sha256(Buffer.from('absent'))), null);
  });

  it('keeps a small blob in memory once read whole, never a larger one or a file that no longer hashes to its name, and forgets it on remove', async () => {
    const store = freshStore(HOT_IMAGE_MAX_BYTES + 1);
    const small = randomBytes(200_000);
    const smallHash = sha256(small);
    await store.put(Readable.from([small]), { sha256: smallHash });
    assert.equal(store.cached(smallHash), undefined, 'nothing is kept before a whole read');
    assert.ok((await store.bytes(smallHash, small.length))!.equals(small));
    assert.ok(store.cached(smallHash)!.equals(small), 'kept after it');

    const large = randomBytes(HOT_IMAGE_MAX_BYTES + 1);
    const largeHash = sha256(large);
    await store.put(Readable.from([large]), { sha256: largeHash });
    assert.equal(await store.bytes(largeHash, large.length), null, 'streamed instead');
    assert.equal(store.cached(largeHash), undefined);

    // A file altered on disk is not pinned in memory: it is streamed as it is (the device checks the hash).
    const other = randomBytes(1000);
    const otherHash = sha256(other);
    await store.put(Readable.from([other]), { sha256: otherHash });
    writeFileSync(join(store.dir, 'sha256', otherHash.slice(0, 2), otherHash), randomBytes(1000));
    assert.equal(await store.bytes(otherHash, other.length), null);
    assert.equal(store.cached(otherHash), undefined);

    assert.equal(await store.remove(smallHash), true);
    assert.equal(store.cached(smallHash), undefined, 'a removed blob is not served from memory');
    assert.equal(await store.bytes(smallHash, small.length), null);
  });

  it('refuses bytes that hash to something else than named, and keeps nothing', async () => {
    const store = freshStore();
    const data = randomBytes(50_000);
    const claimed = sha256(Buffer.from('another image'));
    await assert.rejects(store.put(Readable.from([data]), { sha256: claimed }), (error: unknown) => {
      assert.ok(error instanceof BlobHashMismatchError);
      assert.equal(error.code, 'update.blob_hash_mismatch');
      assert.equal(error.status, 400);
      assert.equal(error.details?.actual, sha256(data));
      return true;
    });
    assert.equal(await store.stat(claimed), null);
    assert.deepEqual(filesIn(store.dir), []);
  });

  it('stops reading an endless upload right after it passes maxBytes, and keeps nothing', async () => {
    const maxBytes = 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 7);
    const store = freshStore(maxBytes);
    const upload = new EndlessUpload(chunk);
    await assert.rejects(store.put(upload, { sha256: sha256(chunk) }), (error: unknown) => {
      assert.ok(error instanceof BlobTooLargeError);
      assert.equal(error.code, 'update.blob_too_large');
      assert.equal(error.status, 413);
      return true;
    });
    // The store read one chunk past the limit; the stream may have buffered one more ahead of it.
    assert.ok(upload.produced <= maxBytes + 2 * chunk.length, `read ${upload.produced} bytes of an endless stream`);
    assert.equal(upload.destroyed, false, 'the caller decides what becomes of a refused source');
    assert.deepEqual(filesIn(store.dir), []);
  });

  it('refuses an announced length above maxBytes before reading anything', async () => {
    const store = freshStore(1024);
    const upload = new EndlessUpload(Buffer.alloc(10));
    await assert.rejects(store.put(upload, { sha256: sha256(Buffer.alloc(0)), length: 1025 }), BlobTooLargeError);
    assert.equal(upload.produced, 0);
  });

  it('refuses an upload longer or shorter than its announced length, and keeps nothing', async () => {
    const store = freshStore();
    const data = randomBytes(10_000);
    const hash = sha256(data);
    for (const length of [9_999, 10_001]) {
      await assert.rejects(store.put(Readable.from([data]), { sha256: hash, length }), (error: unknown) => {
        assert.ok(error instanceof BlobLengthMismatchError);
        assert.equal(error.code, 'update.blob_length_mismatch');
        assert.equal(error.status, 400);
        return true;
      });
    }
    assert.deepEqual(filesIn(store.dir), []);
  });

  it('refuses a name that is not 64 lowercase hex, since it becomes a path', async () => {
    const store = freshStore();
    const good = sha256(Buffer.from('x'));
    for (const name of [
      good.toUpperCase(),
      good.slice(1),
      `${good}0`,
      `../../${good.slice(6)}`,
      `${good.slice(0, 63)}/`,
      '',
      `${good.slice(0, 63)}\0`,
    ]) {
      await assert.rejects(
        store.put(Readable.from([Buffer.from('x')]), { sha256: name }),
        (error: unknown) => error instanceof BlobInvalidHashError && error.code === 'update.blob_invalid_hash' && error.status === 400,
        name,
      );
      await assert.rejects(store.stat(name), BlobInvalidHashError);
      assert.throws(() => store.open(name), BlobInvalidHashError);
    }
    assert.deepEqual(filesIn(store.dir), []);
  });

  it('answers an upload of a blob it holds without writing, but still refuses wrong bytes for it', async () => {
    const store = freshStore();
    const data = randomBytes(20_000);
    const hash = sha256(data);
    await store.put(Readable.from([data]), { sha256: hash });
    const path = join(store.dir, 'sha256', hash.slice(0, 2), hash);
    const before = statSync(path);
    assert.deepEqual(await store.put(Readable.from([data]), { sha256: hash }), { sha256: hash, length: data.length, created: false });
    await assert.rejects(store.put(Readable.from([randomBytes(20_000)]), { sha256: hash }), BlobHashMismatchError);
    assert.equal(statSync(path).ino, before.ino, 'the stored file was not replaced');
    assert.ok((await collect(store.open(hash))).equals(data));
    assert.deepEqual(filesIn(store.dir), [join('sha256', hash.slice(0, 2), hash)]);
  });

  it('lets two uploads of the same blob run at once: both succeed and one file remains', async () => {
    const store = freshStore();
    const data = randomBytes(256 * 1024);
    const hash = sha256(data);
    const a = new PassThrough();
    const b = new PassThrough();
    const puts = Promise.all([store.put(a, { sha256: hash }), store.put(b, { sha256: hash })]);
    // Interleave the two uploads' chunks so both temporary files exist at the same time.
    for (let offset = 0; offset < data.length; offset += 16 * 1024) {
      a.write(data.subarray(offset, offset + 16 * 1024));
      b.write(data.subarray(offset, offset + 16 * 1024));
      await new Promise((resolve) => setImmediate(resolve));
    }
    a.end();
    b.end();
    const results = await puts;
    assert.deepEqual(
      results.map((r) => r.length),
      [data.length, data.length],
    );
    assert.deepEqual(filesIn(store.dir), [join('sha256', hash.slice(0, 2), hash)]);
    assert.ok((await collect(store.open(hash))).equals(data));
  });

  it('removes the temporary file when the source fails mid-upload (a client that disconnects)', async () => {
    const store = freshStore();
    const source = new PassThrough();
    const hash = sha256(Buffer.from('never complete'));
    const put = store.put(source, { sha256: hash });
    source.write(randomBytes(100_000));
    for (let i = 0; i < 200 && filesIn(store.dir).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(filesIn(store.dir).length, 1, 'the upload is being written to a temporary file');
    source.destroy(new Error('connection reset'));
    await assert.rejects(put, /connection reset/);
    assert.deepEqual(filesIn(store.dir), []);
  });

  it('refuses a source that fails before the upload reads it (a client gone at once), without an uncaught error or a file left', async () => {
    const store = freshStore();
    for (const held of [false, true]) {
      const source = new PassThrough();
      const hash = sha256(Buffer.from('held'));
      if (held) await store.put(Readable.from([Buffer.from('held')]), { sha256: hash });
      const put = store.put(source, { sha256: hash });
      source.destroy(new Error('connection reset'));
      await assert.rejects(put, /connection reset/);
      assert.deepEqual(filesIn(store.dir), held ? [join('sha256', hash.slice(0, 2), hash)] : []);
    }
  });

  it('sweeps temporary files left over an hour ago by a crashed upload, sparing blobs, recent files and running uploads', async () => {
    const store = freshStore();
    const data = Buffer.from('kept blob');
    const hash = sha256(data);
    await store.put(Readable.from([data]), { sha256: hash });
    const folder = join(store.dir, 'sha256', 'ab');
    mkdirSync(folder, { recursive: true });
    const stale = join(folder, '.upload-stale');
    const recent = join(folder, '.upload-recent');
    writeFileSync(stale, 'partial');
    writeFileSync(recent, 'partial');
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(stale, twoHoursAgo, twoHoursAgo);
    utimesSync(join(store.dir, 'sha256', hash.slice(0, 2), hash), twoHoursAgo, twoHoursAgo);

    // A running upload whose temporary file has not been written to for two hours (a stalled client).
    const slow = new PassThrough();
    const slowHash = sha256(Buffer.from('slow upload'));
    const running = store.put(slow, { sha256: slowHash });
    slow.write('slow ');
    const runningTempOf = () => filesIn(store.dir).find((f) => f.startsWith(join('sha256', slowHash.slice(0, 2), '.upload-')));
    for (let i = 0; i < 200 && !runningTempOf(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    const runningTemp = runningTempOf()!;
    utimesSync(join(store.dir, runningTemp), twoHoursAgo, twoHoursAgo);

    assert.equal(await store.sweep(), 1);
    const left = filesIn(store.dir);
    assert.ok(!left.includes(relative(store.dir, stale)));
    assert.ok(left.includes(relative(store.dir, recent)));
    assert.ok(left.includes(runningTemp));
    assert.ok(left.includes(join('sha256', hash.slice(0, 2), hash)));

    slow.end('upload');
    assert.equal((await running).created, true);
    assert.equal(await text(store.open(slowHash)), 'slow upload');
    assert.equal(await freshStore().sweep(), 0, 'a store that was never written to has nothing to sweep');
  });
});

describe('an image served from memory', () => {
  it('is read out in slices of the buffer itself (no copy), in order, covering it exactly', async () => {
    for (const length of [0, 1, SERVE_SLICE_BYTES - 1, SERVE_SLICE_BYTES, 3 * SERVE_SLICE_BYTES + 7]) {
      const image = randomBytes(length);
      const slices: Buffer[] = [];
      for await (const slice of sliced(image)) slices.push(slice as Buffer);
      assert.ok(slices.every((slice) => slice.length > 0 && slice.length <= SERVE_SLICE_BYTES && slice.buffer === image.buffer));
      assert.equal(slices.length, Math.ceil(length / SERVE_SLICE_BYTES));
      assert.ok(Buffer.concat(slices).equals(image), `${length} bytes`);
    }
  });

  it('moves at most two slices on to a reader that does not read (a device downloading slowly), not the whole image', async () => {
    const image = randomBytes(HOT_IMAGE_MAX_BYTES);
    const slow = new PassThrough({ highWaterMark: 1 });
    sliced(image).pipe(slow);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // What the pipe moved on: one slice in the reader's readable buffer, the next waiting on its writable side.
    assert.ok(
      slow.readableLength + slow.writableLength <= 2 * SERVE_SLICE_BYTES,
      `${slow.readableLength + slow.writableLength} bytes moved on`,
    );
    const received = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      slow.on('data', (chunk: Buffer) => chunks.push(chunk)).on('end', () => resolve(Buffer.concat(chunks)));
    });
    assert.ok(received.equals(image));
  });
});
