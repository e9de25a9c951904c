/**
 * One process at a time per identity directory: two clients on one identity would write the same
 * queue files and knock each other off the broker (same client ID). The lock is a file, `client.lock`,
 * that appears atomically with its content (written beside it, then hard-linked into place, which
 * fails if it exists: O_EXCL semantics without a moment where it is empty). It names the owner: its
 * PID and, on Linux, the boot ID and the process's start time, so that a PID reused after a reboot
 * or by another program does not keep the lock. A lock whose owner no longer runs is taken over;
 * a live owner's is refused with IdentityLockedError. Node has no flock(2) without a native addon,
 * hence a file and PID checks (`process.kill(pid, 0)`).
 */
import { linkSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdentityError, IdentityLockedError } from './errors.js';

export const LOCK_FILE = 'client.lock';

interface Owner {
  pid: number;
  /** `pid bootId startTime` (the last two empty where /proc is missing). */
  stamp: string;
}

const readText = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

const BOOT_ID = readText('/proc/sys/kernel/random/boot_id')?.trim() ?? '';

/** The process's start time (field 22 of /proc/PID/stat, clock ticks since boot): null if it is gone, '' on a system without /proc. */
function startTimeOf(pid: number): string | null {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === null) return BOOT_ID ? null : '';
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
}

const stampOf = (pid: number): string => `${pid} ${BOOT_ID} ${startTimeOf(pid) ?? ''}`;

function readOwner(path: string): Owner | null {
  const stamp = readText(path)?.trim();
  if (stamp === undefined) return null;
  const pid = Number(stamp.split(' ')[0]);
  return { pid: Number.isSafeInteger(pid) && pid > 0 ? pid : 0, stamp };
}

/** Whether the process that wrote `owner` still runs (the same process, not one that got its PID later). */
function alive(owner: Owner): boolean {
  if (owner.pid === 0) return false;
  const [, bootId = '', startTime = ''] = owner.stamp.split(' ');
  if (bootId && BOOT_ID && bootId !== BOOT_ID) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    // EPERM: it exists, under another user.
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  return !startTime || startTimeOf(owner.pid) === startTime;
}

export class DirectoryLock {
  private held = true;

  private constructor(
    readonly path: string,
    private readonly stamp: string,
  ) {}

  /** Takes the lock of `dir`, taking over one whose owner is gone; throws IdentityLockedError while its owner runs. */
  static acquire(dir: string): DirectoryLock {
    const path = join(dir, LOCK_FILE);
    const stamp = stampOf(process.pid);
    const staged = `${path}.${process.pid}`;
    try {
      writeFileSync(staged, `${stamp}\n`, { mode: 0o600 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new IdentityError(`${dir} does not exist: enroll the device first`, 'identity.missing');
      throw error;
    }
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          linkSync(staged, path);
          return new DirectoryLock(path, stamp);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const owner = readOwner(path);
        if (owner === null) continue; // released in the meantime
        if (alive(owner)) throw new IdentityLockedError(path, owner.pid);
        takeOver(path, owner);
      }
      throw new IdentityLockedError(path, readOwner(path)?.pid ?? 0);
    } finally {
      rmSync(staged, { force: true });
    }
  }

  /** Removes the lock file if it is still this lock's. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    if (readOwner(this.path)?.stamp === this.stamp) rmSync(this.path, { force: true });
  }
}

/**
 * Removes a stale lock. It is first moved aside under a name of this process's own, and checked:
 * if another process took the stale lock over between our reading and our move, what was moved is
 * that process's live lock, which goes back and refuses us.
 */
function takeOver(path: string, stale: Owner): void {
  const aside = `${path}.stale-${process.pid}`;
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = readOwner(aside);
  if (moved && moved.stamp !== stale.stamp && alive(moved)) {
    try {
      linkSync(aside, path);
    } finally {
      unlinkSync(aside);
    }
    throw new IdentityLockedError(path, moved.pid);
  }
  unlinkSync(aside);
}
