/**
 * The device registry: products, and devices registered one by one or imported in bulk,
 * updated, moved through their lifecycle, listed with filters and cursor pagination. Every
 * operation is authorized here (not only at the route) and every write is audited in the same
 * transaction; an import commits all of its rows or none.
 */
import type { AuditEvent, AuditService } from '../audit/service.js';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { Clock } from '../clock.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { isUniqueViolation } from '../storage/unique-violation.js';
import type { DeviceStatus } from './model.js';
import { newId } from '../tokens.js';
import { ErrorCodes } from '@bulwark/protocol';
import type { GatewayFeed } from './gateway-feed.js';
import {
  ChildNotEnrollableError,
  DeviceNotEnrollableError,
  ImportRejectedError,
  InvalidTransitionError,
  ProductExistsError,
  SerialTakenError,
  type RowError,
} from './errors.js';
import type { ImportRow } from './import-format.js';
import { parseCommandDeclarations } from './command-catalogue.js';
import { allowedTransitions, canTransition, LIFECYCLE_ACTIONS, type LifecycleAction } from './lifecycle.js';
import {
  checkAttributes,
  checkDeviceInput,
  checkGroup,
  checkTags,
  toDeviceView,
  toProductView,
  type DeviceInput,
  type DeviceView,
  type FieldProblem,
  type ProductView,
} from './model.js';
import type { DeviceFilter, DeviceRow, DevicesStore, ProductRow } from './store.js';
import { decodeCursor, encodeCursor, pageOf } from '../pagination.js';
import type { Executor } from '../storage/executor.js';

export const MAX_PAGE = 500;
const DEFAULT_PAGE = 50;
/** Telemetry retention a product may set, in days (ten years at most). */
export const MAX_RETENTION_DAYS = 3650;
/** The largest daily telemetry quotas a product may set per device (a reading every millisecond; 64 GiB). */
export const MAX_DAILY_READINGS = 86_400_000;
export const MAX_DAILY_BYTES = 64 * 1024 ** 3;

export interface ListQuery extends Omit<DeviceFilter, 'afterSerial' | 'limit'> {
  cursor?: string;
  limit?: number;
}

export interface DevicePage {
  devices: DeviceView[];
  nextCursor: string | null;
}

/** A product's telemetry settings; each null returns to the deployment's default, each absent stays as it is. */
export interface ProductChanges {
  /** Days of telemetry to keep. */
  telemetryRetentionDays?: number | null;
  /** Readings each device may store per UTC day. */
  telemetryDailyReadings?: number | null;
  /** Telemetry payload bytes each device may store per UTC day. */
  telemetryDailyBytes?: number | null;
}

/** Each setting's column and its allowed range (whole numbers). */
const PRODUCT_SETTINGS = {
  telemetryRetentionDays: { column: 'telemetry_retention_days', min: 1, max: MAX_RETENTION_DAYS, unit: 'days' },
  telemetryDailyReadings: { column: 'telemetry_daily_readings', min: 1, max: MAX_DAILY_READINGS, unit: 'readings' },
  telemetryDailyBytes: { column: 'telemetry_daily_bytes', min: 1024, max: MAX_DAILY_BYTES, unit: 'bytes' },
} as const satisfies Record<keyof ProductChanges, { column: keyof ProductRow; min: number; max: number; unit: string }>;

function checkProductSettings(changes: ProductChanges): void {
  for (const [field, rule] of Object.entries(PRODUCT_SETTINGS) as [
    keyof ProductChanges,
    (typeof PRODUCT_SETTINGS)[keyof ProductChanges],
  ][]) {
    const value = changes[field];
    if (value === undefined || value === null) continue;
    if (!Number.isInteger(value) || value < rule.min || value > rule.max)
      throw new ValidationError(`${field} must be null or a whole number of ${rule.unit} from ${rule.min} to ${rule.max}`, { field });
  }
}

export interface DeviceChanges {
  attributes?: Record<string, unknown>;
  tags?: string[];
  group?: string | null;
}

/** The cursor's position: the last serial of the page, so the next page starts strictly after it. */
const isSerialPosition = (v: unknown): v is { s: string } => typeof (v as { s?: unknown } | null)?.s === 'string';
export const serialAfter = (cursor: string): string => decodeCursor(cursor, isSerialPosition).s;

