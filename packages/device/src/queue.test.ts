import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { QueueFullError, QueueWriteError } from './errors.js';
import { FileQueue, MemoryQueue, type QueuedMessage } from './queue.js';
import { endOnBlock, smallFilesystem, tmpfsUnavailable, type SmallFilesystem } from './testing/small-fs.js';
import { tempDir } from './testing/temp.js';

const storageFull = (error: unknown) => error instanceof QueueWriteError && error.code === 'queue.storage_full';

const drain = (q: MemoryQueue) => {
  const out: string[] = [];
  for (let m = q.after(-1); m; m = q.after(m.seq)) out.push(m.payload);
  return out;
};

describe('offline queue', () => {
  const dirs: { remove(): void }[] = [];
  const fresh = () => {
    const d = tempDir('queue');
    dirs.push(d);
    return d.dir;
  };
  after(() => dirs.forEach((d) => d.remove()));

  it('keeps unacknowledged messages across a restart, in order, and forgets acknowledged ones', () => {
    const dir = fresh();
    const q = new FileQueue(dir);
    for (let i = 0; i < 5; i++) q.append('telemetry', `{"values":{"n":${i}}}`);
    q.ack(0);
    q.ack(2); // out of order: 1 is still pending
    q.close();
    const reopened = new FileQueue(dir);
    assert.deepEqual(drain(reopened), ['{"values":{"n":1}}', '{"values":{"n":3}}', '{"values":{"n":4}}']);
    assert.equal(reopened.size, 3);
    // Sequence numbers keep going up after a restart: an old acknowledgement cannot hit a new message.
    assert.equal(reopened.append('telemetry', '{"values":{"n":5}}').seq, 5);
    reopened.close();
  });

  it('cuts off a torn last line (a crash mid-write) and keeps everything before it', () => {
    const dir = fresh();
    const q = new FileQueue(dir);
    q.append('telemetry', '{"values":{"a":1}}');
    q.append('telemetry', '{"values":{"a":2}}');
    q.close();
    const [segment] = readdirSync(dir);
    const before = statSync(join(dir, segment!)).size;
    appendFileSync(join(dir, segment!), '{"s":2,"t":"telemetry","p":"{\\"val');
    const reopened = new FileQueue(dir);
    assert.deepEqual(drain(reopened), ['{"values":{"a":1}}', '{"values":{"a":2}}']);
    assert.equal(reopened.tornLines, 1);
    assert.equal(reopened.corruptLines, 0);
    assert.equal(statSync(join(dir, segment!)).size, before);
    assert.equal(reopened.append('telemetry', '{"values":{"a":3}}').seq, 2);
    reopened.close();
    assert.deepEqual(drain(new FileQueue(dir)), ['{"values":{"a":1}}', '{"values":{"a":2}}', '{"values":{"a":3}}']);
  });

  it('deletes segments once every message in them is acknowledged', () => {
    const dir = fresh();
    const q = new FileQueue(dir, { segmentBytes: 200 });
    const seqs = Array.from({ length: 40 }, (_, i) => q.append('telemetry', `{"values":{"n":${i}}}`).seq);
    assert.ok(readdirSync(dir).length > 5);
    for (const seq of seqs) q.ack(seq);
    assert.equal(q.size, 0);
    assert.ok(readdirSync(dir).length <= 2, `segments left: ${readdirSync(dir).join(', ')}`);
    q.close();
    assert.equal(new FileQueue(dir).size, 0);
  });

  it('refuses a message beyond its byte bound, and takes messages again once some are acknowledged', () => {
    for (const q of [new MemoryQueue({ maxBytes: 100 }), new FileQueue(fresh(), { maxBytes: 100, fsync: false })]) {
      const first = q.append('telemetry', 'x'.repeat(40));
      q.append('telemetry', 'x'.repeat(40));
      assert.throws(() => q.append('telemetry', 'x'.repeat(40)), QueueFullError);
      q.ack(first.seq);
      q.append('telemetry', 'x'.repeat(40));
      assert.equal(q.size, 2);
      q.close();
    }
  });

  /**
   * Runs `test` on a file queue alone on a small file system, holding one message ('first'); then
   * reopens it, checks that it dropped no line, and returns the payloads it holds.
   */
  function onSmallDisk(test: (q: FileQueue, first: QueuedMessage, disk: SmallFilesystem, segment: string) => void): string[] {
    const temp = tempDir('queue-full');
    const disk = smallFilesystem(join(temp.dir, 'queue'));
    try {
      const q = new FileQueue(disk.dir);
      const first = q.append('telemetry', 'first');
      test(
        q,
        first,
        disk,
        join(
          disk.dir,
          readdirSync(disk.dir).find((name) => name.endsWith('.seg'))!,
        ),
      );
      q.close();
      const reopened = new FileQueue(disk.dir);
      reopened.close();
      assert.deepEqual([reopened.tornLines, reopened.corruptLines], [0, 0]);
      return drain(reopened);
    } finally {
      disk.unmount();
      temp.remove();
    }
  }

  it(
    'on a full file system refuses a message with queue.storage_full, keeps no part of it, and stores the next one whole once there is room',
    { skip: tmpfsUnavailable ?? false },
    () => {
      let big = '';
      const kept = onSmallDisk((q, _first, disk, segment) => {
        big = 'x'.repeat(disk.bsize);
        const stored = readFileSync(segment);
        disk.fill();
        // Longer than what is left of the segment's last block: the write is cut short, then ENOSPC.
        assert.throws(() => q.append('telemetry', big), storageFull);
        assert.throws(() => q.append('telemetry', big), storageFull, 'a later message too, with the same code');
        assert.deepEqual(readFileSync(segment), stored, 'nothing of the refused messages is on disk');
        assert.equal(q.size, 1);
        disk.free();
        assert.equal(q.append('telemetry', big).seq, 1);
      });
      assert.deepEqual(kept, ['first', big]);
    },
  );

  it(
    'keeps a message whose acknowledgement cannot be written (full file system), and records it once there is room',
    { skip: tmpfsUnavailable ?? false },
    () => {
      const kept = onSmallDisk((q, first, disk, segment) => {
        endOnBlock(
          () => statSync(segment).size,
          disk.bsize,
          (padding) => q.append('telemetry', 'x'.repeat(padding)),
        );
        disk.fill();
        assert.throws(() => q.ack(first.seq), storageFull);
        assert.equal(q.after(-1)?.payload, 'first', 'still queued, to be sent again');
        disk.free();
        q.ack(first.seq);
        assert.notEqual(q.after(-1)?.payload, 'first');
      });
      assert.ok(kept.length > 0 && !kept.includes('first'));
    },
  );
});
