import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../clock.js';
import { CollectionFilter, keepAllowed, type AllowedNames } from './collection.js';
import type { Reading } from './payloads.js';

function counting(answer: AllowedNames) {
  const rules = { calls: 0, allowedNames: async () => (rules.calls++, answer) };
  return rules;
}

test('caches "everything" (null) as an answer, not as a miss: the ingest path does not read storage per message', async () => {
  const clock = new ManualClock(0);
  const filter = new CollectionFilter(clock, 10_000);
  const rules = counting(null);
  filter.use(rules);
  assert.equal(filter.known('d1'), undefined, 'not cached yet');
  assert.equal(await filter.allowed('d1', 'org'), null);
  assert.equal(filter.known('d1'), null, 'cached: everything allowed');
  clock.advance(10_001);
  assert.equal(filter.known('d1'), undefined, 'expired');
  assert.equal(rules.calls, 1);
});

test('messages arriving before the first answer share one lookup', async () => {
  const filter = new CollectionFilter(new ManualClock(0));
  const rules = counting(null);
  filter.use(rules);
  const answers = await Promise.all(Array.from({ length: 100 }, () => filter.allowed('d1', 'org')));
  assert.equal(rules.calls, 1);
  assert.ok(answers.every((a) => a === null));
});

test('forgetting a device makes the next message look its rules up again', async () => {
  const filter = new CollectionFilter(new ManualClock(0));
  filter.use(counting(new Set(['temperature'])));
  await filter.allowed('d1', 'org');
  assert.deepEqual([...(filter.known('d1') ?? [])], ['temperature']);
  filter.forget('d1');
  assert.equal(filter.known('d1'), undefined);
});

test('keeps only allowed values and drops readings left with none', () => {
  const readings: Reading[] = [
    { ts: 1, values: { temperature: 20, motion: 1 } },
    { ts: 2, values: { motion: 2 } },
  ];
  assert.deepEqual(keepAllowed(readings, new Set(['temperature'])), [{ ts: 1, values: { temperature: 20 } }]);
  assert.equal(keepAllowed(readings, null), readings);
});
