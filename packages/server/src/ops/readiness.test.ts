import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Readiness } from './readiness.js';

test('is ready only while every check holds; a failing, throwing or hung check makes it unready, by name', async () => {
  const readiness = new Readiness(50);
  readiness.add('database', () => true);
  assert.deepEqual(await readiness.evaluate(), { ready: true, checks: { database: true } });
  readiness.add('broker', async () => false);
  readiness.add('redis', () => {
    throw new Error('connection refused');
  });
  readiness.add('hung', () => new Promise<boolean>(() => undefined));
  const started = Date.now();
  assert.deepEqual(await readiness.evaluate(), { ready: false, checks: { database: true, broker: false, redis: false, hung: false } });
  assert.ok(Date.now() - started < 1000, 'a hung check times out');
});
