/**
 * A device's meter (one object, the four buckets refilled together) against what it replaced: four
 * TokenBuckets, each refilled when used. Random sequences of messages, connects and clock moves
 * must give the same waits, the same admitted connects and the same "refilled" answers from both.
 * Rates and time steps are binary fractions (steps of 125 ms, 8 packets and 0.125 connects a
 * second…), so both sides compute exactly and are compared exactly.
 *
 * With the clock stepping back (an NTP correction) the two differ on purpose: a TokenBucket counts
 * again from the new time when it is next used, the meter does so for all four buckets at once. So
 * with steps back the reference refills all four at every step, which is the meter's rule.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CONNECT_BURST, DeviceMeter, DeviceMeters, type MeterRates } from './device-meters.js';
import { TokenBucket } from './guard.js';

const RATES: MeterRates = {
  publishesPerSecond: 8,
  publishBurst: 20,
  readingsPerSecond: 64,
  readingsBurst: 512,
  bytesPerSecond: 8192,
  bytesBurst: 65536,
  deviceConnectsPerMinute: 7.5,
};

/** The reference: four buckets, each refilled only when it is used (the broker's code before the meters). */
class FourBuckets {
  readonly packets: TokenBucket;
  readonly readings: TokenBucket;
  readonly bytes: TokenBucket;
  readonly connects: TokenBucket;
  constructor(now: number) {
    this.packets = new TokenBucket(RATES.publishesPerSecond, RATES.publishBurst, now);
    this.readings = new TokenBucket(RATES.readingsPerSecond, RATES.readingsBurst, now);
    this.bytes = new TokenBucket(RATES.bytesPerSecond, RATES.bytesBurst, now);
    this.connects = new TokenBucket(RATES.deviceConnectsPerMinute / 60, CONNECT_BURST, now);
  }
  chargeMessage(now: number, bytes: number, readings: number | null): number {
    return Math.max(this.packets.borrow(now), this.bytes.borrow(now, bytes), readings !== null ? this.readings.borrow(now, readings) : 0);
  }
  full(now: number): boolean {
    return this.packets.full(now) && this.readings.full(now) && this.bytes.full(now) && this.connects.full(now);
  }
  /** Refills all four (each bucket's full() refills it). */
  touch(now: number): void {
    for (const bucket of [this.packets, this.readings, this.bytes, this.connects]) bucket.full(now);
  }
}

type Step =
  | { kind: 'message'; dt: number; bytes: number; readings: number | null }
  | { kind: 'packet'; dt: number }
  | { kind: 'connect'; dt: number }
  | { kind: 'full'; dt: number };

// In steps of 125 ms: mostly short (bursts of traffic), some long pauses, and (with `back`) steps back.
const forward = fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 960 })).map((k) => k * 125);
const back = fc.integer({ min: -480, max: -1 }).map((k) => k * 125);
const steps = (dt: fc.Arbitrary<number>): fc.Arbitrary<Step[]> => fc.array(stepOf(dt), { maxLength: 200 });
const stepOf = (dt: fc.Arbitrary<number>): fc.Arbitrary<Step> =>
  fc.oneof(
    fc.record({
      kind: fc.constant('message' as const),
      dt,
      bytes: fc.integer({ min: 0, max: 70_000 }),
      readings: fc.option(fc.integer({ min: 0, max: 600 }), { nil: null }),
    }),
    fc.record({ kind: fc.constant('packet' as const), dt }),
    fc.record({ kind: fc.constant('connect' as const), dt }),
    fc.record({ kind: fc.constant('full' as const), dt }),
  );

/** Runs the steps on a meter and on the reference (with `eager`, all four of its buckets refilled at each step); every answer must match. */
function sameAnswers(list: Step[], eager: boolean): void {
  let now = 1_764_000_000_000;
  const meter = new DeviceMeter(RATES, now);
  const reference = new FourBuckets(now);
  for (const [i, s] of list.entries()) {
    now += s.dt;
    if (eager) reference.touch(now);
    const at = `step ${i} (${s.kind})`;
    if (s.kind === 'message')
      assert.equal(meter.chargeMessage(now, s.bytes, s.readings), reference.chargeMessage(now, s.bytes, s.readings), at);
    else if (s.kind === 'packet') assert.equal(meter.borrow(now), reference.packets.borrow(now), at);
    else if (s.kind === 'connect') assert.equal(meter.takeConnect(now), reference.connects.take(now), at);
    else assert.equal(meter.full(now), reference.full(now), at);
  }
}

describe('device meters', () => {
  it('give the same waits, connects and refills as four buckets each refilled when used, as time goes forward', () => {
    fc.assert(
      fc.property(steps(forward), (list) => sameAnswers(list, false)),
      { numRuns: 500 },
    );
  });

  it('with the clock stepping back, count again from the new time for all four buckets at once', () => {
    fc.assert(
      fc.property(steps(fc.oneof(forward, back)), (list) => sameAnswers(list, true)),
      { numRuns: 500 },
    );
  });

  it('a flood is charged: waits grow with the debt, the readings allowance counts each reading, and time pays it back', () => {
    let now = 1_764_000_000_000;
    const meter = new DeviceMeter(RATES, now);
    for (let i = 0; i < RATES.publishBurst; i++) assert.equal(meter.chargeMessage(now, 10, null), 0, `message ${i} within the burst`);
    assert.equal(meter.chargeMessage(now, 10, null), 125, 'one packet over at 8 a second: 125 ms');
    assert.equal(meter.chargeMessage(now, 10, 1_000), 7_625, '488 readings over at 64 a second: 7.625 s');
    now += 60_000;
    assert.equal(meter.chargeMessage(now, 10, 1), 0, 'a minute later the debt is paid');
  });

  it('refuses connects past the burst until the per-minute rate has refilled one', () => {
    let now = 1_764_000_000_000;
    const meters = new DeviceMeters(RATES);
    for (let i = 0; i < CONNECT_BURST; i++) assert.equal(meters.admit('dev-1', now), 'admitted');
    assert.equal(meters.admit('dev-1', now), 'first-refusal');
    assert.equal(meters.admit('dev-1', now), 'refused');
    assert.equal(meters.admit('dev-2', now), 'admitted', 'another device has its own bucket');
    now += 8_000; // 7.5 a minute: one every 8 s
    assert.equal(meters.admit('dev-1', now), 'admitted');
  });

  it('prune forgets a device only once it holds no session and every bucket has refilled', () => {
    let now = 1_764_000_000_000;
    const meters = new DeviceMeters(RATES);
    meters.meter('live', now).chargeMessage(now, 100, 5);
    meters.meter('indebted', now).chargeMessage(now, 100_000, null);
    meters.meter('quiet', now);
    meters.prune(now, (id) => id === 'live');
    assert.equal(meters.size, 2, 'the quiet one goes, the indebted and the live ones stay');
    now += 3_600_000;
    meters.prune(now, (id) => id === 'live');
    assert.equal(meters.size, 1, 'the indebted one goes once refilled; the live one stays');
  });
});
