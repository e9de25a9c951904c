import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { baselineOf, median, robustZ } from './stats.js';

describe('robust statistics for anomaly baselines', () => {
  it('takes the median of odd and even samples without reordering the input', () => {
    const sample = [5, 1, 4, 2, 3];
    assert.equal(median(sample), 3);
    assert.deepEqual(sample, [5, 1, 4, 2, 3]);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });

  it('computes the MAD of a known sample', () => {
    // |x − 2| for [1, 1, 2, 2, 4, 6, 9] is [1, 1, 0, 0, 2, 4, 7]: median 1.
    assert.deepEqual(baselineOf([1, 1, 2, 2, 4, 6, 9]), { median: 2, mad: 1, samples: 7 });
  });

  it('is not moved by a few outliers, where the mean and standard deviation are', () => {
    const normal = Array.from({ length: 100 }, (_, i) => 10 + (i % 5));
    const polluted = [...normal.slice(0, 95), 10_000, 10_000, 10_000, 10_000, 10_000];
    const clean = baselineOf(normal);
    const dirty = baselineOf(polluted);
    assert.equal(dirty.median, clean.median);
    assert.ok(Math.abs(dirty.mad - clean.mad) <= 1, `MAD ${clean.mad} → ${dirty.mad}`);
    const mean = polluted.reduce((a, b) => a + b, 0) / polluted.length;
    assert.ok(mean > 500, 'the mean is dragged far off by the same outliers');
    assert.ok(robustZ(10_000, dirty) > 1000);
  });

  it('scores in robust standard deviations and falls back to the floor when the MAD is 0', () => {
    const b = baselineOf([10, 12, 8, 11, 9]); // median 10, MAD 1
    assert.ok(Math.abs(robustZ(10 + 1.4826 * 3, b) - 3) < 1e-9);
    const flat = baselineOf([0, 0, 0, 0, 5]);
    assert.equal(flat.mad, 0);
    assert.equal(robustZ(4, flat), 4);
    assert.equal(robustZ(4, flat, 2), 2);
  });

  it('never scores the median above 0 and is monotone in the value (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1e6 }), { minLength: 1, maxLength: 200 }), fc.nat(1e6), fc.nat(1e6), (xs, a, b) => {
        const base = baselineOf(xs);
        assert.equal(robustZ(base.median, base), 0);
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        assert.ok(robustZ(lo, base) <= robustZ(hi, base));
        assert.ok(base.mad >= 0 && base.mad <= Math.max(...xs) - Math.min(...xs));
      }),
    );
  });
});
