/**
 * The node-wide expiry schedule: every item expires once its deadline has passed, earliest first,
 * none before, and an item taken off never does (a state machine checked against a plain list,
 * with fast-check, on a clock the test moves); then with its real timer, items added in any order
 * expire at their time.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ExpirySchedule } from './expiry-schedule.js';

interface Item {
  name: number;
  expirySlot: number;
}

const item = (name: number): Item => ({ name, expirySlot: -1 });

describe('ExpirySchedule', () => {
  it('expires exactly the items whose deadline has passed, earliest first, whatever was added, moved and removed before', () => {
    const operation = fc.oneof(
      fc.record({ op: fc.constant('add' as const), item: fc.nat(19), ms: fc.integer({ min: -5, max: 1000 }) }),
      fc.record({ op: fc.constant('remove' as const), item: fc.nat(19) }),
      fc.record({ op: fc.constant('wait' as const), ms: fc.nat(400) }),
    );
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 80 }), (operations) => {
        let now = 1000;
        const expired: number[] = [];
        const schedule = new ExpirySchedule<Item>(
          (expiring) => expired.push(expiring.name),
          () => now,
        );
        const items = Array.from({ length: 20 }, (_, i) => item(i));
        const model = new Map<number, number>();
        try {
          for (const operation of operations) {
            if (operation.op === 'add') {
              schedule.add(items[operation.item]!, operation.ms);
              model.set(operation.item, now + Math.max(operation.ms, 0));
            } else if (operation.op === 'remove') {
              schedule.remove(items[operation.item]!);
              model.delete(operation.item);
            } else {
              now += operation.ms;
              expired.length = 0;
              schedule.expireDue();
              const due = [...model].filter(([, deadline]) => deadline <= now).sort((a, b) => a[1] - b[1]);
              assert.deepEqual(
                expired.map((name) => model.get(name)),
                due.map(([, deadline]) => deadline),
                'the due items, earliest first',
              );
              assert.deepEqual([...expired].sort(), due.map(([name]) => name).sort());
              for (const [name] of due) model.delete(name);
            }
            assert.equal(schedule.size, model.size);
            for (const [name] of model) assert.notEqual(items[name]!.expirySlot, -1);
          }
        } finally {
          schedule.clear();
        }
        for (const each of items) assert.equal(each.expirySlot, -1, 'clear() leaves no item scheduled');
      }),
    );
  });

  it('looks again at a deadline further away than a timer can wait (2^31 - 1 ms) instead of expiring it then', () => {
    let now = 0;
    const expired: Item[] = [];
    const schedule = new ExpirySchedule<Item>(
      (expiring) => expired.push(expiring),
      () => now,
    );
    const distant = item(1);
    schedule.add(distant, 2 ** 31 + 60_000);
    now = 2 ** 31;
    schedule.expireDue();
    assert.deepEqual(expired, []);
    now += 60_000;
    schedule.expireDue();
    assert.deepEqual(expired, [distant]);
    schedule.clear();
  });

  it('with its timer: items added latest-first expire at their own time, and a removed one never', async () => {
    const started = performance.now();
    const expired: { name: number; after: number }[] = [];
    const schedule = new ExpirySchedule<Item>((expiring) => expired.push({ name: expiring.name, after: performance.now() - started }));
    const removed = item(0);
    schedule.add(item(400), 400);
    schedule.add(removed, 150);
    schedule.add(item(250), 250);
    schedule.add(item(100), 100);
    schedule.remove(removed);
    // The timer does not hold the process open: keep it alive while waiting.
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.deepEqual(
      expired.map((e) => e.name),
      [100, 250, 400],
    );
    for (const { name, after } of expired) {
      assert.ok(after >= name, `item ${name} expired ${Math.round(name - after)} ms early`);
      assert.ok(after < name + 200, `item ${name} expired ${Math.round(after - name)} ms late`);
    }
    assert.equal(schedule.size, 0);
  });
});
