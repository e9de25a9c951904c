/**
 * What telemetry of a device may be stored at all (data minimisation, ETSI EN 303 645 6.1): a
 * product with a privacy declaration collects only the values named under purposes that are
 * required or that the device's owner consented to; a product without one collects everything
 * (the platform cannot know what it should not). The rules come from the binding domain, which
 * holds declarations and consents (`CollectionRules`, wired by the composition root).
 *
 * This filter caches the answers for `ttlMs` (10 s), so the ingest path pays a map lookup per
 * message: per product when the answer does not depend on the device (no declaration, or no
 * optional purpose: one lookup per product per `ttlMs`, whatever the fleet's size), else per device
 * (its owner's consents: one lookup per device per `ttlMs`). A declaration, consent or binding
 * changed in this process is applied to the next message (`forget`, `forgetAll`); other workers and
 * nodes follow within `ttlMs`.
 */
import type { Clock } from '../clock.js';
import type { Reading } from './payloads.js';

/** The names a device's telemetry may keep, or null: no declaration, everything is kept. */
export type AllowedNames = ReadonlySet<string> | null;

export interface CollectionRules {
  /**
   * What every device of the product may keep when that does not depend on the device (no
   * declaration: null; no optional purpose: the required purposes' names); undefined when each
   * device's owner's consents decide.
   */
  productNames(organizationId: string, productId: string): Promise<AllowedNames | undefined>;
  allowedNames(deviceId: string, organizationId: string): Promise<AllowedNames>;
}

interface Cached<T> {
  value: T;
  until: number;
}

/** Devices' (and products') answers kept at most (one not in it is looked up again). */
const MAX_CACHED = 100_000;

/** Answers for `ttlMs`, one lookup per key at a time, none cached from a lookup that began before a change. */
class Answers<T> {
  private readonly cache = new Map<string, Cached<T>>();
  private readonly pending = new Map<string, Promise<T>>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {}

  fresh(key: string): Cached<T> | undefined {
    const hit = this.cache.get(key);
    return hit && hit.until > this.clock.now() ? hit : undefined;
  }

  /** The answer in flight for `key`, or a new lookup, cached unless `current()` says a change came meanwhile. */
  lookup(key: string, read: () => Promise<T>, current: () => boolean): Promise<T> {
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;
    const lookup = read()
      .then((value) => {
        if (current()) {
          if (this.cache.size >= MAX_CACHED) this.cache.clear();
          this.cache.set(key, { value, until: this.clock.now() + this.ttlMs });
        }
        return value;
      })
      .finally(() => {
        if (this.pending.get(key) === lookup) this.pending.delete(key);
      });
    this.pending.set(key, lookup);
    return lookup;
  }

  forget(key: string): void {
    this.cache.delete(key);
    this.pending.delete(key);
  }

  clear(): void {
    this.cache.clear();
    this.pending.clear();
  }
}

export class CollectionFilter {
  private rules: CollectionRules | null = null;
  private readonly devices: Answers<AllowedNames>;
  private readonly products: Answers<AllowedNames | undefined>;
  /**
   * Moves on every change: a lookup that started before one may have read the rules as they were,
   * so its answer serves the messages that waited for it but is not cached.
   */
  private generation = 0;

  constructor(clock: Clock, ttlMs = 10_000) {
    this.devices = new Answers(clock, ttlMs);
    this.products = new Answers(clock, ttlMs);
  }

  /** The composition root hands in the binding domain's rules. */
  use(rules: CollectionRules): void {
    this.rules = rules;
    this.forgetAll();
  }

  /** The allowed names if cached and fresh; undefined when a lookup is needed. */
  known(deviceId: string, productId?: string): AllowedNames | undefined {
    if (!this.rules) return null;
    const product = productId === undefined ? undefined : this.products.fresh(productId)?.value;
    return product !== undefined ? product : this.devices.fresh(deviceId)?.value;
  }

  /**
   * A device's allowed names: from the cache while fresh, else looked up, by product first when the
   * caller knows it (one lookup per product or device at a time: a flood of messages arriving
   * before the first answer shares it, rather than each reading storage).
   */
  async allowed(deviceId: string, organizationId: string, productId?: string): Promise<AllowedNames> {
    const rules = this.rules;
    if (!rules) return null;
    const cached = this.known(deviceId, productId);
    if (cached !== undefined) return cached;
    const generation = this.generation;
    const current = () => generation === this.generation;
    if (productId !== undefined) {
      const product = this.products.fresh(productId);
      const names = product
        ? product.value
        : await this.products.lookup(productId, () => rules.productNames(organizationId, productId), current);
      if (names !== undefined) return names;
    }
    return this.devices.lookup(deviceId, () => rules.allowedNames(deviceId, organizationId), current);
  }

  /** A consent or binding changed for this device: the next message looks it up again. */
  forget(deviceId: string): void {
    this.generation++;
    this.devices.forget(deviceId);
  }

  /** Forgets every device and product (a product's declaration changed). */
  forgetAll(): void {
    this.generation++;
    this.devices.clear();
    this.products.clear();
  }
}

/** The readings with only the allowed values; readings left with none are dropped. Pure. */
export function keepAllowed(readings: Reading[], allowed: AllowedNames): Reading[] {
  if (!allowed) return readings;
  const kept: Reading[] = [];
  for (const reading of readings) {
    let values: Reading['values'] | null = null;
    for (const [name, value] of Object.entries(reading.values)) {
      if (!allowed.has(name)) continue;
      (values ??= {})[name] = value;
    }
    if (values) kept.push({ ts: reading.ts, values });
  }
  return kept;
}