function rejectProblems(problems: FieldProblem[]): never {
  throw new ValidationError(`Invalid device: ${problems.map((p) => `${p.field} ${p.problem}`).join('; ')}`, { problems });
}

/** How many firmware versions the fleet summary counts (the most common). */
const FLEET_FIRMWARE_VERSIONS = 12;
/** Lifecycle actions that take a device out of service for good or until an operator acts: a recent step-up first. */
const DESTRUCTIVE_ACTIONS: ReadonlySet<LifecycleAction> = new Set(['disable', 'retire']);

export class DevicesService {
  constructor(
    private readonly store: DevicesStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    /** Told of every status change at once, so the broker cuts a child that left service from its gateway. */
    private readonly feed?: GatewayFeed,
    /** Throws unless the actor re-proved a factor recently (the accounts domain's rule): asked before `disable` and `retire`. */
    private readonly requireStepUp: (actor: Actor) => void = () => undefined,
  ) {}

  async createProduct(
    actor: Actor,
    input: { name: string; hardwareRevision?: string | null; firmwareLine?: string | null } & ProductChanges,
  ): Promise<ProductView> {
    requirePermission(actor, 'devices:write');
    const name = input.name.trim();
    if (!name || name.length > 100) throw new ValidationError('name must be 1-100 characters', { field: 'name' });
    checkProductSettings(input);
    const row: ProductRow = {
      id: newId(),
      organization_id: actor.organizationId,
      name,
      hardware_revision: input.hardwareRevision ?? null,
      firmware_line: input.firmwareLine ?? null,
      created_at: this.clock.now(),
      telemetry_retention_days: input.telemetryRetentionDays ?? null,
      telemetry_daily_readings: input.telemetryDailyReadings ?? null,
      telemetry_daily_bytes: input.telemetryDailyBytes ?? null,
      support_until: null,
      commands: null,
    };
    try {
      await this.store.db.transaction().execute(async (trx) => {
        if (await this.store.productByName(actor.organizationId, name, trx)) throw new ProductExistsError(name);
        await this.store.insertProduct(row, trx);
        await this.audit.recordBy(actor, 'product.created', { type: 'product', id: row.id }, { name }, trx);
      });
    } catch (error) {
      throw isUniqueViolation(error) ? new ProductExistsError(name) : error;
    }
    return toProductView(row);
  }

  async listProducts(actor: Actor): Promise<ProductView[]> {
    requirePermission(actor, 'devices:read');
    return (await this.store.listProducts(actor.organizationId)).map(toProductView);
  }

  /**
   * A product of the organization, or null: for another domain that already checked its own
   * permission (publishing a release needs `firmware:release`, not `devices:read`). No permission
   * check here, so never expose it to a caller as is.
   */
  async productOf(organizationId: string, productId: string, db?: Executor): Promise<ProductView | null> {
    const row = await this.store.productInOrganization(organizationId, productId, db);
    return row ? toProductView(row) : null;
  }

  /** Changes a product's telemetry settings (retention, daily quotas); audited with each changed value's old and new value. */
  async updateProduct(actor: Actor, productId: string, changes: ProductChanges): Promise<ProductView> {
    requirePermission(actor, 'devices:write');
    checkProductSettings(changes);
    return this.store.db.transaction().execute(async (trx) => {
      const product = await this.store.productInOrganization(actor.organizationId, productId, trx);
      if (!product) throw new NotFoundError('Product', { productId });
      const updated = { ...product };
      const changed: Record<string, { from: number | null; to: number | null }> = {};
      for (const [field, rule] of Object.entries(PRODUCT_SETTINGS) as [
        keyof ProductChanges,
        (typeof PRODUCT_SETTINGS)[keyof ProductChanges],
      ][]) {
        const to = changes[field];
        if (to === undefined) continue;
        changed[field] = { from: product[rule.column], to };
        updated[rule.column] = to;
      }
      if (Object.keys(changed).length === 0) return toProductView(product);
      await this.store.updateProduct(
        product.id,
        {
          telemetry_retention_days: updated.telemetry_retention_days,
          telemetry_daily_readings: updated.telemetry_daily_readings,
          telemetry_daily_bytes: updated.telemetry_daily_bytes,
        },
        trx,
      );
      await this.audit.recordBy(actor, 'product.updated', { type: 'product', id: product.id }, { name: product.name, ...changed }, trx);
      return toProductView(updated);
    });
  }

