/**
 * Commands to devices (docs/protocol.md §3.4): an operator sends one (audited), the device gets
 * it on `d/<id>/commands/<commandId>` and answers on `…/result`. A command not answered before
 * its deadline is `timed_out` and a late answer is refused, so an operator never acts on a
 * result that arrived after they were told it failed. Only an online, active device is sent
 * commands; a quarantined device is not (its command topics are closed).
 */
import { commandResult, commandSuffix, type CommandView } from '@bulwark/protocol';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { ConflictError, DeviceMessageRefusal, NotFoundError, ValidationError } from '../errors.js';
import type { DeviceCommandsTable, DevicePresenceTable } from '../storage/schema.js';
import { newId } from '../tokens.js';
import { checkDeclaredCommand, commandsOfColumn } from './command-catalogue.js';
import type { CommandStore } from './command-store.js';
import type { DeviceIdentity } from './identity.js';
import type { DeviceMessenger } from './messaging.js';
import { checkPatch, isObject, StateError, type JsonObject } from './shadow-state.js';
import type { DevicesStore } from './store.js';

export type CommandStatus = DeviceCommandsTable['status'];

export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
export const MAX_COMMAND_TIMEOUT_MS = 60 * 60_000;
export const MAX_WAIT_MS = 30_000;
const MAX_JSON_BYTES = 8 * 1024;
const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

/** A command as the API shows it: a wire shape the console and the apps read too (@bulwark/protocol). */
export type { CommandView };

/** Where a device's connection is recorded (the telemetry domain's `device_presence`, through its store). */
export interface PresenceReader {
  presence(deviceId: string): Promise<Pick<DevicePresenceTable, 'connected_since'> | undefined>;
}

export class CommandService {
  constructor(
    private readonly store: CommandStore,
    private readonly presence: PresenceReader,
    private readonly devices: DevicesStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly messenger: DeviceMessenger,
  ) {}

  async send(actor: Actor, deviceId: string, input: { name: string; params?: unknown; timeoutMs?: number }): Promise<CommandView> {
    requirePermission(actor, 'devices:write');
    if (!NAME.test(input.name)) throw new ValidationError('Command name must be 1-64 of A-Z a-z 0-9 _ . : -', { field: 'name' });
    const params = input.params ?? {};
    try {
      checkPatch(params, 'params');
    } catch (error) {
      if (error instanceof StateError) throw new ValidationError(error.message, { field: 'params' });
      throw error;
    }
    const paramsText = JSON.stringify(params);
    if (Buffer.byteLength(paramsText) > MAX_JSON_BYTES)
      throw new ValidationError(`Command params must be at most ${MAX_JSON_BYTES} bytes of JSON`, { field: 'params' });
    const timeoutMs = input.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1000 || timeoutMs > MAX_COMMAND_TIMEOUT_MS)
      throw new ValidationError(`timeoutMs must be 1000 to ${MAX_COMMAND_TIMEOUT_MS}`, { field: 'timeoutMs' });

    const device = await this.deviceOf(actor, deviceId);
    const product = await this.devices.productInOrganization(actor.organizationId, device.product_id);
    checkDeclaredCommand(commandsOfColumn(product?.commands ?? null), input.name, params as Record<string, unknown>);
    if (device.status !== 'active')
      throw new ConflictError(`A ${device.status} device is not sent commands`, { status: device.status }, 'device.not_commandable');
    // A child device is reached through its gateway: online while its gateway is.
    const presence = await this.presence.presence(device.gateway_id ?? device.id);
    if (!presence || presence.connected_since === null)
      throw new ConflictError('The device is offline: commands are delivered to connected devices only', { deviceId }, 'device.offline');

