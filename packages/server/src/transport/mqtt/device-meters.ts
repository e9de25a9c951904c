/**
 * Rate state per device that outlives its sessions, so that reconnecting buys a device nothing:
 *   - its packet bucket (`mqtt.publishesPerSecond`, burst `mqtt.publishBurst`) and its telemetry
 *     readings and payload bytes buckets (`mqtt.readingsPerSecond`, `mqtt.bytesPerSecond`), shared
 *     by every session it opens: a new session does not start with a fresh burst, nor leave its
 *     debt behind;
 *   - its connect bucket (`mqtt.deviceConnectsPerMinute`, burst CONNECT_BURST): a device looping
 *     on reconnects (each one a TLS handshake, an identity lookup and two presence writes) is
 *     refused at CONNECT once past it.
 * One entry per device seen recently: an entry whose buckets have refilled and whose device holds
 * no session is pruned, so the map holds at most the devices connected or recently connected.
 *
 * An entry is one object with the four buckets' tokens and one clock reading (DeviceMeter), the
 * rates and bursts shared by every device, rather than four TokenBuckets each with its own: every
 * connected device holds one, and an idle connection's every byte counts (issue 21). Refilling all
 * four whenever one is used gives what refilling each when it is used would: a refill depends only
 * on the time elapsed, and a bucket full at its burst stays there.
 */
import { debtMs, refilled, type RateMeter } from './guard.js';

/** Connections a device may open in a row before the per-minute rate applies. */
export const CONNECT_BURST = 10;

export interface MeterRates {
  /** Packets per second per device, with this burst. */
  publishesPerSecond: number;
  publishBurst: number;
  /** Telemetry readings per second per device (each reading of a batch counts), with this burst. */
  readingsPerSecond: number;
  readingsBurst: number;
  /** PUBLISH payload bytes per second per device, with this burst. */
  bytesPerSecond: number;
  bytesBurst: number;
  /** Connections one device may open per minute, after a burst of CONNECT_BURST. */
  deviceConnectsPerMinute: number;
}

/**
 * A device's rate state: its packet, readings, bytes and connect buckets (at the shared `rates`),
 * refilled together from one clock reading. As a RateMeter (the transport guard's), `borrow`
 * charges one packet.
 */
export class DeviceMeter implements RateMeter {
  private packets: number;
  private readings: number;
  private bytes: number;
  private connects: number;
  private last: number;
  /** Whether connects are being refused (set at the first refusal, cleared by the next admitted connect). */
  refusing = false;

  constructor(
    private readonly rates: MeterRates,
    now: number,
  ) {
    this.packets = rates.publishBurst;
    this.readings = rates.readingsBurst;
    this.bytes = rates.bytesBurst;
    this.connects = CONNECT_BURST;
    this.last = now;
  }

  private refill(now: number): void {
    // The wall clock stepped back (an NTP correction): count again from the new time (as TokenBucket does).
    if (now < this.last) this.last = now;
    if (now === this.last) return;
    const elapsed = now - this.last;
    const r = this.rates;
    this.packets = refilled(this.packets, elapsed, r.publishesPerSecond, r.publishBurst);
    this.readings = refilled(this.readings, elapsed, r.readingsPerSecond, r.readingsBurst);
    this.bytes = refilled(this.bytes, elapsed, r.bytesPerSecond, r.bytesBurst);
    this.connects = refilled(this.connects, elapsed, r.deviceConnectsPerMinute / 60, CONNECT_BURST);
    this.last = now;
  }

  /** Charges one packet (going into debt if needed); how long (ms) the device should wait. */
  borrow(now: number): number {
    this.refill(now);
    this.packets -= 1;
    return debtMs(this.packets, this.rates.publishesPerSecond);
  }

  /**
   * Charges a message: one packet, its payload bytes and, for telemetry, its readings (null: not
   * telemetry, the readings allowance is not looked at); the longest of the waits (ms).
   */
  chargeMessage(now: number, bytes: number, readings: number | null): number {
    let wait = this.borrow(now);
    this.bytes -= bytes;
    wait = Math.max(wait, debtMs(this.bytes, this.rates.bytesPerSecond));
    if (readings !== null) {
      this.readings -= readings;
      wait = Math.max(wait, debtMs(this.readings, this.rates.readingsPerSecond));
    }
    return wait;
  }

  /** Takes a connect token if one is there. */
  takeConnect(now: number): boolean {
    this.refill(now);
    if (this.connects < 1) return false;
    this.connects -= 1;
    return true;
  }

  /** Whether every bucket has refilled to its burst (forgetting the meter would change nothing). */
  full(now: number): boolean {
    this.refill(now);
    const r = this.rates;
    return (
      this.packets >= r.publishBurst && this.readings >= r.readingsBurst && this.bytes >= r.bytesBurst && this.connects >= CONNECT_BURST
    );
  }
}

export class DeviceMeters {
  private readonly meters = new Map<string, DeviceMeter>();

  constructor(private readonly rates: MeterRates) {}

  get size(): number {
    return this.meters.size;
  }

  /**
   * Takes a connect token for the device: 'admitted', or 'refused' when it connects more often
   * than allowed ('first-refusal' for the first of a run of refusals, the one worth logging).
   */
  admit(deviceId: string, now: number): 'admitted' | 'first-refusal' | 'refused' {
    const meter = this.meter(deviceId, now);
    if (meter.takeConnect(now)) {
      meter.refusing = false;
      return 'admitted';
    }
    if (meter.refusing) return 'refused';
    meter.refusing = true;
    return 'first-refusal';
  }

  /** The device's meter (the same one for every session it opens). */
  meter(deviceId: string, now: number): DeviceMeter {
    let meter = this.meters.get(deviceId);
    if (!meter) {
      meter = new DeviceMeter(this.rates, now);
      this.meters.set(deviceId, meter);
    }
    return meter;
  }

  /** Forgets devices with no live session whose buckets have refilled (forgetting them changes nothing). */
  prune(now: number, live: (deviceId: string) => boolean): void {
    for (const [deviceId, meter] of this.meters) if (!live(deviceId) && meter.full(now)) this.meters.delete(deviceId);
  }
}