  /** Declares (or, with null, withdraws) the end of a product's support period (ETSI EN 303 645 5.3-13); audited. */
  async setSupportPeriod(actor: Actor, productId: string, until: number | null): Promise<ProductView> {
    requirePermission(actor, 'devices:write');
    if (until !== null && !Number.isFinite(until))
      throw new ValidationError('supportUntil must be a date-time or null', { field: 'supportUntil' });
    return this.store.db.transaction().execute(async (trx) => {
      const product = await this.store.productInOrganization(actor.organizationId, productId, trx);
      if (!product) throw new NotFoundError('Product', { productId });
      await this.store.updateProduct(product.id, { support_until: until }, trx);
      await this.audit.recordBy(
        actor,
        'product.support_period_set',
        { type: 'product', id: product.id },
        {
          name: product.name,
          from: product.support_until === null ? null : new Date(Number(product.support_until)).toISOString(),
          to: until === null ? null : new Date(until).toISOString(),
        },
        trx,
      );
      return toProductView({ ...product, support_until: until });
    });
  }

  /** Declares the commands a product's devices take (or, with null, withdraws the declaration); audited. */
  async declareCommands(actor: Actor, productId: string, input: unknown): Promise<ProductView> {
    requirePermission(actor, 'devices:write');
    const commands = input === null ? null : parseCommandDeclarations(input);
    return this.store.db.transaction().execute(async (trx) => {
      const product = await this.store.productInOrganization(actor.organizationId, productId, trx);
      if (!product) throw new NotFoundError('Product', { productId });
      const column = commands === null ? null : JSON.stringify(commands);
      await this.store.updateProduct(product.id, { commands: column }, trx);
      await this.audit.recordBy(
        actor,
        'product.commands_declared',
        { type: 'product', id: product.id },
        { name: product.name, commands: commands === null ? null : commands.map((c) => c.name) },
        trx,
      );
      return toProductView({ ...product, commands: column });
    });
  }

  /** Every product with its telemetry retention (null: the default), for the retention job; no actor: a platform task. */
  async retentionPolicies(): Promise<{ organizationId: string; productId: string; retentionDays: number | null }[]> {
    return (await this.store.allProducts()).map((p) => ({
      organizationId: p.organization_id,
      productId: p.id,
      retentionDays: p.telemetry_retention_days,
    }));
  }

  /** A product's device IDs, `pageSize` at a time (platform tasks; no actor). */
  async *deviceIdsOfProduct(organizationId: string, productId: string, pageSize = 500): AsyncGenerator<string[]> {
    let after: string | null = null;
    for (;;) {
      const rows = await this.store.deviceIdsOfProduct(organizationId, productId, after, pageSize);
      if (rows.length > 0) yield rows.map((r) => r.id);
      if (rows.length < pageSize) return;
      after = rows[rows.length - 1]!.serial;
    }
  }

  async register(
    actor: Actor,
    value: { serial: string; productId: string; attributes?: Record<string, unknown>; tags?: string[]; group?: string | null },
  ): Promise<DeviceView> {
    requirePermission(actor, 'devices:write');
    const products = await this.store.listProducts(actor.organizationId);
    const checked = checkDeviceInput(value, () => undefined, new Set(products.map((p) => p.id)));
    if ('problems' in checked) rejectProblems(checked.problems);
    const row = this.newDeviceRow(actor.organizationId, checked.input, this.clock.now());
    try {
      await this.store.db.transaction().execute(async (trx) => {
        if (await this.store.deviceBySerial(actor.organizationId, row.serial, trx)) throw new SerialTakenError(row.serial);
        await this.store.insertDevices([row], trx);
        await this.audit.recordBy(
          actor,
          'device.registered',
          { type: 'device', id: row.id },
          { serial: row.serial, productId: row.product_id },
          trx,
        );
      });
    } catch (error) {
      throw isUniqueViolation(error) ? new SerialTakenError(row.serial) : error;
    }
    return toDeviceView(row);
  }

