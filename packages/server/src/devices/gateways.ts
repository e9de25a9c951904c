/**
 * Gateways and their children (issue 14). A gateway is a device an operator made one (devices:write;
 * a device cannot make itself one); it authenticates as itself and relays child devices (BLE,
 * Zigbee, serial) that have no credential of their own: each child is a registry device of the
 * gateway's organization with its own ID, attached to exactly one gateway. Children are
 * registered by their gateway (over MQTT, `d/<gw>/gateway/register`) or by an operator, moved
 * and detached by an operator. A serial that is another gateway's child, a directly connected
 * device or a gateway is never taken over by registering it. Children per gateway are bounded
 * (`maxChildrenPerGateway`), and so is a gateway's registration rate. Every change is audited
 * (the gateway's own registrations with `via_gateway`) and told to the brokers (GatewayFeed here,
 * `changesSince` on other nodes) so a child leaves its old gateway at once.
 */
import type { AuditEvent, AuditService } from '../audit/service.js';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { Clock } from '../clock.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { isUniqueViolation } from '../storage/unique-violation.js';
import { newId } from '../tokens.js';
import {
  ChildrenLimitError,
  ChildTakenError,
  GatewayHasChildrenError,
  NestedGatewayError,
  NotAChildError,
  NotAGatewayError,
  RegistrationRateError,
  SerialTakenError,
} from './errors.js';
import type { GatewayFeed } from './gateway-feed.js';
import type { ChildRow, GatewayStore } from './gateway-store.js';
import type { DeviceIdentity } from './identity.js';
import { checkSerial, selfRegisteredDevice, toDeviceView, type DeviceStatus, type DeviceView, type FieldProblem } from './model.js';
import type { DeviceRow, DevicesStore } from './store.js';
import type { Executor } from '../storage/executor.js';

export interface GatewayLimits {
  /** Children one gateway may hold. */
  maxChildrenPerGateway: number;
  /** Children one gateway may register per minute (its own requests; operators are not limited). */
  registrationsPerMinute: number;
}

/** A child as its gateway and the broker see it. */
export interface ChildView {
  deviceId: string;
  serial: string;
  productId: string;
  status: DeviceStatus;
}

/** What a child registration asks for: its serial and product (by ID, or by name). */
export interface ChildRequest {
  serial: unknown;
  productId?: unknown;
  product?: unknown;
}

export interface GatewayView extends DeviceView {
  gateway: boolean;
  gatewayId: string | null;
}

/** What the broker needs of one child change it polls for. */
export interface ChildAssignment {
  childId: string;
  gatewayId: string | null;
  status: DeviceStatus;
  at: number;
}

const WINDOW_MS = 60_000;
/** Gateways whose registration window is remembered at most (older windows are forgotten first). */
const MAX_WINDOWS = 100_000;

