/**
 * Rollouts (campaigns): phases, soak, success and failure thresholds that advance or halt a
 * rollout by themselves, device states from the agents' reports. Owner: director/rollouts helper (skeleton).
 */
import type { Kysely } from 'kysely';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import type { DeviceIdentity } from '../devices/identity.js';
import type { DeviceMessenger } from '../devices/messaging.js';
import type { DevicesService } from '../devices/service.js';
import type { Database } from '../storage/schema.js';
import type { Director } from './director.js';
import type { ReleaseService } from './releases.js';

export class RolloutService {
  constructor(
    readonly db: Kysely<Database>,
    readonly director: Director,
    readonly releases: ReleaseService,
    readonly devices: DevicesService,
    readonly link: DeviceMessenger,
    readonly audit: AuditService,
    readonly clock: Clock,
  ) {}

  /** One pass over running rollouts: advance phases whose soak passed, halt those past their failure threshold. */
  async tick(): Promise<void> {}

  /**
   * A message a device published on `d/<id>/updates/<channel>` (status or report). Returns an error
   * to send back on the device's error topic, or null.
   */
  async deviceMessage(_identity: DeviceIdentity, _channel: string, _payload: Buffer): Promise<{ code: string; message: string } | null> {
    return { code: 'channel.unavailable', message: 'not served yet' };
  }
}
