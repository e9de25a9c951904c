/**
 * Content-addressed image store (a directory by default): blobs named by their SHA-256, written
 * by streaming to a temporary file and renamed into place only once hash and size check out.
 * Owner: releases helper (skeleton).
 */
export class BlobStore {
  constructor(
    readonly dir: string,
    readonly options: { maxBytes: number },
  ) {}
}