export class GatewaysService {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly devices: DevicesStore,
    private readonly store: GatewayStore,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly feed: GatewayFeed,
    private readonly limits: GatewayLimits,
  ) {}

  get maxChildren(): number {
    return this.limits.maxChildrenPerGateway;
  }

  /** Makes a device a gateway, or an ordinary device again (refused while it has children). */
  async setGateway(actor: Actor, deviceId: string, enabled: boolean): Promise<GatewayView> {
    requirePermission(actor, 'devices:write');
    return this.devices.db.transaction().execute(async (trx) => {
      const device = await this.deviceOf(actor, deviceId, trx);
      if (device.gateway_id !== null)
        throw new NestedGatewayError(device.id, `Device ${device.id} is a child of a gateway: it cannot be a gateway`);
      const now = this.clock.now();
      if (enabled === (device.gateway_enabled_at !== null)) return gatewayView(device);
      if (!enabled) {
        const children = await this.store.countChildren(device.id, trx);
        if (children > 0) throw new GatewayHasChildrenError(device.id, children);
      }
      const at = enabled ? now : null;
      await this.store.setGatewayEnabled(device.id, at, now, trx);
      await this.audit.recordBy(
        actor,
        enabled ? 'device.gateway_enabled' : 'device.gateway_disabled',
        { type: 'device', id: device.id },
        { serial: device.serial },
        trx,
      );
      return gatewayView({ ...device, gateway_enabled_at: at, updated_at: now });
    });
  }

  async listChildren(actor: Actor, gatewayId: string): Promise<ChildView[]> {
    requirePermission(actor, 'devices:read');
    const gateway = await this.deviceOf(actor, gatewayId);
    return (await this.store.childrenOf(gateway.id, this.limits.maxChildrenPerGateway)).map(childView);
  }

  /** An operator registers a new child of a gateway. */
  async registerChild(actor: Actor, gatewayId: string, request: ChildRequest): Promise<ChildView> {
    requirePermission(actor, 'devices:write');
    const gateway = await this.deviceOf(actor, gatewayId);
    return this.register(gateway, request, { actor: auditActor(actor), sourceIp: actor.sourceIp }, false);
  }

  /**
   * A gateway registers a child it relays (over its own MQTT connection): a new device, or one of
   * its own children again (idempotent, so a gateway re-registers what it relays after a restart).
   */
  async registerByGateway(gateway: DeviceIdentity, request: ChildRequest): Promise<ChildView> {
    const row = await this.devices.deviceInOrganization(gateway.organizationId, gateway.deviceId);
    if (!row) throw new NotFoundError('Device', { deviceId: gateway.deviceId });
    return this.register(row, request, { actor: { type: 'device', id: gateway.deviceId } }, true);
  }

  /** An operator attaches an existing device (pending, detached, or another gateway's child) to a gateway: a move when it had one. */
  async attachChild(actor: Actor, gatewayId: string, childId: string): Promise<ChildView> {
    requirePermission(actor, 'devices:write');
    const view = await this.devices.db.transaction().execute(async (trx) => {
      const gateway = await this.deviceOf(actor, gatewayId, trx);
      const child = await this.deviceOf(actor, childId, trx);
      if (gateway.gateway_enabled_at === null) throw new NotAGatewayError(gateway.id);
      if (child.id === gateway.id || child.gateway_enabled_at !== null) throw new ChildTakenError(child.serial, 'gateway');
      if (child.gateway_id === gateway.id) return { view: childView(child), moved: false };
      // A device that never was a child and left pending holds a credential of its own (a detached child may be attached again).
      if (child.gateway_id === null && child.gateway_changed_at === null && child.status !== 'pending')
        throw new ChildTakenError(child.serial, 'direct');
      await this.store.lockGateway(gateway.id, trx);
      const count = await this.store.countChildren(gateway.id, trx);
      if (count >= this.limits.maxChildrenPerGateway) throw new ChildrenLimitError(this.limits.maxChildrenPerGateway);
      const now = this.clock.now();
      const activate = child.status === 'pending';
      await this.store.assign(child.id, gateway.id, now, activate, trx);
      await this.audit.recordBy(
        actor,
        child.gateway_id ? 'device.gateway_child_moved' : 'device.gateway_child_attached',
        { type: 'device', id: child.id },
        { serial: child.serial, gatewayId: gateway.id, ...(child.gateway_id ? { fromGatewayId: child.gateway_id } : {}) },
        trx,
      );
      return { view: childView({ ...child, status: activate ? 'active' : child.status }), moved: true };
    });
    if (view.moved)
      this.feed.emit({
        childId: view.view.deviceId,
        gatewayId,
        status: view.view.status,
        serial: view.view.serial,
        productId: view.view.productId,
      });
    return view.view;
  }

  /** An operator detaches a child from its gateway: the gateway can no longer speak for it. */
  async detachChild(actor: Actor, gatewayId: string, childId: string): Promise<void> {
    requirePermission(actor, 'devices:write');
    const child = await this.devices.db.transaction().execute(async (trx) => {
      const gateway = await this.deviceOf(actor, gatewayId, trx);
      const row = await this.deviceOf(actor, childId, trx);
      if (row.gateway_id !== gateway.id) throw new NotAChildError(gateway.id, row.id);
      await this.store.assign(row.id, null, this.clock.now(), false, trx);
      await this.audit.recordBy(
        actor,
        'device.gateway_child_detached',
        { type: 'device', id: row.id },
        { serial: row.serial, gatewayId: gateway.id },
        trx,
      );
      return row;
    });
    this.feed.emit({ childId: child.id, gatewayId: null, status: child.status });
  }

  // --- what the broker asks ------------------------------------------------------------------

  /** Whether the device is a gateway now, and its children (the broker caches them per gateway session). */
  async childrenForSession(gatewayId: string): Promise<ChildView[] | null> {
    const row = await this.devices.statusAndGateway(gatewayId);
    if (!row || row.gateway_enabled_at === null) return null;
    return (await this.store.childrenOf(gatewayId, this.limits.maxChildrenPerGateway)).map(childView);
  }

  /** Children attached, moved or detached at or after `since`, on any node (the credential watcher polls it). */
  async changesSince(since: number): Promise<ChildAssignment[]> {
    return (await this.store.changesSince(since)).map((r) => ({
      childId: r.id,
      gatewayId: r.gateway_id,
      status: r.status,
      at: r.gateway_changed_at,
    }));
  }

  // --- internals -------------------------------------------------------------------------------

  private async register(
    gateway: DeviceRow,
    request: ChildRequest,
    by: { actor: AuditEvent['actor']; sourceIp?: string },
    fromGateway: boolean,
  ): Promise<ChildView> {
    if (gateway.gateway_enabled_at === null) {
      if (fromGateway) await this.refused(gateway, by, 'not_a_gateway', typeof request.serial === 'string' ? request.serial : null);
      throw new NotAGatewayError(gateway.id);
    }
    const problems: FieldProblem[] = [];
    const serialOk = checkSerial(request.serial, problems);
    const productId = await this.productOf(gateway.organization_id, request, problems);
    if (!serialOk || !productId)
      throw new ValidationError(`Invalid child: ${problems.map((p) => `${p.field} ${p.problem}`).join('; ')}`, { problems });
    const serial = request.serial as string;
    const existing = await this.devices.deviceBySerial(gateway.organization_id, serial);
    if (existing) {
      if (existing.gateway_id === gateway.id) return childView(existing);
      const why = existing.gateway_enabled_at !== null ? 'gateway' : existing.gateway_id !== null ? 'other_gateway' : 'direct';
      await this.refused(gateway, by, why, serial, existing.id);
      throw new ChildTakenError(serial, why);
    }
    if (fromGateway) this.chargeRegistration(gateway.id);
    const now = this.clock.now();
    const row: DeviceRow = {
      ...selfRegisteredDevice(
        { id: newId(), organization_id: gateway.organization_id, serial, product_id: productId, status: 'active' },
        now,
      ),
      gateway_id: gateway.id,
      gateway_changed_at: now,
    };
    try {
      await this.devices.db.transaction().execute(async (trx) => {
        await this.store.lockGateway(gateway.id, trx);
        if (await this.devices.deviceBySerial(gateway.organization_id, serial, trx)) throw new SerialTakenError(serial);
        const count = await this.store.countChildren(gateway.id, trx);
        if (count >= this.limits.maxChildrenPerGateway) throw new ChildrenLimitError(this.limits.maxChildrenPerGateway);
        await this.devices.insertDevices([row], trx);
        await this.audit.record(
          {
            organizationId: gateway.organization_id,
            actor: by.actor,
            action: 'device.registered',
            target: { type: 'device', id: row.id },
            ...(by.sourceIp ? { sourceIp: by.sourceIp } : {}),
            details: { serial, productId, gatewayId: gateway.id, ...(fromGateway ? { via_gateway: gateway.id } : {}) },
          },
          trx,
        );
      });
    } catch (error) {
      // Registered by someone else meanwhile: answered as for any serial already there.
      if (isUniqueViolation(error) || error instanceof SerialTakenError) return this.register(gateway, request, by, fromGateway);
      throw error;
    }
    this.feed.emit({ childId: row.id, gatewayId: gateway.id, status: row.status, serial, productId });
    return childView(row);
  }

  /** A gateway's refused registration is audited (a device probing for others' serials shows in the log). */
  private async refused(
    gateway: DeviceRow,
    by: { actor: AuditEvent['actor']; sourceIp?: string },
    why: string,
    serial: string | null,
    existingId?: string,
  ): Promise<void> {
    await this.audit.record({
      organizationId: gateway.organization_id,
      actor: by.actor,
      action: 'device.gateway_child_refused',
      target: { type: 'device', id: existingId ?? null },
      outcome: 'denied',
      ...(by.sourceIp ? { sourceIp: by.sourceIp } : {}),
      details: { serial, reason: why, gatewayId: gateway.id, via_gateway: gateway.id },
    });
  }

  private async productOf(organizationId: string, request: ChildRequest, problems: FieldProblem[]): Promise<string | null> {
    if (typeof request.productId === 'string' && request.productId !== '') {
      const product = await this.devices.productInOrganization(organizationId, request.productId);
      if (product) return product.id;
    } else if (typeof request.product === 'string' && request.product !== '') {
      const product = await this.devices.productByName(organizationId, request.product);
      if (product) return product.id;
    }
    problems.push({ field: 'productId', problem: 'must name a product of this organization (productId, or product by name)' });
    return null;
  }

  /** One registration of the gateway's allowance for this minute, or RegistrationRateError. */
  private chargeRegistration(gatewayId: string): void {
    const now = this.clock.now();
    let window = this.windows.get(gatewayId);
    if (!window || now - window.start >= WINDOW_MS) {
      if (this.windows.size >= MAX_WINDOWS) for (const [id, w] of this.windows) if (now - w.start >= WINDOW_MS) this.windows.delete(id);
      window = { start: now, count: 0 };
      this.windows.set(gatewayId, window);
    }
    if (window.count >= this.limits.registrationsPerMinute)
      throw new RegistrationRateError(this.limits.registrationsPerMinute, Math.ceil((window.start + WINDOW_MS - now) / 1000));
    window.count++;
  }

  private async deviceOf(actor: Actor, deviceId: string, db?: Executor): Promise<DeviceRow> {
    const row = await this.devices.deviceInOrganization(actor.organizationId, deviceId, db);
    if (!row) throw new NotFoundError('Device', { deviceId });
    return row;
  }
}

function childView(row: Pick<ChildRow, 'id' | 'serial' | 'product_id' | 'status'>): ChildView {
  return { deviceId: row.id, serial: row.serial, productId: row.product_id, status: row.status };
}

function gatewayView(row: DeviceRow): GatewayView {
  return { ...toDeviceView(row), gateway: row.gateway_enabled_at !== null, gatewayId: row.gateway_id };
}
