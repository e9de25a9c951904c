/**
 * The device shadow: the state a device reports and the state operators desire, each versioned,
 * with every change kept in the history. Operators patch the desired state through the API
 * (audited, optionally guarded by the version they last read); devices report over MQTT. After
 * every change the device is sent what it needs: the desired state and the delta it still has
 * to apply (docs/protocol.md §3.3).
 */
import { STATE_DELTA, STATE_DESIRED, type ShadowView } from '@bulwark/protocol';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import { iso, type Clock } from '../clock.js';
import { ConflictError, DeviceMessageRefusal, NotFoundError, ValidationError } from '../errors.js';
import type { DeviceShadowHistoryTable, DeviceShadowsTable } from '../storage/schema.js';
import { newId } from '../tokens.js';
import type { DeviceIdentity } from './identity.js';
import type { DeviceMessenger } from './messaging.js';
import { checkPatch, delta, mergePatch, serializeState, StateError, type JsonObject } from './shadow-state.js';
import type { ShadowStore } from './shadow-store.js';
import type { DevicesStore } from './store.js';
import type { Executor } from '../storage/executor.js';

/** A device's shadow as the API shows it: a wire shape the apps read too (@bulwark/protocol). */
export type { ShadowView };

export interface ShadowChange {
  kind: 'reported' | 'desired';
  version: number;
  change: JsonObject;
  state: JsonObject;
  actor: string | null;
  changedAt: string;
}

const MAX_ATTEMPTS = 5;

function view(row: DeviceShadowsTable): ShadowView {
  const reported = JSON.parse(row.reported) as JsonObject;
  const desired = JSON.parse(row.desired) as JsonObject;
  return {
    deviceId: row.device_id,
    reported: { state: reported, version: row.reported_version, updatedAt: iso(row.reported_at) },
    desired: { state: desired, version: row.desired_version, updatedAt: iso(row.desired_at) },
    delta: delta(desired, reported),
  };
}

export class ShadowService {
  constructor(
    private readonly store: ShadowStore,
    private readonly devices: DevicesStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly messenger: DeviceMessenger,
  ) {}

  async get(actor: Actor, deviceId: string): Promise<ShadowView> {
    requirePermission(actor, 'devices:read');
    const device = await this.deviceOf(actor, deviceId);
    return view((await this.store.row(device.id)) ?? this.empty(device.id, device.organization_id));
  }

  /**
   * Merges `patch` into the desired state. With `expectedVersion`, refuses (409) when someone
   * changed it since that version was read, so two operators never overwrite each other blindly.
   */
  async setDesired(actor: Actor, deviceId: string, patch: unknown, expectedVersion?: number): Promise<ShadowView> {
    requirePermission(actor, 'devices:write');
    try {
      checkPatch(patch);
    } catch (error) {
      if (error instanceof StateError) throw new ValidationError(error.message, { field: 'state' }, 'state.invalid');
      throw error;
    }
    const device = await this.deviceOf(actor, deviceId);
    const updated = await this.change(device.id, device.organization_id, 'desired', patch, auditActor(actor).id, async (row, trx) => {
      if (expectedVersion !== undefined && row.desired_version !== expectedVersion) {
        throw new ConflictError(
          `The desired state is at version ${row.desired_version}, not ${expectedVersion}: read it again and retry`,
          { version: row.desired_version },
          'state.version_conflict',
        );
      }
      await this.audit.recordBy(
        actor,
        'device.desired_state_changed',
        { type: 'device', id: device.id },
        { version: row.desired_version + 1, keys: Object.keys(patch as JsonObject) },
        trx,
      );
    });
    await this.push(updated);
    return updated;
  }

  /**
   * A device's report: merged into its reported state; the device then gets its delta if any
   * remains. An invalid or too large state is refused (DeviceMessageRefusal, `state.invalid`).
   */
  async report(identity: DeviceIdentity, patch: unknown): Promise<ShadowView> {
    let updated: ShadowView;
    try {
      checkPatch(patch);
      // A child's report names the gateway that relayed it in the shadow history.
      const by = identity.credential.type === 'via_gateway' ? `gateway:${identity.credential.gatewayId}` : null;
      updated = await this.change(identity.deviceId, identity.organizationId, 'reported', patch, by);
    } catch (error) {
      if (error instanceof StateError) throw new DeviceMessageRefusal('state.invalid', error.message);
      throw error;
    }
    if (Object.keys(updated.delta).length > 0)
      await this.messenger.publishToDevice(identity.deviceId, STATE_DELTA, { version: updated.desired.version, state: updated.delta });
    return updated;
  }

