/**
 * Per-device behaviour counted in memory on the ingest path and written to storage in batches
 * (docs/assessment.md, "Anomaly detection"). The broker holds each live session's counters
 * (`BehaviourCounts`) and adds to them with a plain increment per message: no lookup, no
 * allocation, no query. Every `anomaly.flushSeconds` the counts are added to the device's row of
 * the current minute in `device_behaviour_minutes` (one batched upsert for all devices), the new
 * source addresses go to `device_behaviour_addresses` and the session takeovers to
 * `device_connection_conflicts`, and the counters start again from zero.
 *
 * Memory is bounded: at most `maxDevices` devices are tracked (beyond that, counts go to a sink
 * that is never written, and `untracked` says how many), at most ADDRESSES_PER_HOUR source
 * addresses per device and hour are kept, and at most MAX_PENDING_CONFLICTS takeovers wait for a
 * flush. A device with no live session whose counts were written is forgotten.
 */
import type { BehaviourStore, ConflictRow, MinuteDelta } from './store.js';

/** What the broker counts for a device (each field a plain number it adds to). */
export interface BehaviourCounts {
  messages: number;
  bytes: number;
  connects: number;
  authFailures: number;
  aclDenials: number;
  payloadErrors: number;
  takeovers: number;
  reboots: number;
  updateFailures: number;
}

export interface BehaviourSubject {
  deviceId: string;
  organizationId: string;
  productId: string;
}

/** A side of a takeover: where the connection came from and with what credential. */
export interface ConnectionSide {
  address: string;
  /** `certificate:<serial>` or `symmetric_key:<version>`. */
  credential: string;
}

interface Entry extends BehaviourCounts {
  deviceId: string;
  organizationId: string | null;
  productId: string | null;
  sessions: number;
  hour: number;
  /** Addresses seen this hour (at most ADDRESSES_PER_HOUR). */
  seen: Addresses;
  /** Addresses first seen in their hour since the last flush. */
  fresh: { hour: number; address: string }[];
  minute: number;
  /** Distinct addresses this minute (bounded by the hour's set). */
  minuteAddresses: Addresses;
}

/**
 * A set of source addresses, kept as the address itself while there is one (a device almost always
 * connects from one address; two Sets per device were about 0.3 KB of every idle connection).
 */
type Addresses = string | Set<string> | null;

const addressCount = (addresses: Addresses): number => (addresses === null ? 0 : typeof addresses === 'string' ? 1 : addresses.size);

const hasAddress = (addresses: Addresses, address: string): boolean =>
  addresses === address || (addresses instanceof Set && addresses.has(address));

function withAddress(addresses: Addresses, address: string): Addresses {
  if (addresses === null || addresses === address) return address;
  if (typeof addresses === 'string') return new Set([addresses, address]);
  addresses.add(address);
  return addresses;
}

export const ADDRESSES_PER_HOUR = 64;
export const MAX_PENDING_CONFLICTS = 10_000;
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
/** Longest claimed device ID kept for an authentication failure (the broker's client ID limit). */
const MAX_ID_LENGTH = 128;

/** Node-wide totals since the node started, for /metrics (fleet aggregates, no per-device labels). */
export interface BehaviourTotals extends BehaviourCounts {
  /** Counts not kept because `maxDevices` devices were tracked already. */
  untracked: number;
  /** Minute rows written. */
  minuteRowsWritten: number;
  /** Takeovers not kept because MAX_PENDING_CONFLICTS were waiting. */
  conflictsDropped: number;
}

/** Behaviour counters at zero: a new device's, and (the broker's) where a node does not count behaviour. */
export const zeroCounts = (): BehaviourCounts => ({
  messages: 0,
  bytes: 0,
  connects: 0,
  authFailures: 0,
  aclDenials: 0,
  payloadErrors: 0,
  takeovers: 0,
  reboots: 0,
  updateFailures: 0,
});

const COUNTED = Object.keys(zeroCounts()) as (keyof BehaviourCounts)[];

export class BehaviourRecorder {
  private readonly entries = new Map<string, Entry>();
  private conflicts: ConflictRow[] = [];
  /** Where counts go once `maxDevices` are tracked: counted, never written. */
  private readonly sink: BehaviourCounts = zeroCounts();
  private flushing: Promise<void> | null = null;
  readonly totals: BehaviourTotals = { ...zeroCounts(), untracked: 0, minuteRowsWritten: 0, conflictsDropped: 0 };

  constructor(
    private readonly store: BehaviourStore,
    private readonly now: () => number,
    private readonly maxDevices: number,
    private readonly newId: () => string,
  ) {}

  /** Devices whose counters this node holds now. */
  get trackedDevices(): number {
    return this.entries.size;
  }

  /** A new session of the device from `address`: its counters, which the session holds until `detach`. */
  attach(subject: BehaviourSubject, address: string): BehaviourCounts {
    const entry = this.entry(subject.deviceId, subject);
    if (!entry) return this.sink;
    entry.sessions++;
    entry.connects++;
    this.sawAddress(entry, address);
    return entry;
  }

  /** The session holding `counts` ended. */
  detach(counts: BehaviourCounts): void {
    if (counts !== this.sink) (counts as Entry).sessions--;
  }

