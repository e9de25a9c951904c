/**
 * Drops live sessions whose standing changed on any node: the device left service (quarantined,
 * disabled, retired) or the certificate its session opened with was revoked. Polls the devices
 * and PKI services every `intervalMs` from a watermark, so a change made through another node's
 * API reaches this node's sessions within one interval; in-process changes use `standing` at once.
 * The same poll carries gateway changes (issue 14): a child moved, detached or out of service is
 * let go by the gateway session holding it on this node.
 */
import type { Clock } from '../../clock.js';
import type { DeviceIdentity } from '../../devices/identity.js';
import type { ChildChange } from '../../devices/gateway-feed.js';
import type { GatewaysService } from '../../devices/gateways.js';
import type { DevicesService } from '../../devices/service.js';
import type { PkiService } from '../../pki/service.js';

export interface StandingServices {
  devices: Pick<DevicesService, 'outOfServiceSince' | 'currentStatus'>;
  pki: Pick<PkiService, 'revokedSince' | 'isActive'>;
  /** Children attached, moved or detached on any node (issue 14). */
  gateways?: Pick<GatewaysService, 'changesSince'>;
}

/** The sessions the watcher looks after: the identity each holds, and how to end one. */
export interface WatchedSessions {
  size: number;
  identityOf(deviceId: string): DeviceIdentity | undefined;
  /** Ends the device's session for `reason`. */
  drop(deviceId: string, reason: string): void;
  /** A child changed gateway or left service: the gateway session holding it lets go of it. */
  childChanged?(change: ChildChange): void;
}

/** Why a device may no longer act as it authenticated (its status changed, its certificate was revoked), or null. */
export async function lostStanding(services: StandingServices, identity: DeviceIdentity): Promise<string | null> {
  const status = await services.devices.currentStatus(identity.deviceId);
  if (status !== identity.status) return `device is now ${status ?? 'deleted'}`;
  if (identity.credential.type !== 'certificate') return null;
  return (await services.pki.isActive(identity.credential.certificateSerial)) ? null : 'certificate revoked';
}

export class CredentialWatcher {
  private timer: NodeJS.Timeout | null = null;
  private watermark = { devices: 0, revocations: 0, gateways: 0 };
  private watching = false;

  constructor(
    private readonly services: StandingServices,
    private readonly sessions: WatchedSessions,
    private readonly clock: Clock,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(intervalMs: number): void {
    this.watermark = { devices: this.clock.now(), revocations: this.clock.now(), gateways: this.clock.now() };
    this.timer = setInterval(() => void this.poll(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One pass: drops the sessions of devices that left service and of revoked certificates since the last. */
  async poll(): Promise<void> {
    if (this.watching || this.sessions.size === 0) return;
    this.watching = true;
    try {
      for (const change of await this.services.devices.outOfServiceSince(this.watermark.devices)) {
        this.watermark.devices = Math.max(this.watermark.devices, change.at);
        const identity = this.sessions.identityOf(change.deviceId);
        if (identity && identity.status !== change.status) this.sessions.drop(change.deviceId, `device is now ${change.status}`);
        this.sessions.childChanged?.({ childId: change.deviceId, status: change.status });
      }
      for (const change of (await this.services.gateways?.changesSince(this.watermark.gateways)) ?? []) {
        this.watermark.gateways = Math.max(this.watermark.gateways, change.at);
        this.sessions.childChanged?.({ childId: change.childId, gatewayId: change.gatewayId, status: change.status });
      }
      for (const revoked of await this.services.pki.revokedSince(this.watermark.revocations)) {
        this.watermark.revocations = Math.max(this.watermark.revocations, revoked.revokedAt);
        const credential = this.sessions.identityOf(revoked.deviceId)?.credential;
        if (credential?.type === 'certificate' && credential.certificateSerial === revoked.serial)
          this.sessions.drop(revoked.deviceId, 'certificate revoked');
      }
    } catch (error) {
      this.onError(error);
    } finally {
      this.watching = false;
    }
  }
}
