/**
 * A consumer's view of and control over a device bound to them, through the devices and
 * telemetry domains' own services: their standing is checked first (no standing: 404), then the
 * call runs for them with exactly the device permissions their role carries on that one device
 * (guest: devices:read; member and owner: devices:write too). Commands are limited to an allow
 * list (`binding.consumerCommands`): a consumer never sends an arbitrary command.
 */
import { ErrorCodes, type MyPresenceView } from '@bulwark/protocol';
import { type Actor, type Permission } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import { iso } from '../clock.js';
import type { CommandService, CommandView } from '../devices/commands.js';
import type { ShadowService, ShadowView } from '../devices/shadow.js';
import { ForbiddenError } from '../errors.js';
import type { LatestView, ReadingsPage, ReadingsQuery, TelemetryService } from '../telemetry/service.js';
import { standingFor } from './access.js';
import type { LiveHub, LiveSink } from './live.js';
import type { DeviceRole } from './model.js';
import type { BindingStore } from './store.js';
import type { Executor } from '../storage/executor.js';

/** Readings per owned device in a consumer's data export (the rest through GET /my/devices/:id/telemetry). */
export const EXPORT_READINGS = 10_000;

const ROLE_PERMISSIONS: Record<DeviceRole, ReadonlySet<Permission>> = {
  owner: new Set<Permission>(['devices:read', 'devices:write']),
  member: new Set<Permission>(['devices:read', 'devices:write']),
  guest: new Set<Permission>(['devices:read']),
};

export class ConsumerDeviceService {
  private readonly allowedCommands: ReadonlySet<string>;

  constructor(
    private readonly store: BindingStore,
    private readonly audit: AuditService,
    private readonly shadow: ShadowService,
    private readonly commands: CommandService,
    private readonly telemetry: TelemetryService,
    private readonly live: LiveHub,
    allowedCommands: string[],
  ) {
    this.allowedCommands = new Set(allowedCommands);
  }

  async state(actor: Actor, deviceId: string): Promise<ShadowView> {
    return this.shadow.get(await this.onDevice(actor, deviceId, 'view'), deviceId);
  }

  async setDesired(actor: Actor, deviceId: string, patch: unknown, version?: number): Promise<ShadowView> {
    return this.shadow.setDesired(await this.onDevice(actor, deviceId, 'control'), deviceId, patch, version);
  }

  /** The telemetry of the devices a consumer owns, from when they became owner (at most EXPORT_READINGS each): their data export. */
  async exportTelemetry(user: {
    id: string;
    organizationId: string;
  }): Promise<{ deviceId: string; since: string; readings: ReadingsPage['readings']; more: boolean }[]> {
    const owned = (await this.store.membershipsOf(user.organizationId, user.id, Number.MAX_SAFE_INTEGER)).filter((m) => m.role === 'owner');
    const out = [];
    for (const member of owned)
      out.push({
        deviceId: member.device_id,
        since: iso(member.since)!,
        ...(await this.telemetry.exportSince(member.device_id, member.since, EXPORT_READINGS)),
      });
    return out;
  }

  /**
   * Account deletion: the telemetry the consumer's devices sent while they owned them is theirs, so
   * it goes too (after the deletion commits; the binding's own hook unbinds the devices).
   */
  async eraseTelemetryOf(user: { id: string; organizationId: string }, trx: Executor): Promise<() => Promise<void>> {
    const owned = (await this.store.membershipsOf(user.organizationId, user.id, Number.MAX_SAFE_INTEGER, trx)).filter(
      (m) => m.role === 'owner',
    );
    return async () => {
      for (const member of owned) await this.telemetry.eraseSince(member.device_id, member.since);
    };
  }

  async readings(actor: Actor, deviceId: string, query: ReadingsQuery): Promise<ReadingsPage> {
    return this.telemetry.readings(await this.onDevice(actor, deviceId, 'view'), deviceId, query);
  }

  async latest(actor: Actor, deviceId: string): Promise<LatestView> {
    return this.telemetry.latest(await this.onDevice(actor, deviceId, 'view'), deviceId);
  }

  /** Whether the device is connected now, and since when (the node and protocol are the operators' business). */
  async presence(actor: Actor, deviceId: string): Promise<MyPresenceView> {
    const presence = await this.telemetry.presence(await this.onDevice(actor, deviceId, 'view'), deviceId);
    return { online: presence.online, since: presence.since };
  }

  async sendCommand(actor: Actor, deviceId: string, input: { name: string; params?: unknown }): Promise<CommandView> {
    const delegated = await this.onDevice(actor, deviceId, 'control');
    if (!this.allowedCommands.has(input.name)) {
      await this.audit.recordBy(
        actor,
        'binding.action_refused',
        { type: 'device', id: deviceId },
        { code: ErrorCodes.commandNotAllowed, command: input.name.slice(0, 64) },
        undefined,
        { outcome: 'denied' },
      );
      throw new ForbiddenError(`"${input.name}" is not a command the companion app may send`, ErrorCodes.commandNotAllowed, {
        allowed: [...this.allowedCommands],
      });
    }
    return this.commands.send(delegated, deviceId, input);
  }

  async command(actor: Actor, deviceId: string, commandId: string, waitMs: number): Promise<CommandView> {
    return this.commands.get(await this.onDevice(actor, deviceId, 'control'), deviceId, commandId, waitMs);
  }

  /** Opens a live stream of the device for the consumer; returns the function that closes it. */
  async openLive(actor: Actor, deviceId: string, sink: LiveSink): Promise<() => void> {
    await this.onDevice(actor, deviceId, 'view');
    return this.live.open(actor, deviceId, sink);
  }

  /** The actor, holding for this call the device permissions their role on the device carries. */
  private async onDevice(actor: Actor, deviceId: string, can: 'view' | 'control'): Promise<Actor> {
    const member = await standingFor(
      this.store,
      this.audit,
      actor,
      deviceId,
      can,
      can === 'view' ? 'view the device' : 'control the device',
    );
    return { ...actor, permissions: ROLE_PERMISSIONS[member.role] };
  }
}
