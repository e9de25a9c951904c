/**
 * Content-addressed image store (a directory by default): blobs named by their SHA-256, written
 * by streaming to a temporary file and renamed into place only once hash and size check out.
 * Skeleton: the signatures below are the contract; the blob store's owner implements them.
 */
import type { Readable } from 'node:stream';

export interface BlobInfo {
  sha256: string;
  length: number;
}

export class BlobStore {
  constructor(
    readonly dir: string,
    readonly options: { maxBytes: number },
  ) {}

  /**
   * Streams `source` into the store. Refused whole (nothing kept) when it exceeds `maxBytes` (or
   * `expected.length`), or when its SHA-256 is not `expected.sha256`. Storing an existing blob again is a no-op.
   */
  async put(_source: Readable, _expected: { sha256: string; length?: number }): Promise<BlobInfo> {
    throw new Error('not implemented');
  }

  /** The blob's size, or null when the store does not hold it. */
  async stat(_sha256: string): Promise<BlobInfo | null> {
    throw new Error('not implemented');
  }

  /** Reads a blob, or the inclusive byte range [start, end] of it. */
  open(_sha256: string, _range?: { start: number; end: number }): Readable {
    throw new Error('not implemented');
  }
}