  async get(actor: Actor, deviceId: string): Promise<DeviceView> {
    requirePermission(actor, 'devices:read');
    return toDeviceView(await this.deviceOf(actor, deviceId));
  }

  async getBySerial(actor: Actor, serial: string): Promise<DeviceView> {
    requirePermission(actor, 'devices:read');
    const row = await this.store.deviceBySerial(actor.organizationId, serial);
    if (!row) throw new NotFoundError(`Device with serial "${serial}"`);
    return toDeviceView(row);
  }

  async update(actor: Actor, deviceId: string, changes: DeviceChanges): Promise<DeviceView> {
    requirePermission(actor, 'devices:write');
    const problems: FieldProblem[] = [];
    const attributes = changes.attributes === undefined ? undefined : checkAttributes(changes.attributes, problems);
    const tags = changes.tags === undefined ? undefined : checkTags(changes.tags, problems);
    const group = changes.group === undefined ? undefined : checkGroup(changes.group, problems);
    if (problems.length > 0) rejectProblems(problems);
    return this.store.db.transaction().execute(async (trx) => {
      const device = await this.deviceOf(actor, deviceId, trx);
      const now = this.clock.now();
      await this.store.updateDevice(
        device,
        {
          ...(attributes ? { attributes: JSON.stringify(attributes) } : {}),
          ...(tags ? { tags: JSON.stringify(tags) } : {}),
          ...(group !== undefined ? { group_name: group } : {}),
          updated_at: now,
        },
        trx,
      );
      await this.audit.recordBy(
        actor,
        'device.updated',
        { type: 'device', id: device.id },
        { serial: device.serial, changed: Object.keys(changes) },
        trx,
      );
      return toDeviceView((await this.store.deviceInOrganization(actor.organizationId, device.id, trx))!);
    });
  }

  /** activate, quarantine, disable or retire; refuses what the lifecycle forbids with device.invalid_transition. */
  async transition(actor: Actor, deviceId: string, action: LifecycleAction, reason?: string): Promise<DeviceView> {
    requirePermission(actor, 'devices:write');
    if (DESTRUCTIVE_ACTIONS.has(action)) {
      // Found first: another organization's device ID answers the 404 of an unknown one, whatever the session.
      if (!(await this.store.deviceInOrganization(actor.organizationId, deviceId))) throw new NotFoundError('Device', { deviceId });
      this.requireStepUp(actor);
    }
    return this.applyTransition(actor.organizationId, deviceId, LIFECYCLE_ACTIONS[action], auditActor(actor), actor.sourceIp, reason);
  }

  /**
   * Quarantines an active device on the platform's own verdict (the anomaly detector's policy, no
   * operator): audited with the system actor `by`. Only an operator's `activate` brings it back.
   * Resolves false when the device is not active (already quarantined, or out of service).
   */
  async quarantineBySystem(organizationId: string, deviceId: string, by: string, reason: string): Promise<boolean> {
    const row = await this.store.deviceInOrganization(organizationId, deviceId);
    if (!row || row.status !== 'active') return false;
    try {
      await this.applyTransition(organizationId, deviceId, 'quarantined', { type: 'system', id: by }, undefined, reason);
      return true;
    } catch (error) {
      if (error instanceof InvalidTransitionError) return false;
      throw error;
    }
  }

  private async applyTransition(
    organizationId: string,
    deviceId: string,
    to: DeviceStatus,
    actor: AuditEvent['actor'],
    sourceIp: string | undefined,
    reason?: string,
  ): Promise<DeviceView> {
    let gatewayId: string | null = null;
    const view = await this.store.db.transaction().execute(async (trx) => {
      const device = await this.store.deviceInOrganization(organizationId, deviceId, trx);
      if (!device) throw new NotFoundError('Device', { deviceId });
      gatewayId = device.gateway_id;
      if (!canTransition(device.status, to)) throw new InvalidTransitionError(device.status, to, allowedTransitions(device.status));
      const now = this.clock.now();
      // The status it was read with is part of the condition, so two concurrent changes cannot both apply.
      if (!(await this.store.setStatusIf(device.id, device.status, to, now, trx)))
        throw new InvalidTransitionError(device.status, to, allowedTransitions(device.status));
      await this.audit.record(
        {
          organizationId,
          actor,
          action: 'device.status_changed',
          target: { type: 'device', id: device.id },
          ...(sourceIp === undefined ? {} : { sourceIp }),
          details: { serial: device.serial, from: device.status, to, ...(reason ? { reason } : {}) },
        },
        trx,
      );
      return toDeviceView({ ...device, status: to, updated_at: now });
    });
    if (gatewayId !== null)
      this.feed?.emit({ childId: view.id, gatewayId, status: view.status, serial: view.serial, productId: view.productId });
    return view;
  }

