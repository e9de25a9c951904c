/**
 * A real, tiny file system for the device SDK's full-disk tests: a tmpfs of a few pages mounted
 * over a directory (mount(2) needs root; `canMountTmpfs` says whether this machine allows it, so
 * the tests can say why they are skipped), which a filler file fills to the last page.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './temp.js';

export interface SmallFilesystem {
  dir: string;
  /** The file system's block size: tmpfs allocates whole pages. */
  bsize: number;
  /** Writes a filler file until the file system has no free block left. */
  fill(): void;
  /** Deletes the filler file. */
  free(): void;
  /** Unmounts: lazily, so a file a failed test left open does not hide its failure. */
  unmount(): void;
}

const FILLER = 'filler';

const mount = (dir: string, kib: number) =>
  spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k,mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });

/** Null when tmpfs can be mounted here, else why not (for `it(..., { skip })`). */
export const tmpfsUnavailable: string | null = (() => {
  const probe = tempDir('mount-probe');
  try {
    const result = mount(probe.dir, 64);
    if (result.status !== 0)
      return `cannot mount a tmpfs here (${(result.stderr || result.error?.message || 'mount failed').trim()}): run as root`;
    spawnSync('umount', [probe.dir]);
    return null;
  } finally {
    probe.remove();
  }
})();

/** Mounts a `kib`-KiB tmpfs over `dir` (created if missing). */
export function smallFilesystem(dir: string, kib = 64): SmallFilesystem {
  mkdirSync(dir, { recursive: true });
  const result = mount(dir, kib);
  if (result.status !== 0) throw new Error(`mount tmpfs on ${dir}: ${result.stderr}`);
  return {
    dir,
    bsize: statfsSync(dir).bsize,
    fill: () => fillFilesystem(dir),
    free: () => freeFilesystem(dir),
    unmount() {
      const umount = spawnSync('umount', ['--lazy', dir], { encoding: 'utf8' });
      if (umount.status !== 0) throw new Error(`umount ${dir}: ${umount.stderr}`);
    },
  };
}

/** Writes `dir/filler` until the file system holding `dir` has no free block left. */
export function fillFilesystem(dir: string): void {
  const fd = openSync(join(dir, FILLER), 'a');
  const block = Buffer.alloc(statfsSync(dir).bsize);
  try {
    for (;;) writeSync(fd, block);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
}

/** Deletes what fillFilesystem wrote. */
export function freeFilesystem(dir: string): void {
  rmSync(join(dir, FILLER), { force: true });
}

/**
 * Sends messages through `send(padding)` (a message `padding` bytes longer than the smallest) until
 * the file `size()` measures ends exactly on a block boundary: then the next byte written to it
 * needs a block of its own, which a filled file system does not have.
 */
export function endOnBlock(size: () => number, bsize: number, send: (padding: number) => void, maxPadding = 200): void {
  let overhead = 0;
  for (let before = size(); before % bsize !== 0;) {
    const left = bsize - (before % bsize);
    const exact = left - overhead;
    const padding = overhead > 0 && exact >= 0 && exact <= maxPadding ? exact : Math.max(0, Math.min(maxPadding, left - 2 * overhead));
    send(padding);
    const after = size();
    overhead = after - before - padding;
    before = after;
  }
}
