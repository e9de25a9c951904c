/**
 * Content-addressed image store: a blob lives at `<dir>/sha256/<first 2 hex>/<64 hex>`. An upload
 * streams into a private temporary file beside its final place, hashed and counted as it is
 * written; it is renamed into place (atomically, after fsync) only once size and SHA-256 check
 * out, so a reader never sees a partial or wrong image and a failed upload leaves nothing behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BoundedCache } from '../bounded-cache.js';
import { UpdateError } from './errors.js';

export interface BlobInfo {
  sha256: string;
  length: number;
}

export interface PutResult extends BlobInfo {
  /** False when the store already held the blob (the upload was checked, then discarded). */
  created: boolean;
}

/** The name given for a blob is not a SHA-256 in lowercase hex (it becomes a path: nothing else may pass). */
export class BlobInvalidHashError extends UpdateError {
  constructor(given: string) {
    super('update.blob_invalid_hash', 'A blob is named by its SHA-256: 64 lowercase hexadecimal characters', 400, {
      given: given.slice(0, 80),
    });
  }
}

/** The uploaded bytes do not hash to the SHA-256 they were sent under. */
export class BlobHashMismatchError extends UpdateError {
  constructor(expected: string, actual: string) {
    super('update.blob_hash_mismatch', `The upload's SHA-256 is ${actual}, not ${expected} as named: nothing was stored`, 400, {
      expected,
      actual,
    });
  }
}

/** The upload is larger than the store accepts. */
export class BlobTooLargeError extends UpdateError {
  constructor(limitBytes: number) {
    super('update.blob_too_large', `An image may be at most ${limitBytes} bytes (updates.maxImageBytes): nothing was stored`, 413, {
      limitBytes,
    });
  }
}

/** The upload is longer or shorter than the length it was announced with. */
export class BlobLengthMismatchError extends UpdateError {
  /** `received` is null when more than the announced length arrived (the upload was cut there). */
  constructor(expected: number, received: number | null) {
    super(
      'update.blob_length_mismatch',
      `The upload was announced as ${expected} bytes but ${received === null ? 'more' : received} arrived: nothing was stored`,
      400,
      { expected, received },
    );
  }
}

/** A lower bound on an upload's size than the store's own (a quota's room), with its error. */
export interface UploadCap {
  bytes: number;
  exceeded: () => UpdateError;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const TEMP_PREFIX = '.upload-';
/** A temporary file untouched this long belongs to an upload that died with its process. */
export const STALE_UPLOAD_MS = 3_600_000;

export function assertBlobHash(sha256: string): void {
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) throw new BlobInvalidHashError(String(sha256));
}

/** The slice an image kept in memory is written in (see `sliced`). */
export const SERVE_SLICE_BYTES = 64 * 1024;

/**
 * A buffer read out in SERVE_SLICE_BYTES slices (views of it, no copy), each handed on only when
 * the response has taken the one before. Written whole, an image goes through TLS in one write:
 * node copies it next to the headers into one allocation, encrypts all of it at once, and keeps
 * what the socket has not taken yet (all of it, for a device reading slowly) in memory per download:
 * up to HOT_IMAGE_MAX_BYTES for each device downloading, and fresh pages faulted in for each.
 */
export function sliced(data: Buffer): Readable {
  let offset = 0;
  return new Readable({
    highWaterMark: SERVE_SLICE_BYTES,
    read() {
      if (offset >= data.length) return void this.push(null);
      const end = Math.min(offset + SERVE_SLICE_BYTES, data.length);
      this.push(data.subarray(offset, end));
      offset = end;
    },
  });
}

/** An image up to this size is kept in memory once served whole (HOT_TOTAL_BYTES for all of them). */
export const HOT_IMAGE_MAX_BYTES = 8 * 1024 * 1024;
const HOT_TOTAL_BYTES = 64 * 1024 * 1024;

