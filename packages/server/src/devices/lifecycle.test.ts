import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allowedTransitions, canTransition, DEVICE_STATUSES, LIFECYCLE_ACTIONS } from './lifecycle.js';

const status = fc.constantFrom(...DEVICE_STATUSES);

describe('device lifecycle', () => {
  it('never leaves retired, never repeats a status, and never goes back to pending', () => {
    fc.assert(
      fc.property(status, status, (from, to) => {
        if (from === 'retired' || from === to || to === 'pending') assert.equal(canTransition(from, to), false);
      }),
    );
  });

  it('lets every other status be retired, and every action target be reached from somewhere', () => {
    for (const from of DEVICE_STATUSES.filter((s) => s !== 'retired')) assert.ok(canTransition(from, 'retired'), from);
    for (const to of Object.values(LIFECYCLE_ACTIONS))
      assert.ok(
        DEVICE_STATUSES.some((from) => canTransition(from, to)),
        to,
      );
  });

  it('agrees with itself: allowedTransitions lists exactly what canTransition accepts', () => {
    fc.assert(fc.property(status, status, (from, to) => assert.equal(allowedTransitions(from).includes(to), canTransition(from, to))));
  });

  it('walks any sequence of actions without ever reaching a state the table forbids', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...(Object.keys(LIFECYCLE_ACTIONS) as (keyof typeof LIFECYCLE_ACTIONS)[])), { maxLength: 30 }),
        (actions) => {
          let current: (typeof DEVICE_STATUSES)[number] = 'pending';
          for (const action of actions) {
            const to = LIFECYCLE_ACTIONS[action];
            if (canTransition(current, to)) current = to;
            else if (current === 'retired') assert.equal(allowedTransitions(current).length, 0);
          }
        },
      ),
    );
  });
});
