import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { defineRollout, planPhases, type RolloutPhase } from './rollout-model.js';

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