  /** A connection claiming to be `claimedId` failed to authenticate from `address` (counted only for a device that exists, at flush). */
  authFailure(claimedId: string, address: string): void {
    const entry = this.entry(claimedId.slice(0, MAX_ID_LENGTH), null);
    if (!entry) return;
    entry.authFailures++;
    this.sawAddress(entry, address);
  }

  /** A connection of the device replaced its live session: counted, and the two sides kept as evidence. */
  takeover(subject: BehaviourSubject, by: ConnectionSide, previous: ConnectionSide & { since: number }): void {
    const entry = this.entry(subject.deviceId, subject);
    if (entry) entry.takeovers++;
    if (this.conflicts.length >= MAX_PENDING_CONFLICTS) {
      this.totals.conflictsDropped++;
      return;
    }
    const at = this.now();
    this.conflicts.push({
      id: this.newId(),
      organization_id: subject.organizationId,
      device_id: subject.deviceId,
      at,
      address: by.address,
      previous_address: previous.address,
      credential: by.credential,
      previous_credential: previous.credential,
      previous_age_ms: Math.max(0, at - previous.since),
    });
  }

  /** Writes what was counted since the last flush (one flush at a time; a call during one waits for it, then flushes). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.flushing = this.write().finally(() => (this.flushing = null));
    return this.flushing;
  }

  private async write(): Promise<void> {
    const now = this.now();
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const deltas: (MinuteDelta & { known: boolean })[] = [];
    const addresses: { device_id: string; hour: number; address: string }[] = [];
    for (const entry of this.entries.values()) {
      const counted = COUNTED.some((k) => entry[k] !== 0);
      if (counted || entry.fresh.length > 0) {
        deltas.push({
          device_id: entry.deviceId,
          minute,
          organization_id: entry.organizationId ?? '',
          product_id: entry.productId ?? '',
          messages: entry.messages,
          bytes: entry.bytes,
          connects: entry.connects,
          auth_failures: entry.authFailures,
          acl_denials: entry.aclDenials,
          payload_errors: entry.payloadErrors,
          takeovers: entry.takeovers,
          reboots: entry.reboots,
          update_failures: entry.updateFailures,
          addresses: entry.minute === minute ? addressCount(entry.minuteAddresses) : 0,
          known: entry.organizationId !== null,
        });
        for (const { hour, address } of entry.fresh) addresses.push({ device_id: entry.deviceId, hour, address });
        for (const k of COUNTED) {
          this.totals[k] += entry[k];
          entry[k] = 0;
        }
        entry.fresh = [];
      }
      // Written: a device no session holds is forgotten (its next connect or failure starts it again).
      if (entry.sessions <= 0) this.entries.delete(entry.deviceId);
    }
    const conflicts = this.conflicts;
    this.conflicts = [];
    if (deltas.length === 0 && conflicts.length === 0) return;
    // Authentication failures name a device ID a client claimed: kept only for devices that exist.
    const unknown = deltas.filter((d) => !d.known).map((d) => d.device_id);
    const owners =
      unknown.length > 0 ? await this.store.ownersOf(unknown) : new Map<string, { organizationId: string; productId: string }>();
    const rows: MinuteDelta[] = [];
    const kept = new Set<string>();
    for (const { known, ...row } of deltas) {
      const owner = known ? null : owners.get(row.device_id);
      if (!known && !owner) continue;
      kept.add(row.device_id);
      rows.push(owner ? { ...row, organization_id: owner.organizationId, product_id: owner.productId } : row);
    }
    await this.store.addMinutes(
      rows,
      addresses.filter((a) => kept.has(a.device_id)),
      conflicts,
    );
    this.totals.minuteRowsWritten += rows.length;
  }

  private entry(deviceId: string, subject: BehaviourSubject | null): Entry | null {
    let entry = this.entries.get(deviceId);
    if (entry) {
      if (subject && entry.organizationId === null) {
        entry.organizationId = subject.organizationId;
        entry.productId = subject.productId;
      }
      return entry;
    }
    if (this.entries.size >= this.maxDevices) {
      this.totals.untracked++;
      return null;
    }
    const now = this.now();
    // Object.assign, not `{ ...zeroCounts(), … }`: V8 gave each entry cloned from a spread a hidden
    // class of its own once its fields changed (about 0.26 KB of every connected device's).
    entry = Object.assign(zeroCounts(), {
      deviceId,
      organizationId: subject?.organizationId ?? null,
      productId: subject?.productId ?? null,
      sessions: 0,
      hour: Math.floor(now / HOUR_MS) * HOUR_MS,
      seen: null,
      fresh: [],
      minute: Math.floor(now / MINUTE_MS) * MINUTE_MS,
      minuteAddresses: null,
    });
    this.entries.set(deviceId, entry);
    return entry;
  }

  /** Notes a connection's source address (connects and failures only: never per message). */
  private sawAddress(entry: Entry, address: string): void {
    if (!address) return;
    const now = this.now();
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const hour = Math.floor(now / HOUR_MS) * HOUR_MS;
    if (entry.minute !== minute) {
      entry.minute = minute;
      entry.minuteAddresses = null;
    }
    if (entry.hour !== hour) {
      entry.hour = hour;
      entry.seen = null;
    }
    if (!hasAddress(entry.seen, address)) {
      if (addressCount(entry.seen) >= ADDRESSES_PER_HOUR) return;
      entry.seen = withAddress(entry.seen, address);
      entry.fresh.push({ hour, address });
    }
    entry.minuteAddresses = withAddress(entry.minuteAddresses, address);
  }
}
