import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  changeRollout,
  defineRollout,
  insideWindow,
  isTransientFailure,
  planPhases,
  retryDelaySeconds,
  type RolloutPhase,
} from './rollout-model.js';

const phasesArb = fc
  .uniqueArray(fc.integer({ min: 1, max: 99 }), { maxLength: 5 })
  .map((percents) => [...percents.sort((a, b) => a - b), 100].map((percent): RolloutPhase => ({ percent, soakSeconds: 0 })));

describe('rollout phase plan', () => {
  it('puts each device in exactly one phase, in rank order, with each phase reaching ceil(n × percent / 100) devices', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.uuid(), { maxLength: 60 }), phasesArb, (ids, phases) => {
        const plan = planPhases('rollout-1', ids, phases);
        assert.deepEqual(plan.map((p) => p.deviceId).sort(), [...ids].sort());
        for (let i = 1; i < plan.length; i++) {
          assert.ok(plan[i - 1]!.rank < plan[i]!.rank);
          assert.ok(plan[i - 1]!.phase <= plan[i]!.phase, 'phases follow rank order');
        }
        phases.forEach((phase, index) => {
          const upTo = plan.filter((p) => p.phase <= index).length;
          assert.equal(upTo, Math.ceil((ids.length * phase.percent) / 100));
        });
      }),
    );
  });

  it('is deterministic and independent of the order devices are listed in', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.uuid(), { minLength: 1, maxLength: 40 }), phasesArb, (ids, phases) => {
        assert.deepEqual(planPhases('r', ids, phases), planPhases('r', [...ids].reverse(), phases));
      }),
    );
  });

  it('fills in the defaults and refuses what breaks a rule', () => {
    assert.deepEqual(defineRollout({ releaseId: 'r', selector: { tags: ['a', 'a'] } }), {
      releaseId: 'r',
      name: '',
      selector: { tags: ['a'] },
      phases: [{ percent: 100, soakSeconds: 0 }],
      successThreshold: 0.95,
      failureThreshold: 0.1,
      maxConcurrentDownloads: 100,
      offerTimeoutSeconds: 3600,
      pauseThreshold: null,
      retry: { maxAttempts: 1, backoffSeconds: 300 },
      window: null,
    });
    assert.throws(() => defineRollout({ releaseId: 'r', selector: { groups: [] } }), { code: 'update.rollout_invalid' });
    assert.throws(
      () =>
        defineRollout({
          releaseId: 'r',
          selector: { tags: ['a'] },
          phases: [
            { percent: 0, soakSeconds: 0 },
            { percent: 100, soakSeconds: 0 },
          ],
        }),
      { code: 'update.rollout_invalid' },
    );
    assert.throws(() => defineRollout({ releaseId: 'r', selector: { tags: ['a'] }, phases: [{ percent: 100, soakSeconds: -1 }] }), {
      code: 'update.rollout_invalid',
    });
    assert.throws(() => defineRollout({ releaseId: 'r', selector: { tags: ['a'] }, failureThreshold: 0 }), {
      code: 'update.rollout_invalid',
    });
    assert.throws(() => defineRollout({ releaseId: 'r', selector: { tags: ['a'] }, offerTimeoutSeconds: 8 * 86_400 }), {
      code: 'update.rollout_invalid',
      message: /offerTimeoutSeconds/,
    });
  });
});

