/**
 * The device doors' failure limiter: in memory, and in the machine's Redis (a unique key prefix per
 * test), where two limiters standing for two workers count an address together. Attempts in flight
 * at once cannot overrun the limit; a success gives its place back; a Redis that does not answer
 * leaves each process counting on its own, refusing no device for it and crashing nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { ErrorCodes } from '@bulwark/protocol';
import { RateLimitedError } from '../../errors.js';
import { redisProblem, REDIS_URL } from '../../testing/redis.js';
import { sharedCountsConnection } from '../mqtt/cluster.js';
import { MemoryFailureLimiter, SharedFailureLimiter, limited, type FailureLimiter } from './failure-limiter.js';

const problem = await redisProblem();
const MAX = 3;

const refused = (e: unknown) =>
  e instanceof RateLimitedError && e.code === ErrorCodes.rateLimited && (e.details!.retryAfterSeconds as number) > 0;
const authFailure = () => Promise.reject(new Error('bad token'));
/** One failed authentication from `address` through `limiter`. */
const fail = (limiter: FailureLimiter, address: string) =>
  assert.rejects(
    limited(limiter, address, authFailure, () => true),
    /bad token/,
  );

describe('device authentication failure limiter in memory', () => {
  it('answers 429 with a retry time once an address has failed too often, and only that address', async () => {
    const limiter = new MemoryFailureLimiter(MAX);
    for (let i = 0; i < MAX; i++) await fail(limiter, '10.0.0.1');
    await assert.rejects(limiter.begin('10.0.0.1'), refused);
    await (await limiter.begin('10.0.0.2')).release();
  });

  it('gives the place of an attempt that did not fail authentication back', async () => {
    const limiter = new MemoryFailureLimiter(MAX);
    for (let i = 0; i < 10; i++)
      assert.equal(
        await limited(
          limiter,
          '10.0.0.1',
          async () => i,
          () => true,
        ),
        i,
      );
    await assert.rejects(
      limited(
        limiter,
        '10.0.0.1',
        () => Promise.reject(new Error('database down')),
        () => false,
      ),
    );
    for (let i = 0; i < MAX; i++) await fail(limiter, '10.0.0.1');
    await assert.rejects(limiter.begin('10.0.0.1'), refused);
  });

  it('refuses attempts in flight at once past the limit (they are counted when they start)', async () => {
    const limiter = new MemoryFailureLimiter(MAX);
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => limiter.begin('10.0.0.1')));
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, MAX);
    assert.ok(outcomes.filter((o) => o.status === 'rejected').every((o) => refused((o as PromiseRejectedResult).reason)));
  });
});

describe('device authentication failure limiter in Redis', { skip: problem ? `Redis unreachable: ${problem}` : false }, () => {
  let redis: Redis;
  let other: Redis;
  const errors: Error[] = [];
  before(async () => {
    redis = sharedCountsConnection(REDIS_URL, (e) => errors.push(e));
    other = sharedCountsConnection(REDIS_URL, (e) => errors.push(e));
    // Until a connection is ready its commands fail at once and the limiter counts in memory.
    await Promise.all([redis, other].map((c) => new Promise((resolve) => c.once('ready', resolve))));
  });
  after(async () => {
    await redis.quit();
    await other.quit();
  });
  /** Two limiters on two connections, as two workers or nodes have, under a prefix of this test's own. */
  const pair = (windowMs?: number) => {
    const prefix = `bulwark-test:${randomUUID()}:`;
    return [new SharedFailureLimiter(redis, prefix, MAX, windowMs), new SharedFailureLimiter(other, prefix, MAX, windowMs)] as const;
  };

  it('counts failures on two workers together: the one past the limit is refused on either', async () => {
    const [worker1, worker2] = pair();
    await fail(worker1, '10.0.0.1');
    await fail(worker2, '10.0.0.1');
    await fail(worker1, '10.0.0.1');
    await assert.rejects(worker2.begin('10.0.0.1'), refused);
    await assert.rejects(worker1.begin('10.0.0.1'), refused);
    // Another address, and another deployment's prefix, keep their own counts.
    await (await worker2.begin('10.0.0.2')).release();
    await (await pair()[0].begin('10.0.0.1')).release();
    assert.deepEqual(errors, []);
  });

  it('gives a success its place back, and refuses attempts in flight at once past the limit', async () => {
    const [worker1, worker2] = pair();
    for (let i = 0; i < 10; i++)
      await limited(
        i % 2 ? worker1 : worker2,
        '10.0.0.1',
        async () => i,
        () => true,
      );
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => (i % 2 ? worker1 : worker2).begin('10.0.0.1')));
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, MAX);
    assert.ok(outcomes.filter((o) => o.status === 'rejected').every((o) => refused((o as PromiseRejectedResult).reason)));
  });

  it('starts a new window once the last one has expired', async () => {
    const [worker1, worker2] = pair(300);
    for (let i = 0; i < MAX; i++) await fail(i % 2 ? worker1 : worker2, '10.0.0.1');
    await assert.rejects(worker1.begin('10.0.0.1'), refused);
    await new Promise((resolve) => setTimeout(resolve, 400));
    await (await worker2.begin('10.0.0.1')).release();
  });

  it('counts in this process while Redis does not answer: no device refused for it, the limit still holds, nothing thrown', async () => {
    // A port that accepts nothing: the connection fails its commands at once.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const outage: Error[] = [];
    const away = sharedCountsConnection(`redis://127.0.0.1:${port}/0`, (e) => outage.push(e));
    try {
      const limiter = new SharedFailureLimiter(away, `bulwark-test:${randomUUID()}:`, MAX);
      assert.equal(
        await limited(
          limiter,
          '10.0.0.1',
          async () => 'served',
          () => true,
        ),
        'served',
      );
      for (let i = 0; i < MAX; i++) await fail(limiter, '10.0.0.1');
      await assert.rejects(limiter.begin('10.0.0.1'), refused);
      await new Promise((resolve) => (outage.length > 0 ? resolve(null) : away.once('error', resolve)));
      assert.ok(outage.length >= 1, 'the outage is reported');
    } finally {
      away.disconnect();
    }
  });
});
