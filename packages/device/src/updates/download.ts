/**
 * Downloads an image into a slot's partial file the way a device on a bad network must: it
 * resumes with `Range: bytes=<have>-` (re-hashing the prefix it already has; a 200 answer
 * restarts from zero), hashes while it streams (every signed hash: all must match), cuts the
 * transfer the moment the server sends more than the signed length, and gives up on an attempt
 * when no byte arrives for the idle timeout, then resumes, a bounded number of times. A hash
 * mismatch deletes the partial file; a hash algorithm node:crypto lacks is refused before any byte
 * is fetched (it could not be checked).
 */
import { createHash, getHashes, type Hash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, fsyncSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { DeviceError } from '../errors.js';
import { DownloadStalledError, HashMismatchError, LengthExceededError, MetadataInvalidError } from './errors.js';
import { discard, type HttpGet } from './https.js';

export interface DownloadOptions {
  url: string;
  /** The agent's GET (`mutualTls(identity)` on a device). */
  get: HttpGet;
  /** The partial file (kept between attempts and across restarts). */
  path: string;
  length: number;
  /** The signed hashes, hex, by algorithm (`{ sha256 }` at least for an image the director names). */
  hashes: Record<string, string>;
  /** An attempt is abandoned when no byte arrives for this long (default 30 s). */
  idleTimeoutMs?: number;
  /** Attempts in all, the first included (default 5). */
  maxAttempts?: number;
  /** Called after each chunk is written, with the bytes held so far. */
  onProgress?: (bytes: number) => void;
}

/** Why one attempt ended without the whole image: retried with a resume. */
class AttemptInterrupted extends Error {
  constructor(
    message: string,
    readonly stalled: boolean,
  ) {
    super(message);
  }
}

/** The running hashes of one download, one per signed algorithm. */
type Hashes = Map<string, Hash>;

export async function downloadImage(options: DownloadOptions): Promise<void> {
  const known = new Set(getHashes());
  const algorithms = Object.keys(options.hashes);
  const unknown = algorithms.filter((algorithm) => !known.has(algorithm));
  if (algorithms.length === 0 || unknown.length > 0) {
    throw new MetadataInvalidError(
      `${options.url}: the signed hashes (${algorithms.join(', ') || 'none'}) include none or one this device cannot compute (${unknown.join(', ')})`,
    );
  }
  const maxAttempts = options.maxAttempts ?? 5;
  const idleMs = options.idleTimeoutMs ?? 30_000;
  let stalls = 0;
  let last: AttemptInterrupted | null = null;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    try {
      await attemptDownload(options, idleMs);
      return;
    } catch (error) {
      if (!(error instanceof AttemptInterrupted)) throw error;
      last = error;
      if (error.stalled) stalls++;
    }
  }
  if (stalls > 0) throw new DownloadStalledError(idleMs, maxAttempts);
  throw new DeviceError(`The download of ${options.url} failed ${maxAttempts} times: ${last?.message}`, 'update.download_failed');
}

async function attemptDownload(options: DownloadOptions, idleMs: number): Promise<void> {
  let have = existsSync(options.path) ? statSync(options.path).size : 0;
  if (have > options.length) {
    rmSync(options.path);
    have = 0;
  }
  let hashes = await hashPrefix(options.path, have, options.hashes);
  if (have < options.length) {
    let res: IncomingMessage;
    try {
      res = await options.get(options.url, { headers: have > 0 ? { range: `bytes=${have}-` } : {}, timeoutMs: idleMs });
    } catch (error) {
      throw new AttemptInterrupted((error as Error).message, false);
    }
    const status = res.statusCode ?? 0;
    if (status === 200 || (status === 206 && !rangeStartsAt(res, have))) {
      // The server sent the whole image (or some other range): start over from byte zero.
      have = 0;
      hashes = await hashPrefix(options.path, 0, options.hashes);
    } else if (status !== 206) {
      await discard(res, idleMs);
      if (status === 416) rmSync(options.path, { force: true });
      throw status === 416 || status >= 500
        ? new AttemptInterrupted(`HTTP ${status}`, false)
        : new DeviceError(`GET ${options.url} answered ${status}`, `http.${status}`);
    }
    have = await receive(res, options, have, hashes, idleMs);
    if (have < options.length) throw new AttemptInterrupted(`The transfer ended after ${have} of ${options.length} bytes`, false);
  }
  for (const [algorithm, hash] of hashes) {
    const actual = hash.digest('hex');
    if (actual !== options.hashes[algorithm]) {
      rmSync(options.path, { force: true });
      throw new HashMismatchError(options.hashes[algorithm]!, actual, algorithm);
    }
  }
}

/** Streams the body into the file from offset `have`; resolves with the bytes held at the end. */
function receive(res: IncomingMessage, options: DownloadOptions, start: number, hashes: Hashes, idleMs: number): Promise<number> {
  const fd = openSync(options.path, start === 0 ? 'w' : 'r+');
  let have = start;
  return new Promise<number>((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      if (error) {
        res.destroy();
        reject(error);
      } else resolve(have);
    };
    let idle = setTimeout(() => finish(new AttemptInterrupted(`No data for ${idleMs} ms`, true)), idleMs);
    res.on('data', (chunk: Buffer) => {
      if (settled) return;
      clearTimeout(idle);
      if (have + chunk.length > options.length) {
        finish(new LengthExceededError(options.length));
        rmSync(options.path, { force: true });
        return;
      }
      writeSync(fd, chunk, 0, chunk.length, have);
      for (const hash of hashes.values()) hash.update(chunk);
      have += chunk.length;
      idle = setTimeout(() => finish(new AttemptInterrupted(`No data for ${idleMs} ms`, true)), idleMs);
      options.onProgress?.(have);
    });
    res.on('end', () => finish(null));
    res.on('error', (error) => finish(new AttemptInterrupted(error.message, false)));
    res.on('close', () => finish(new AttemptInterrupted('The connection closed', false)));
  });
}

function rangeStartsAt(res: IncomingMessage, offset: number): boolean {
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers['content-range'] ?? '');
  return match !== null && Number(match[1]) === offset;
}

/** Running hashes, one per signed algorithm, over the first `length` bytes of the file already on disk. */
async function hashPrefix(path: string, length: number, signed: Record<string, string>): Promise<Hashes> {
  const hashes: Hashes = new Map(Object.keys(signed).map((algorithm) => [algorithm, createHash(algorithm)]));
  if (length === 0) return hashes;
  for await (const chunk of createReadStream(path, { end: length - 1 })) for (const hash of hashes.values()) hash.update(chunk as Buffer);
  return hashes;
}