    const now = this.clock.now();
    const row: DeviceCommandsTable = {
      id: newId(),
      organization_id: actor.organizationId,
      device_id: device.id,
      name: input.name,
      params: paramsText,
      status: 'pending',
      result: null,
      error: null,
      created_by: auditActor(actor).id,
      created_at: now,
      expires_at: now + timeoutMs,
      completed_at: null,
    };
    await this.store.db.transaction().execute(async (trx) => {
      await this.store.insert(row, trx);
      await this.audit.recordBy(
        actor,
        'device.command_sent',
        { type: 'device', id: device.id },
        { commandId: row.id, name: row.name, timeoutMs },
        trx,
      );
    });
    await this.messenger.publishToDevice(
      device.id,
      commandSuffix(row.id),
      { name: row.name, params, timeoutMs, issuedAt: now },
      { suffix: commandResult(row.id), correlation: row.id },
    );
    return this.view(row);
  }

  /** The command's outcome; with `waitMs`, waits up to that long for it to leave `pending`. */
  async get(actor: Actor, deviceId: string, commandId: string, waitMs = 0): Promise<CommandView> {
    requirePermission(actor, 'devices:read');
    await this.deviceOf(actor, deviceId);
    const deadline = Date.now() + Math.min(Math.max(waitMs, 0), MAX_WAIT_MS);
    for (;;) {
      const row = await this.store.command(actor.organizationId, deviceId, commandId);
      if (!row) throw new NotFoundError('Command', { commandId });
      const current = this.view(row);
      if (current.status !== 'pending' || Date.now() >= deadline) return current;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async list(actor: Actor, deviceId: string, limit = 50): Promise<CommandView[]> {
    requirePermission(actor, 'devices:read');
    await this.deviceOf(actor, deviceId);
    const rows = await this.store.latest(actor.organizationId, deviceId, Math.min(Math.max(limit, 1), 500));
    return rows.map((r) => this.view(r));
  }

  /** The device's answer; refused (DeviceMessageRefusal) for an unknown, another device's, finished or expired command. */
  async complete(identity: DeviceIdentity, commandId: string, payload: unknown): Promise<void> {
    if (!isObject(payload)) throw new DeviceMessageRefusal('payload.invalid', 'A command result is a JSON object');
    const { status, result, error, ...rest } = payload as { status?: unknown; result?: unknown; error?: unknown };
    if (Object.keys(rest).length > 0) throw new DeviceMessageRefusal('payload.invalid', `Unknown field "${Object.keys(rest)[0]}"`);
    const outcome: Record<string, CommandStatus> = { ok: 'succeeded', error: 'failed', rejected: 'rejected' };
    if (typeof status !== 'string' || !outcome[status])
      throw new DeviceMessageRefusal('payload.invalid', '"status" must be "ok", "error" or "rejected"');
    if (error !== undefined && (typeof error !== 'string' || error.length > 1024))
      throw new DeviceMessageRefusal('payload.invalid', '"error" must be a string of at most 1024 characters');
    const resultText = result === undefined ? null : JSON.stringify(result);
    if (resultText !== null && Buffer.byteLength(resultText) > MAX_JSON_BYTES)
      throw new DeviceMessageRefusal('payload.invalid', `"result" must be at most ${MAX_JSON_BYTES} bytes of JSON`);
    const now = this.clock.now();
    const answered = { status: outcome[status]!, result: resultText, error: typeof error === 'string' ? error : null };
    if (!(await this.store.complete(identity.deviceId, commandId, answered, now)))
      throw new DeviceMessageRefusal(
        'command.expired',
        'No pending command of this device has that ID (unknown, already answered, or past its timeout)',
      );
  }

  /** The caller's device: another organization's or an unknown ID is the same 404, on every route. */
  private async deviceOf(actor: Actor, deviceId: string) {
    const device = await this.devices.deviceInOrganization(actor.organizationId, deviceId);
    if (!device) throw new NotFoundError('Device', { deviceId });
    return device;
  }

  private view(row: DeviceCommandsTable): CommandView {
    // Past its deadline without an answer: timed out (computed on read; no sweeper needed).
    const status: CommandStatus = row.status === 'pending' && row.expires_at <= this.clock.now() ? 'timed_out' : row.status;
    return {
      id: row.id,
      deviceId: row.device_id,
      name: row.name,
      params: JSON.parse(row.params) as JsonObject,
      status,
      result: row.result === null ? null : (JSON.parse(row.result) as unknown),
      error: row.error,
      createdAt: new Date(row.created_at).toISOString(),
      expiresAt: new Date(row.expires_at).toISOString(),
      completedAt: row.completed_at === null ? null : new Date(row.completed_at).toISOString(),
    };
  }
}
