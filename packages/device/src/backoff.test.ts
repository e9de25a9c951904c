import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Backoff } from './backoff.js';

describe('reconnect backoff', () => {
  it('draws every delay within [floor, min(cap, base·2^attempt)] whatever the jitter', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.double({ min: 0, max: 0.9999999, noNaN: true }), { minLength: 1, maxLength: 40 }),
        (base, capFactor, draws) => {
          let i = 0;
          const backoff = new Backoff({ baseMs: base, capMs: base * capFactor }, () => draws[i++ % draws.length]!);
          for (let attempt = 0; attempt < draws.length; attempt++) {
            const { delayMs, ceilingMs } = backoff.next();
            assert.equal(ceilingMs, Math.min(base * capFactor, base * 2 ** attempt));
            assert.ok(delayMs >= backoff.floorMs && delayMs <= ceilingMs, `${delayMs} outside [${backoff.floorMs}, ${ceilingMs}]`);
          }
        },
      ),
    );
  });

  it('never retries in a tight loop: a zero draw still waits the floor', () => {
    const backoff = new Backoff({ baseMs: 1000, capMs: 60_000 }, () => 0);
    for (let i = 0; i < 10; i++) assert.equal(backoff.next().delayMs, 100);
  });

  it('doubles the ceiling up to the cap, and starts again after reset', () => {
    const backoff = new Backoff({ baseMs: 1000, capMs: 5000 }, () => 0.9999);
    assert.deepEqual(
      Array.from({ length: 5 }, () => backoff.next().ceilingMs),
      [1000, 2000, 4000, 5000, 5000],
    );
    backoff.reset();
    assert.equal(backoff.next().ceilingMs, 1000);
  });

  it('spreads a fleet out: full jitter draws cover the whole window', () => {
    const backoff = new Backoff({ baseMs: 1000, capMs: 1000 });
    const delays = Array.from({ length: 2000 }, () => backoff.next().delayMs);
    assert.ok(Math.min(...delays) < 200 && Math.max(...delays) > 800, `delays from ${Math.min(...delays)} to ${Math.max(...delays)}`);
  });
});
