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
 */
import { TokenBucket } from './guard.js';

/** Connections a device may open in a row before the per-minute rate applies. */
export const CONNECT_BURST = 10;

/** A device's rate buckets for what its sessions send. */
export interface SendMeters {
  packets: TokenBucket;
  /** Telemetry readings (each reading of a batch counts). */
  readings: TokenBucket;
  /** PUBLISH payload bytes. */
  bytes: TokenBucket;
}

interface Meter extends SendMeters {
  connects: TokenBucket;
  /** Whether connects are being refused (set at the first refusal, cleared by the next admitted connect). */
  refusing: boolean;
}

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

export class DeviceMeters {
  private readonly meters = new Map<string, Meter>();

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
    if (meter.connects.take(now)) {
      meter.refusing = false;
      return 'admitted';
    }
    if (meter.refusing) return 'refused';
    meter.refusing = true;
    return 'first-refusal';
  }

  /** The device's send buckets (the same ones for every session it opens). */
  send(deviceId: string, now: number): SendMeters {
    return this.meter(deviceId, now);
  }

  /** Forgets devices with no live session whose buckets have refilled (forgetting them changes nothing). */
  prune(now: number, live: (deviceId: string) => boolean): void {
    for (const [deviceId, meter] of this.meters)
      if (!live(deviceId) && meter.packets.full(now) && meter.readings.full(now) && meter.bytes.full(now) && meter.connects.full(now))
        this.meters.delete(deviceId);
  }

  private meter(deviceId: string, now: number): Meter {
    let meter = this.meters.get(deviceId);
    if (!meter) {
      meter = {
        packets: new TokenBucket(this.rates.publishesPerSecond, this.rates.publishBurst, now),
        readings: new TokenBucket(this.rates.readingsPerSecond, this.rates.readingsBurst, now),
        bytes: new TokenBucket(this.rates.bytesPerSecond, this.rates.bytesBurst, now),
        connects: new TokenBucket(this.rates.deviceConnectsPerMinute / 60, CONNECT_BURST, now),
        refusing: false,
      };
      this.meters.set(deviceId, meter);
    }
    return meter;
  }
}
