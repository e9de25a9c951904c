import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectionCeiling, FD_RESERVE, openFileLimit, parseOpenFileLimit } from './fd-limit.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                40000                files
Max locked memory         8388608              8388608              bytes
`;

describe('connections within the file-descriptor limit', () => {
  it('reads the soft limit on open files from /proc/self/limits', () => {
    assert.equal(parseOpenFileLimit(LIMITS), 20_000);
    assert.equal(parseOpenFileLimit(LIMITS.replace('20000', 'unlimited')), null);
    assert.equal(parseOpenFileLimit('no such line'), null);
    const own = openFileLimit();
    assert.ok(own === null || (Number.isInteger(own) && own > 0), String(own));
  });

  it('holds the configured connections where the descriptors allow, else the limit less the reserve', () => {
    assert.deepEqual(connectionCeiling(100_000, 20_000), { max: 20_000 - FD_RESERVE, capped: true });
    assert.deepEqual(connectionCeiling(19_000, 20_000), { max: 19_000, capped: false });
    assert.deepEqual(connectionCeiling(100_000, null), { max: 100_000, capped: false });
    assert.deepEqual(connectionCeiling(10, 100), { max: 1, capped: true });
  });
});
