import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString, getHeapStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { judgePasswordHere } from './password-dictionaries.js';
import { PasswordJudgeWorker } from './password-judge-worker.js';

/** The main heap's live size, after a full collection (the flag exposes `gc` to contexts made from now on). */
function liveHeapBytes(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return getHeapStatistics().used_heap_size;
}

const MB = 1024 * 1024;

describe('passwords judged in a worker thread', () => {
  it('answers as the main thread would, and keeps the dictionaries out of the main heap', async () => {
    const before = liveHeapBytes();
    const worker = new PasswordJudgeWorker();
    try {
      await worker.ready();
      const cases: [string, string[]][] = [
        ['password1234', []],
        ['PassWord1234', []],
        ['quorblaxzyxwvut', []],
        ['quorblaxzyxwvut', ['quorblax', 'zyxwvut', 'example', 'com']],
        ['qwertyuiopasdf', []],
        ['violet tractor umbrella sings at dawn', []],
      ];
      const offThread = await Promise.all(cases.map(([password, words]) => worker.judge(password, words)));
      const withWorker = liveHeapBytes();
      assert.ok(
        withWorker - before < 5 * MB,
        `the main heap grew by ${((withWorker - before) / MB).toFixed(1)} MB with the worker's dictionaries`,
      );
      // The same dictionaries built in this thread: what the worker keeps out of it.
      const here = cases.map(([password, words]) => judgePasswordHere(password, words));
      const inThisThread = liveHeapBytes();
      assert.ok(inThisThread - withWorker > 15 * MB, `the dictionaries took ${((inThisThread - withWorker) / MB).toFixed(1)} MB here`);
      assert.deepEqual(offThread, here);
      assert.deepEqual(
        offThread.map((j) => [j.breached, j.score >= 3]),
        [
          [true, false],
          [true, false],
          [false, true],
          [false, false],
          [false, false],
          [false, true],
        ],
      );
    } finally {
      await worker.stop();
    }
  });

  it('judges in the main thread once the worker is gone, what it had not answered included', async () => {
    const worker = new PasswordJudgeWorker();
    await worker.ready();
    const pending = worker.judge('password1234', []);
    await worker.stop();
    assert.equal((await pending).breached, true);
    assert.equal(worker.inMainThread, true);
    assert.equal((await worker.judge('baseball', [])).breached, true);
  });
});