export class BlobStore {
  /** Temporary files of uploads running in this process: never swept, however slow. */
  private readonly uploading = new Set<string>();
  /**
   * Small images a rollout's devices download, in memory: a blob's name is its hash, so the bytes
   * kept are the bytes on disk for as long as the blob exists (remove forgets it). Each device's
   * download is then slices of a buffer written (`sliced`), not an open, a stat, reads and a close.
   */
  private readonly hot = new BoundedCache<Buffer>(256, HOT_TOTAL_BYTES);
  private readonly loading = new Map<string, Promise<Buffer | null>>();

  constructor(
    readonly dir: string,
    readonly options: { maxBytes: number },
  ) {}

  /**
   * Streams `source` into the store. Refused whole (nothing kept) when it exceeds `maxBytes` (or
   * `expected.length`), or when its SHA-256 is not `expected.sha256`. Storing an existing blob again
   * checks the bytes the same way and keeps nothing new. On refusal the source is left paused, not
   * destroyed: the caller decides what becomes of it (an HTTP route still answers on its socket).
   */
  async put(source: Readable, expected: { sha256: string; length?: number }, cap?: UploadCap): Promise<PutResult> {
    // Until `consume` iterates the source (after a stat, a mkdir and an open), an error the source
    // emits would have no listener and be thrown as uncaught: held here, the iterator then finds the
    // stream errored and rejects with it.
    source.on('error', ignore);
    try {
      return await this.write(source, expected, cap);
    } finally {
      source.off('error', ignore);
    }
  }

  private async write(source: Readable, expected: { sha256: string; length?: number }, cap?: UploadCap): Promise<PutResult> {
    assertBlobHash(expected.sha256);
    const limit = this.limitFor(expected.length, cap);
    const final = this.pathOf(expected.sha256);
    const existing = await this.stat(expected.sha256);
    if (existing) {
      await this.consume(source, expected, limit, null);
      return { ...existing, created: false };
    }

    const folder = join(this.root, expected.sha256.slice(0, 2));
    await mkdir(folder, { recursive: true, mode: 0o700 });
    const temp = join(folder, `${TEMP_PREFIX}${randomBytes(12).toString('hex')}`);
    this.uploading.add(temp);
    let file: FileHandle | null = null;
    try {
      file = await open(temp, 'wx', 0o600);
      const length = await this.consume(source, expected, limit, file);
      await file.sync();
      await file.close();
      file = null;
      // Two uploads of one blob may race here: both files hold the same verified bytes, so whichever
      // rename lands last simply replaces the other, and readers only ever see a complete file.
      await rename(temp, final);
      await syncDirectory(folder);
      return { sha256: expected.sha256, length, created: true };
    } catch (error) {
      await file?.close().catch(() => undefined);
      await rm(temp, { force: true });
      throw error;
    } finally {
      this.uploading.delete(temp);
    }
  }