  /**
   * The device of the organization that enrollment is about to give a certificate; enrollment
   * authorizes its caller itself (an operator, or a one-time enrollment token naming the device).
   */
  /** Devices of every organization that left service (quarantined, disabled, retired) at or after `since`: the broker drops their sessions. */
  async outOfServiceSince(since: number): Promise<{ deviceId: string; status: DeviceStatus; at: number }[]> {
    const rows = await this.store.devicesOutOfServiceSince(since);
    return rows.map((r) => ({ deviceId: r.id, status: r.status, at: r.updated_at }));
  }

  /** The device's status now, or null once it is deleted (the broker re-checks a live session). */
  async currentStatus(deviceId: string): Promise<DeviceStatus | null> {
    return (await this.store.statusOf(deviceId)) ?? null;
  }

  /**
   * Devices of the organization by ID, for a domain that has already decided the caller may see
   * them (binding: the consumer's own devices); unknown IDs are left out.
   */
  async viewsOf(organizationId: string, deviceIds: string[]): Promise<DeviceView[]> {
    const rows: DeviceRow[] = [];
    for (let i = 0; i < deviceIds.length; i += 500)
      rows.push(...(await this.store.devicesInOrganization(organizationId, deviceIds.slice(i, i + 500))));
    return rows.map(toDeviceView);
  }

  async enrollable(organizationId: string, deviceId: string): Promise<DeviceView> {
    const row = await this.store.deviceInOrganization(organizationId, deviceId);
    if (!row) throw new NotFoundError('Device', { deviceId });
    if (row.status === 'disabled' || row.status === 'retired') throw new DeviceNotEnrollableError(deviceId, row.status);
    if (row.gateway_id !== null) throw new ChildNotEnrollableError(deviceId, row.gateway_id);
    return toDeviceView(row);
  }

  /** Marks a pending device active once it holds a certificate (audited); any other status is left as it is. */
  async activateIfPending(organizationId: string, deviceId: string, actor: AuditEvent['actor'], sourceIp?: string): Promise<void> {
    await this.store.db.transaction().execute(async (trx) => {
      const now = this.clock.now();
      if (!(await this.store.activatePending(deviceId, now, trx, organizationId))) return;
      await this.audit.record(
        {
          organizationId,
          actor,
          action: 'device.status_changed',
          target: { type: 'device', id: deviceId },
          ...(sourceIp ? { sourceIp } : {}),
          details: { from: 'pending', to: 'active', reason: 'enrolled' },
        },
        trx,
      );
    });
  }

  /** The organization's devices by status, by product and by firmware version (the 12 most common). */
  async fleetCounts(actor: Actor) {
    requirePermission(actor, 'devices:read');
    return this.store.fleetCounts(actor.organizationId, FLEET_FIRMWARE_VERSIONS);
  }

  async list(actor: Actor, query: ListQuery): Promise<DevicePage> {
    requirePermission(actor, 'devices:read');
    const limit = Math.min(Math.max(query.limit ?? DEFAULT_PAGE, 1), MAX_PAGE);
    const { cursor, limit: _limit, ...filter } = query;
    const rows = await this.store
      .listDevices(actor.organizationId, {
        ...filter,
        ...(cursor ? { afterSerial: serialAfter(cursor) } : {}),
        limit: limit + 1,
      })
      .execute();
    const { page, nextCursor } = pageOf(rows, limit, (last) => encodeCursor({ s: last.serial }));
    return { devices: page.map(toDeviceView), nextCursor };
  }

