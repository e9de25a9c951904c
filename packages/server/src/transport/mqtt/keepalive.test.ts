/**
 * The node's keep-alive sweep (keepalive.ts), tick by tick: a session is closed at the first sweep
 * after it has been silent for its whole interval, never before, once, and a packet heard restarts
 * its count. The broker's suites (connect.test.ts) test it end to end with 1 s keep-alives.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KeepaliveSweep, SWEEP_MS, type KeepaliveWatched } from './keepalive.js';

interface Watched extends KeepaliveWatched {
  name: string;
}

const session = (name: string): Watched => ({ name, heardAt: 0, keepaliveTicks: 0 });

describe('keep-alive sweep', () => {
  it('closes a silent session once, after its interval and within two sweeps of it, whatever the interval and when it was last heard', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20_000 }), fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 6 }), (intervalMs, gaps) => {
        const s = session('s');
        const silent: Watched[] = [];
        const sweep = new KeepaliveSweep(
          () => [s],
          (x) => silent.push(x),
        );
        // Time is counted in sweeps; a packet arrives part-way between two (just before the next).
        sweep.watch(s, intervalMs);
        let elapsedSinceHeard = 0;
        for (const gap of gaps) {
          for (let i = 0; i < gap && silent.length === 0; i++) {
            sweep.sweep();
            elapsedSinceHeard += SWEEP_MS;
          }
          if (silent.length > 0) break;
          sweep.heard(s);
          elapsedSinceHeard = 0;
        }
        if (silent.length === 0) {
          // Silent from here: sweep until closed.
          for (let i = 0; i < 1000 && silent.length === 0; i++) {
            sweep.sweep();
            elapsedSinceHeard += SWEEP_MS;
          }
        }
        assert.equal(silent.length, 1, 'closed once');
        // Counted from a packet heard just before a sweep (the shortest silence a tick can stand for):
        assert.ok(elapsedSinceHeard >= intervalMs, `not before its interval: ${elapsedSinceHeard} < ${intervalMs}`);
        assert.ok(elapsedSinceHeard <= intervalMs + 2 * SWEEP_MS, `within two sweeps of it: ${elapsedSinceHeard} for ${intervalMs}`);
        // And never again.
        for (let i = 0; i < 50; i++) sweep.sweep();
        assert.equal(silent.length, 1);
      }),
    );
  });

  it('leaves a session that keeps talking, and one not yet watched, alone', () => {
    const talking = session('talking');
    const unwatched = session('unwatched');
    const silent: string[] = [];
    const sweep = new KeepaliveSweep(
      () => [talking, unwatched],
      (x) => silent.push(x.name),
    );
    sweep.watch(talking, 1501);
    for (let i = 0; i < 200; i++) {
      sweep.sweep();
      if (i % 8 === 0) sweep.heard(talking); // once a second at 125 ms a sweep
    }
    assert.deepEqual(silent, []);
    for (let i = 0; i < 20; i++) sweep.sweep();
    assert.deepEqual(silent, ['talking']);
  });

  it('sweeps on its own timer once started, and not after stop()', async () => {
    const s = session('timed');
    const silent: string[] = [];
    const sweep = new KeepaliveSweep(
      () => [s],
      (x) => silent.push(x.name),
    );
    sweep.watch(s, 200);
    sweep.start();
    const started = Date.now();
    while (silent.length === 0 && Date.now() - started < 3000) await new Promise((resolve) => setTimeout(resolve, 20));
    const took = Date.now() - started;
    sweep.stop();
    assert.deepEqual(silent, ['timed']);
    assert.ok(took >= 200, `closed after ${took} ms`);
    const again = session('after-stop');
    sweep.watch(again, 1);
    await new Promise((resolve) => setTimeout(resolve, 3 * SWEEP_MS));
    assert.deepEqual(silent, ['timed'], 'no sweep after stop()');
  });
});
