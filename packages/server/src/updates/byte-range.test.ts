import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decideRange, ifRangeHolds } from './byte-range.js';

describe('byte ranges', () => {
  it('serves open-ended, closed and suffix ranges, clamping the end to the last byte', () => {
    assert.deepEqual(decideRange('bytes=100-', 1000), { kind: 'partial', start: 100, end: 999 });
    assert.deepEqual(decideRange('bytes=0-0', 1000), { kind: 'partial', start: 0, end: 0 });
    assert.deepEqual(decideRange('bytes=10-19', 1000), { kind: 'partial', start: 10, end: 19 });
    assert.deepEqual(decideRange('bytes=990-5000', 1000), { kind: 'partial', start: 990, end: 999 });
    assert.deepEqual(decideRange('bytes=-10', 1000), { kind: 'partial', start: 990, end: 999 });
    assert.deepEqual(decideRange('bytes=-5000', 1000), { kind: 'partial', start: 0, end: 999 });
    assert.deepEqual(decideRange('Bytes=5-', 10), { kind: 'partial', start: 5, end: 9 }, 'the unit is case-insensitive');
  });

  it('answers unsatisfiable for a range starting at or past the end', () => {
    assert.deepEqual(decideRange('bytes=1000-', 1000), { kind: 'unsatisfiable' });
    assert.deepEqual(decideRange('bytes=1000-2000', 1000), { kind: 'unsatisfiable' });
    assert.deepEqual(decideRange('bytes=99999999999999999999999-', 1000), { kind: 'unsatisfiable' });
    assert.deepEqual(decideRange('bytes=-0', 1000), { kind: 'unsatisfiable' });
    assert.deepEqual(decideRange('bytes=0-', 0), { kind: 'unsatisfiable' });
  });

  it('serves the whole image for what it may ignore: several ranges, other units, bad syntax, last before first', () => {
    for (const header of ['bytes=0-1,5-6', 'items=0-5', 'bytes=', 'bytes=-', 'bytes=a-b', 'bytes = 0-5', 'bytes=5-1', 'bytes=0x10-', '']) {
      assert.deepEqual(decideRange(header, 1000), { kind: 'full' }, header);
    }
    assert.deepEqual(decideRange(undefined, 1000), { kind: 'full' });
  });

  it('never answers a range outside the image, whatever the header', () => {
    const header = fc.oneof(
      fc.string(),
      fc
        .tuple(fc.option(fc.nat(), { nil: undefined }), fc.option(fc.nat(), { nil: undefined }))
        .map(([a, b]) => `bytes=${a ?? ''}-${b ?? ''}`),
    );
    fc.assert(
      fc.property(header, fc.nat({ max: 10_000 }), (h, size) => {
        const decision = decideRange(h, size);
        if (decision.kind === 'partial') {
          assert.ok(
            decision.start >= 0 && decision.start <= decision.end && decision.end < size,
            `${h} on ${size}: ${JSON.stringify(decision)}`,
          );
        }
      }),
    );
  });

  it('honours If-Range only with the exact strong entity tag', () => {
    const etag = `"${'a'.repeat(64)}"`;
    assert.equal(ifRangeHolds(undefined, etag), true);
    assert.equal(ifRangeHolds(etag, etag), true);
    assert.equal(ifRangeHolds(`W/${etag}`, etag), false);
    assert.equal(ifRangeHolds(`"${'b'.repeat(64)}"`, etag), false);
    assert.equal(ifRangeHolds('Wed, 25 Nov 2026 10:00:00 GMT', etag), false);
  });
});