  /**
   * Imports parsed rows: every row is checked (fields, product, duplicates within the file, serials
   * already registered) before anything is written, then all are inserted in one transaction.
   * Any bad row rejects the whole import with a report naming each bad line.
   */
  async import(actor: Actor, rows: ImportRow[], format: 'ndjson' | 'csv'): Promise<{ imported: number }> {
    requirePermission(actor, 'devices:write');
    if (rows.length === 0) throw new ValidationError('The import holds no rows', { field: 'body' });
    const products = await this.store.listProducts(actor.organizationId);
    const byName = new Map(products.map((p) => [p.name, p.id]));
    const ids = new Set(products.map((p) => p.id));
    const errors: RowError[] = [];
    const inputs: { line: number; input: DeviceInput }[] = [];
    const firstLine = new Map<string, number>();
    for (const row of rows) {
      if ('error' in row) {
        errors.push({ line: row.line, problems: [{ field: 'row', problem: row.error }] });
        continue;
      }
      const checked = checkDeviceInput(row.value, (name) => byName.get(name), ids);
      const serial =
        typeof (row.value as { serial?: unknown } | null)?.serial === 'string' ? (row.value as { serial: string }).serial : undefined;
      const problems = 'problems' in checked ? checked.problems : [];
      if (serial !== undefined && 'input' in checked) {
        const earlier = firstLine.get(serial);
        if (earlier !== undefined) problems.push({ field: 'serial', problem: `duplicates line ${earlier} of this file` });
        else firstLine.set(serial, row.line);
      }
      if (problems.length > 0) errors.push({ line: row.line, ...(serial !== undefined ? { serial } : {}), problems });
      else inputs.push({ line: row.line, input: (checked as { input: DeviceInput }).input });
    }
    const result = await this.store.db
      .transaction()
      .execute(async (trx) => {
        const taken = await this.store.existingSerials(
          actor.organizationId,
          inputs.map((i) => i.input.serial),
          trx,
        );
        for (const { line, input } of inputs) {
          if (taken.has(input.serial))
            errors.push({
              line,
              serial: input.serial,
              problems: [{ field: 'serial', problem: 'is already registered in this organization' }],
            });
        }
        if (errors.length > 0) return { errors };
        const now = this.clock.now();
        await this.store.insertDevices(
          inputs.map(({ input }) => this.newDeviceRow(actor.organizationId, input, now)),
          trx,
        );
        await this.audit.recordBy(
          actor,
          'device.imported',
          { type: 'organization', id: actor.organizationId },
          { format, imported: inputs.length },
          trx,
        );
        return { imported: inputs.length };
      })
      .catch((error: unknown) => {
        if (isUniqueViolation(error))
          throw new ValidationError(
            'A serial of this import was registered by someone else meanwhile; nothing was imported, try again',
            undefined,
            ErrorCodes.deviceImportRejected,
          );
        throw error;
      });
    if ('errors' in result) {
      errors.sort((a, b) => a.line - b.line);
      await this.audit.recordBy(
        actor,
        'device.import_rejected',
        { type: 'organization', id: actor.organizationId },
        { format, rows: rows.length, failed: errors.length, firstLine: errors[0]!.line },
        undefined,
        { outcome: 'failure' },
      );
      throw new ImportRejectedError(rows.length, errors);
    }
    return result;
  }

  private newDeviceRow(organizationId: string, input: DeviceInput, now: number): DeviceRow {
    return {
      id: newId(),
      organization_id: organizationId,
      serial: input.serial,
      product_id: input.productId,
      status: 'pending',
      firmware_version: null,
      last_seen_at: null,
      attributes: JSON.stringify(input.attributes),
      tags: JSON.stringify(input.tags),
      group_name: input.group,
      gateway_enabled_at: null,
      gateway_id: null,
      gateway_changed_at: null,
      created_at: now,
      updated_at: now,
    };
  }

  private async deviceOf(actor: Actor, deviceId: string, db?: Executor): Promise<DeviceRow> {
    const row = await this.store.deviceInOrganization(actor.organizationId, deviceId, db);
    if (!row) throw new NotFoundError('Device', { deviceId });
    return row;
  }
}