describe('rollout retry policy, thresholds and schedule window', () => {
  const base = { releaseId: 'r', selector: { groups: ['g'] } };

  it('defaults to no retry, and checks a given policy', () => {
    assert.deepEqual(defineRollout(base).retry, { maxAttempts: 1, backoffSeconds: 300 });
    assert.deepEqual(defineRollout({ ...base, retry: { maxAttempts: 3 } }).retry, { maxAttempts: 3, backoffSeconds: 300 });
    assert.throws(() => defineRollout({ ...base, retry: { maxAttempts: 0 } }), /retry\.maxAttempts must be an integer from 1/);
    assert.throws(() => defineRollout({ ...base, retry: { maxAttempts: 11 } }), /retry\.maxAttempts/);
    assert.throws(() => defineRollout({ ...base, retry: { backoffSeconds: -1 } }), /retry\.backoffSeconds/);
    assert.throws(() => defineRollout({ ...base, retry: { backoffSeconds: 1.5 } }), /retry\.backoffSeconds/);
  });

  it('doubles the backoff for each later retry, at most a day', () => {
    const policy = { maxAttempts: 10, backoffSeconds: 60 };
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => retryDelaySeconds(policy, n)),
      [60, 120, 240, 480],
    );
    assert.equal(retryDelaySeconds({ maxAttempts: 10, backoffSeconds: 86_400 }, 5), 86_400);
    assert.equal(retryDelaySeconds({ maxAttempts: 3, backoffSeconds: 0 }, 2), 0);
  });

  it('retries only failures the device could not verify', () => {
    for (const code of ['update.download_stalled', 'update.download_failed', 'update.check_failed', 'update.device_silent'])
      assert.ok(isTransientFailure(code), code);
    for (const code of [
      'update.hash_mismatch',
      'update.length_exceeded',
      'update.metadata_invalid',
      'update.rollback_refused',
      'update.health_check_failed',
      'update.product_mismatch',
      'update.hardware_mismatch',
      null,
      undefined,
    ])
      assert.ok(!isTransientFailure(code), String(code));
  });

  it('keeps the pause threshold below the halt threshold', () => {
    assert.equal(defineRollout({ ...base, pauseThreshold: 0.05 }).pauseThreshold, 0.05);
    assert.equal(defineRollout(base).pauseThreshold, null);
    assert.throws(
      () => defineRollout({ ...base, pauseThreshold: 0.1 }),
      /pauseThreshold must be a fraction above 0 and below failureThreshold \(0\.1\)/,
    );
    assert.throws(() => defineRollout({ ...base, pauseThreshold: 0 }), /pauseThreshold/);
  });

  it('checks a change as a whole: a raised pause needs a raised halt', () => {
    const current = defineRollout({ ...base, pauseThreshold: 0.05 });
    assert.throws(() => changeRollout(current, { pauseThreshold: 0.2 }), /below failureThreshold/);
    const changed = changeRollout(current, { pauseThreshold: 0.2, failureThreshold: 0.5 });
    assert.deepEqual([changed.pauseThreshold, changed.failureThreshold, changed.successThreshold], [0.2, 0.5, 0.95]);
    assert.equal(changeRollout(current, { pauseThreshold: null }).pauseThreshold, null, 'null removes the pause threshold');
    assert.throws(() => changeRollout(current, {}), /Give at least one of/);
    assert.deepEqual(changeRollout(current, { retry: { backoffSeconds: 10 } }).retry, { maxAttempts: 1, backoffSeconds: 10 });
  });

  it('offers inside a local time window only, across midnight and in the window time zone', () => {
    const at = (h: number, m: number) => Date.UTC(2026, 0, 15, h, m);
    const night = { start: '22:00', end: '04:00', timeZone: 'UTC' };
    assert.ok(insideWindow(night, at(23, 0)));
    assert.ok(insideWindow(night, at(3, 59)));
    assert.ok(insideWindow(night, at(22, 0)), 'the start is inside');
    assert.ok(!insideWindow(night, at(4, 0)), 'the end is not');
    assert.ok(!insideWindow(night, at(12, 0)));
    // 01:30 UTC is 02:30 in Berlin in January (CET, UTC+1) and 20:30 the day before in New York (EST).
    assert.ok(insideWindow({ start: '02:00', end: '04:00', timeZone: 'Europe/Berlin' }, at(1, 30)));
    assert.ok(!insideWindow({ start: '02:00', end: '04:00', timeZone: 'UTC' }, at(1, 30)));
    assert.ok(insideWindow({ start: '20:00', end: '21:00', timeZone: 'America/New_York' }, at(1, 30)));
    assert.ok(insideWindow(null, at(12, 0)), 'no window: any time');
  });

  it('refuses a malformed window, naming the field', () => {
    assert.throws(
      () => defineRollout({ ...base, window: { start: '24:00', end: '04:00', timeZone: 'UTC' } }),
      /window\.start must be a time of day/,
    );
    assert.throws(() => defineRollout({ ...base, window: { start: '02:00', end: '2:00', timeZone: 'UTC' } }), /window\.end/);
    assert.throws(() => defineRollout({ ...base, window: { start: '02:00', end: '02:00', timeZone: 'UTC' } }), /must differ/);
    assert.throws(
      () => defineRollout({ ...base, window: { start: '02:00', end: '04:00', timeZone: 'Mars/Olympus' } }),
      /not an IANA time zone/,
    );
  });
});