  /** Sends the device its desired state and delta now (on `state/get`, and when it subscribes). */
  async sync(identity: DeviceIdentity): Promise<void> {
    const row = (await this.store.row(identity.deviceId)) ?? this.empty(identity.deviceId, identity.organizationId);
    await this.push(view(row));
  }

  async history(
    actor: Actor,
    deviceId: string,
    options: { kind?: 'reported' | 'desired'; limit?: number; beforeVersion?: number },
  ): Promise<ShadowChange[]> {
    requirePermission(actor, 'devices:read');
    const device = await this.deviceOf(actor, deviceId);
    const rows = await this.store.history(device.id, {
      ...(options.kind ? { kind: options.kind } : {}),
      ...(options.beforeVersion !== undefined ? { beforeVersion: options.beforeVersion } : {}),
      limit: Math.min(Math.max(options.limit ?? 50, 1), 500),
    });
    return rows.map((r: DeviceShadowHistoryTable) => ({
      kind: r.kind,
      version: r.version,
      change: JSON.parse(r.change) as JsonObject,
      state: JSON.parse(r.state) as JsonObject,
      actor: r.actor,
      changedAt: new Date(r.changed_at).toISOString(),
    }));
  }

  private async push(shadow: ShadowView): Promise<void> {
    await this.messenger.publishToDevice(shadow.deviceId, STATE_DESIRED, { version: shadow.desired.version, state: shadow.desired.state });
    await this.messenger.publishToDevice(shadow.deviceId, STATE_DELTA, { version: shadow.desired.version, state: shadow.delta });
  }

  /**
   * Applies a patch to one side of the shadow with optimistic concurrency: the update names the
   * version it read, and a concurrent change makes it read again (both engines, no row locks).
   */
  private async change(
    deviceId: string,
    organizationId: string,
    kind: 'reported' | 'desired',
    patch: JsonObject,
    actor: string | null,
    guard?: (row: DeviceShadowsTable, trx: Executor) => Promise<void>,
  ): Promise<ShadowView> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const result = await this.store.db.transaction().execute(async (trx) => {
        await this.store.ensure(this.empty(deviceId, organizationId), trx);
        const row = (await this.store.row(deviceId, trx))!;
        await guard?.(row, trx);
        const now = this.clock.now();
        const current = JSON.parse(kind === 'reported' ? row.reported : row.desired) as JsonObject;
        const next = mergePatch(current, patch);
        let text: string;
        try {
          text = serializeState(next, kind);
        } catch (error) {
          if (error instanceof StateError && kind === 'desired')
            throw new ValidationError(error.message, { field: 'state' }, 'state.too_large');
          throw error;
        }
        const version = (kind === 'reported' ? row.reported_version : row.desired_version) + 1;
        if (!(await this.store.setSide(deviceId, kind, text, version, now, trx))) return null;
        await this.store.appendHistory(
          {
            id: newId(),
            organization_id: organizationId,
            device_id: deviceId,
            kind,
            version,
            change: JSON.stringify(patch),
            state: text,
            actor,
            changed_at: now,
          },
          trx,
        );
        return view(
          kind === 'reported'
            ? { ...row, reported: text, reported_version: version, reported_at: now }
            : { ...row, desired: text, desired_version: version, desired_at: now },
        );
      });
      if (result) return result;
    }
    throw new ConflictError('The shadow changed too often at once; try again', { deviceId }, 'state.version_conflict');
  }

  private empty(deviceId: string, organizationId: string): DeviceShadowsTable {
    return {
      device_id: deviceId,
      organization_id: organizationId,
      reported: '{}',
      reported_version: 0,
      reported_at: null,
      desired: '{}',
      desired_version: 0,
      desired_at: null,
    };
  }

  private async deviceOf(actor: Actor, deviceId: string) {
    const device = await this.devices.deviceInOrganization(actor.organizationId, deviceId);
    if (!device) throw new NotFoundError('Device', { deviceId });
    return device;
  }
}
