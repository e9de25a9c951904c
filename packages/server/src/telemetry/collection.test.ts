import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../clock.js';
import { CollectionFilter, keepAllowed, type AllowedNames } from './collection.js';
import type { Reading } from './payloads.js';

/** Rules whose answers depend on each device (the product has optional purposes), counting lookups. */
function counting(answer: AllowedNames) {
  const rules = { calls: 0, productNames: async () => undefined, allowedNames: async () => (rules.calls++, answer) };
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

test('allowed() answers from its cache while fresh: one lookup per device per TTL, whoever asks', async () => {
  const clock = new ManualClock(0);
  const filter = new CollectionFilter(clock, 10_000);
  const rules = counting(new Set(['temperature']));
  filter.use(rules);
  for (let i = 0; i < 100; i++) await filter.allowed('d1', 'org');
  assert.equal(rules.calls, 1);
  clock.advance(10_001);
  await filter.allowed('d1', 'org');
  assert.equal(rules.calls, 2, 'looked up again once expired');
});

test('a change during a lookup in flight: the answer read before it is not cached, the next message sees the change', async () => {
  const filter = new CollectionFilter(new ManualClock(0));
  let answer: AllowedNames = new Set(['temperature', 'motion']);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const rules = {
    calls: 0,
    productNames: async () => undefined,
    allowedNames: async () => {
      const read = answer;
      if (++rules.calls === 1) await gate;
      return read;
    },
  };
  filter.use(rules);
  const before = filter.allowed('d1', 'org');
  // The consent is withdrawn while the first lookup is still reading.
  answer = new Set(['temperature']);
  filter.forget('d1');
  release();
  assert.deepEqual([...((await before) ?? [])], ['temperature', 'motion'], 'the message that waited gets what was read');
  assert.equal(filter.known('d1'), undefined, 'not cached');
  assert.deepEqual([...((await filter.allowed('d1', 'org')) ?? [])], ['temperature']);
  assert.equal(rules.calls, 2);
});

test('a product whose answer does not depend on the device is looked up once for all its devices, per TTL', async () => {
  const clock = new ManualClock(0);
  const filter = new CollectionFilter(clock, 10_000);
  const answers = new Map<string, AllowedNames | undefined>([
    ['plain', null],
    ['required-only', new Set(['temperature'])],
    ['optional', undefined],
  ]);
  const calls = { product: 0, device: 0 };
  filter.use({
    productNames: async (_org, productId) => (calls.product++, answers.get(productId)),
    allowedNames: async () => (calls.device++, new Set(['temperature', 'motion'])),
  });
  for (let i = 0; i < 50; i++) {
    assert.equal(await filter.allowed(`p${i}`, 'org', 'plain'), null);
    assert.deepEqual([...((await filter.allowed(`r${i}`, 'org', 'required-only')) ?? [])], ['temperature']);
  }
  assert.deepEqual(calls, { product: 2, device: 0 });
  assert.equal(filter.known('p999', 'plain'), null, 'a device never seen is answered from its product');
  for (let i = 0; i < 5; i++) await filter.allowed(`o${i % 2}`, 'org', 'optional');
  assert.deepEqual(calls, { product: 3, device: 2 }, 'optional purposes: one lookup per device');
  clock.advance(10_001);
  assert.equal(filter.known('p0', 'plain'), undefined, 'expired');
  await filter.allowed('p0', 'org', 'plain');
  assert.deepEqual(calls, { product: 4, device: 2 });
  filter.forgetAll();
  assert.equal(filter.known('p0', 'plain'), undefined, 'a declaration changed: looked up again');
});
