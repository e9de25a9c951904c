/**
 * Failed authentications per client address on the device doors (symmetric-key tokens, the
 * director's mutual TLS): past `max` in a window (a minute) the address is answered 429
 * `request.rate_limited` until the window ends. Each attempt takes a place in the window when it
 * starts and gives it back when it did not fail authentication, so attempts in flight at once
 * cannot overrun the limit either.
 *
 * Two counters behind one interface: `MemoryFailureLimiter`, in this process's memory (a node of
 * one process without Redis), and `SharedFailureLimiter`, in Redis (`mqtt.redisUrl`): every worker
 * and node of the deployment counts an address together, so N workers do not give it N times the
 * attempts. While Redis does not answer, the shared limiter counts in this process's memory
 * instead (the limit a node without Redis has): a Redis outage neither refuses every device nor
 * lifts the limit, and never ends the process.
 */
import type { Redis } from 'ioredis';
import { RateLimitedError } from '../../errors.js';

/** One attempt under way: `release` when it did not fail authentication (success, or another error). */
export interface Attempt {
  release(): Promise<void>;
}

export interface FailureLimiter {
  /** Takes a place for an attempt from `address`; throws RateLimitedError (429) when none is left in the window. */
  begin(address: string): Promise<Attempt>;
}

/** Makes the limiter of one door (`name` keeps the doors' counts apart) allowing `max` failures a window. */
export type FailureLimiterFactory = (name: string, max: number) => FailureLimiter;

const WINDOW_MS = 60_000;

function refusal(max: number, retryAfterMs: number): RateLimitedError {
  return new RateLimitedError(
    `Too many failed device authentications from this address: at most ${max} a minute; try again later`,
    Math.max(1, Math.ceil(retryAfterMs / 1000)),
  );
}

/** In memory, per process, bounded. */
export class MemoryFailureLimiter implements FailureLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly max: number,
    private readonly windowMs = WINDOW_MS,
    private readonly maxAddresses = 100_000,
  ) {}

  async begin(address: string): Promise<Attempt> {
    return this.take(address);
  }

  /** The same, at once (the shared limiter's stand-in while Redis is away). */
  take(address: string): Attempt {
    const now = Date.now();
    let window = this.windows.get(address);
    if (!window || now - window.start >= this.windowMs) {
      if (this.windows.size >= this.maxAddresses) this.prune(now);
      window = { start: now, count: 0 };
      this.windows.set(address, window);
    }
    if (window.count >= this.max) throw refusal(this.max, window.start + this.windowMs - now);
    window.count++;
    const taken = window;
    return {
      release: async () => {
        // A window that ended meanwhile is not charged for it, nor the next one credited.
        if (this.windows.get(address) === taken && taken.count > 0) taken.count--;
      },
    };
  }

  private prune(now: number): void {
    for (const [address, window] of this.windows) if (now - window.start >= this.windowMs) this.windows.delete(address);
    // Under a flood from more addresses than the bound, forgetting is better than exhausting memory.
    if (this.windows.size >= this.maxAddresses) this.windows.clear();
  }
}

/**
 * Takes a place: the count goes up, the window starts with the first attempt (a key that somehow
 * lost its expiry gets one), and the answer is the count with the milliseconds left.
 */
const TAKE = `
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}`;

/** Gives a place back, unless the window is gone (a new one owes this attempt nothing). */
const RELEASE = `
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0`;

/** In Redis, shared by every process using the same key prefix; in memory while Redis does not answer. */
export class SharedFailureLimiter implements FailureLimiter {
  private readonly local: MemoryFailureLimiter;

  /**
   * `redis` fails its commands at once while disconnected (transport/mqtt/cluster.ts
   * `sharedCountsConnection`), which reports the outage once; `prefix` names the deployment and the door.
   */
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly max: number,
    private readonly windowMs = WINDOW_MS,
  ) {
    this.local = new MemoryFailureLimiter(max, windowMs);
  }

  async begin(address: string): Promise<Attempt> {
    const key = this.prefix + address;
    let answer: [number, number];
    try {
      answer = (await this.redis.eval(TAKE, 1, key, this.windowMs)) as [number, number];
    } catch {
      return this.local.take(address);
    }
    const [count, ttl] = answer;
    // The refused attempt stays counted: the window's end does not move, and nothing is owed back.
    if (count > this.max) throw refusal(this.max, ttl);
    return {
      release: async () => {
        await this.redis.eval(RELEASE, 1, key).catch(() => undefined);
      },
    };
  }
}

/** The limiter of each door: in Redis when the deployment has one (`prefix` names the deployment), else in memory. */
export function failureLimiters(shared: { redis: Redis; prefix: string } | null): FailureLimiterFactory {
  return (name, max) => (shared ? new SharedFailureLimiter(shared.redis, `${shared.prefix}${name}:`, max) : new MemoryFailureLimiter(max));
}

/**
 * Runs one attempt from `address` under the limiter: refused (429) when the address has no place
 * left; its place is kept when it fails authentication (`failed` says so of its error) and given back otherwise.
 */
export async function limited<T>(
  limiter: FailureLimiter,
  address: string,
  attempt: () => Promise<T>,
  failed: (error: unknown) => boolean,
): Promise<T> {
  const place = await limiter.begin(address);
  let release = true;
  try {
    return await attempt();
  } catch (error) {
    if (failed(error)) release = false;
    throw error;
  } finally {
    if (release) await place.release();
  }
}