  /** The blob's size, or null when the store does not hold it. */
  async stat(sha256: string): Promise<BlobInfo | null> {
    assertBlobHash(sha256);
    try {
      const info = await stat(this.pathOf(sha256));
      return info.isFile() ? { sha256, length: info.size } : null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  /** The blob's bytes if this process keeps them in memory (see `bytes`). */
  cached(sha256: string): Buffer | undefined {
    return this.hot.get(sha256);
  }

  /**
   * The whole blob in memory, read once and kept when it is at most HOT_IMAGE_MAX_BYTES and its
   * bytes hash to its name; null when it is larger, gone, or does not check out (stream it with `open`).
   */
  async bytes(sha256: string, length: number): Promise<Buffer | null> {
    assertBlobHash(sha256);
    const cached = this.hot.get(sha256);
    if (cached) return cached;
    if (length > HOT_IMAGE_MAX_BYTES) return null;
    let load = this.loading.get(sha256);
    if (!load) {
      load = readFile(this.pathOf(sha256))
        .then((data) => {
          if (data.length !== length || createHash('sha256').update(data).digest('hex') !== sha256) return null;
          this.hot.set(sha256, data, data.length);
          return data;
        })
        .catch(() => null)
        .finally(() => this.loading.delete(sha256));
      this.loading.set(sha256, load);
    }
    return load;
  }

  /** Reads a blob, or the inclusive byte range [start, end] of it. */
  open(sha256: string, range?: { start: number; end: number }): Readable {
    assertBlobHash(sha256);
    if (range && !(Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start >= 0 && range.end >= range.start)) {
      throw new RangeError(`invalid byte range ${range.start}-${range.end}`);
    }
    return createReadStream(this.pathOf(sha256), range ? { start: range.start, end: range.end } : {});
  }

  /**
   * Removes temporary files left by uploads that died with their process (crash, kill): those not
   * written to for `olderThanMs`. Returns how many were removed. Run at start and now and then.
   */
  async sweep(olderThanMs = STALE_UPLOAD_MS, now = Date.now()): Promise<number> {
    let removed = 0;
    for await (const file of this.files()) {
      if (!file.name.startsWith(TEMP_PREFIX) || this.uploading.has(file.path) || now - file.modifiedAt <= olderThanMs) continue;
      await rm(file.path, { force: true });
      removed++;
    }
    return removed;
  }

  /** Every blob the store holds, with its last modification time (ms). */
  async *list(): AsyncGenerator<{ sha256: string; modifiedAt: number }> {
    for await (const file of this.files()) if (SHA256_HEX.test(file.name)) yield { sha256: file.name, modifiedAt: file.modifiedAt };
  }

  /** Every file under the store's folders: blobs and temporary upload files. */
  private async *files(): AsyncGenerator<{ name: string; path: string; modifiedAt: number }> {
    let folders: string[];
    try {
      folders = await readdir(this.root);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const folder of folders) {
      for (const name of await readdir(join(this.root, folder)).catch(() => [] as string[])) {
        const path = join(this.root, folder, name);
        const info = await stat(path).catch(() => null);
        if (info?.isFile()) yield { name, path, modifiedAt: info.mtimeMs };
      }
    }
  }

  /** Deletes a blob; false when the store did not hold it. */
  async remove(sha256: string): Promise<boolean> {
    assertBlobHash(sha256);
    this.hot.delete(sha256);
    try {
      await rm(this.pathOf(sha256));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  private get root(): string {
    return join(this.dir, 'sha256');
  }

  private pathOf(sha256: string): string {
    return join(this.root, sha256.slice(0, 2), sha256);
  }

  /** The most bytes this upload may carry, and the error for going past it. */
  private limitFor(length: number | undefined, cap: UploadCap | undefined): UploadCap {
    let limit: UploadCap;
    if (length === undefined) limit = { bytes: this.options.maxBytes, exceeded: () => new BlobTooLargeError(this.options.maxBytes) };
    else {
      if (!Number.isSafeInteger(length) || length < 0)
        throw new TypeError(`expected length must be a whole number of bytes, not ${length}`);
      if (length > this.options.maxBytes) throw new BlobTooLargeError(this.options.maxBytes);
      limit = { bytes: length, exceeded: () => new BlobLengthMismatchError(length, null) };
    }
    if (!cap || cap.bytes >= limit.bytes) return limit;
    if (length !== undefined) throw cap.exceeded();
    return cap;
  }

  /**
   * Reads the source to its end, hashing and counting, into `file` (or nowhere). Stops reading the
   * moment the count passes the limit. The iterator does not destroy the source when we stop early.
   */
  private async consume(
    source: Readable,
    expected: { sha256: string; length?: number },
    limit: UploadCap,
    file: FileHandle | null,
  ): Promise<number> {
    const hash = createHash('sha256');
    let length = 0;
    for await (const chunk of source.iterator({ destroyOnReturn: false })) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      length += bytes.length;
      if (length > limit.bytes) throw limit.exceeded();
      hash.update(bytes);
      if (file) await writeAll(file, bytes);
    }
    if (expected.length !== undefined && length !== expected.length) throw new BlobLengthMismatchError(expected.length, length);
    const actual = hash.digest('hex');
    if (actual !== expected.sha256) throw new BlobHashMismatchError(expected.sha256, actual);
    return length;
  }
}

function ignore(): void {}

async function writeAll(file: FileHandle, bytes: Buffer): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await file.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

/** Makes a rename durable: the directory entry itself must reach the disk. */
async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
