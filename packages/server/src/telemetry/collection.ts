/**
 * What telemetry of a device may be stored at all (data minimisation, ETSI EN 303 645 6.1): a
 * product with a privacy declaration collects only the values named under purposes that are
 * required or that the device's owner consented to; a product without one collects everything
 * (the platform cannot know what it should not). The rules come from the binding domain, which
 * holds declarations and consents (`CollectionRules`, wired by the composition root); this filter
 * caches each device's allowed names briefly so the ingest path pays a map lookup per message, and
 * is told at once when a consent on this node changes (other nodes follow within `ttlMs`).
 */
import type { Clock } from '../clock.js';
import type { Reading } from './payloads.js';

/** The names a device's telemetry may keep, or null: no declaration, everything is kept. */
export type AllowedNames = ReadonlySet<string> | null;

export interface CollectionRules {
  allowedNames(deviceId: string, organizationId: string): Promise<AllowedNames>;
}

interface Cached {
  allowed: AllowedNames;
  until: number;
}

/** Devices' allowed names kept at most (a device not in it is looked up again). */
const MAX_CACHED = 100_000;

export class CollectionFilter {
  private rules: CollectionRules | null = null;
  private readonly cache = new Map<string, Cached>();
  private readonly pending = new Map<string, Promise<AllowedNames>>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs = 10_000,
  ) {}

  /** The composition root hands in the binding domain's rules. */
  use(rules: CollectionRules): void {
    this.rules = rules;
    this.cache.clear();
  }

  /** The allowed names if cached and fresh; undefined when a lookup is needed. */
  known(deviceId: string): AllowedNames | undefined {
    if (!this.rules) return null;
    const hit = this.cache.get(deviceId);
    return hit && hit.until > this.clock.now() ? hit.allowed : undefined;
  }

  /**
   * Looks a device's allowed names up (one lookup per device at a time: a flood of messages
   * arriving before the first answer shares it, rather than each reading storage).
   */
  allowed(deviceId: string, organizationId: string): Promise<AllowedNames> {
    const rules = this.rules;
    if (!rules) return Promise.resolve(null);
    const inFlight = this.pending.get(deviceId);
    if (inFlight) return inFlight;
    const lookup = rules
      .allowedNames(deviceId, organizationId)
      .then((allowed) => {
        if (this.cache.size >= MAX_CACHED) this.cache.clear();
        this.cache.set(deviceId, { allowed, until: this.clock.now() + this.ttlMs });
        return allowed;
      })
      .finally(() => this.pending.delete(deviceId));
    this.pending.set(deviceId, lookup);
    return lookup;
  }

  /** A declaration or consent changed for this device: the next message looks it up again. */
  forget(deviceId: string): void {
    this.cache.delete(deviceId);
    this.pending.delete(deviceId);
  }

  /** Forgets every device (a product's declaration changed). */
  forgetAll(): void {
    this.cache.clear();
    this.pending.clear();
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
