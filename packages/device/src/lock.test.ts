import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdentityError, IdentityLockedError } from './errors.js';
import { DirectoryLock, LOCK_FILE } from './lock.js';
import { tempDir } from './testing/temp.js';

describe('identity directory lock', () => {
  const dirs: { remove(): void }[] = [];
  after(() => dirs.forEach((d) => d.remove()));
  const fresh = () => {
    const d = tempDir('lock');
    dirs.push(d);
    return d.dir;
  };
  /** The PID of a process that has ended. */
  const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;

  it('refuses a second holder while the owner runs, and is free again once released', () => {
    const dir = fresh();
    const lock = DirectoryLock.acquire(dir);
    assert.match(readFileSync(join(dir, LOCK_FILE), 'utf8'), new RegExp(`^${process.pid} `));
    assert.throws(
      () => DirectoryLock.acquire(dir),
      (error: unknown) => error instanceof IdentityLockedError && error.code === 'identity.locked' && error.pid === process.pid,
    );
    lock.release();
    assert.equal(existsSync(join(dir, LOCK_FILE)), false);
    DirectoryLock.acquire(dir).release();
  });

  it('takes over a lock whose owner is gone: an ended process, one from before a reboot, or a PID now used by another process', () => {
    const dir = fresh();
    const mine = (() => {
      const lock = DirectoryLock.acquire(dir);
      const stamp = readFileSync(join(dir, LOCK_FILE), 'utf8').trim().split(' ');
      lock.release();
      return { bootId: stamp[1]!, startTime: stamp[2]! };
    })();
    const stale = [`${deadPid()} ${mine.bootId} 1`, `${process.pid} not-this-boot ${mine.startTime}`, 'garbage'];
    if (mine.startTime) stale.push(`${process.pid} ${mine.bootId} ${Number(mine.startTime) + 1}`);
    for (const stamp of stale) {
      writeFileSync(join(dir, LOCK_FILE), `${stamp}\n`);
      const lock = DirectoryLock.acquire(dir);
      assert.match(readFileSync(join(dir, LOCK_FILE), 'utf8'), new RegExp(`^${process.pid} `), stamp);
      lock.release();
    }
  });

  it('leaves another holder’s lock in place when released late', () => {
    const dir = fresh();
    const lock = DirectoryLock.acquire(dir);
    writeFileSync(join(dir, LOCK_FILE), `${process.pid} someone-else 1\n`);
    lock.release();
    assert.equal(readFileSync(join(dir, LOCK_FILE), 'utf8'), `${process.pid} someone-else 1\n`);
  });

  it('says to enroll first when the identity directory does not exist', () => {
    assert.throws(
      () => DirectoryLock.acquire(join(fresh(), 'missing')),
      (error: unknown) => error instanceof IdentityError && error.code === 'identity.missing',
    );
  });
});
