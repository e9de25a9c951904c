/**
 * The children each gateway session on this node may speak for (issue 14), cached so the ACL
 * answers from memory on every packet: loaded when the gateway connects, changed at once when a
 * child is registered, attached, moved, detached or leaves service (GatewayFeed in-process, the
 * credential watcher's poll for changes made on other nodes). A child is held by at most one
 * gateway session of this node; `holderOf` finds it in one lookup.
 */
import type { DeviceIdentity } from '../../devices/identity.js';
import type { DeviceStatus } from '../../devices/model.js';
import type { ChildView } from '../../devices/gateways.js';
import type { InboxSession } from './device-inbox.js';

/** A child as its gateway's session speaks for it: its identity (credential `via_gateway`) and its quota flag. */
export interface ChildSession extends InboxSession {
  identity: DeviceIdentity;
}

/** A gateway session's children, and what it relayed (telemetry is counted per gateway, never audited per message). */
export interface GatewayState {
  children: Map<string, ChildSession>;
  relayedMessages: number;
  relayedReadings: number;
}

export class GatewayRoster {
  private readonly gateways = new Map<string, GatewayState>();
  private readonly holders = new Map<string, string>();

  get size(): number {
    return this.gateways.size;
  }

  /** The session's gateway state (null: the device is not a gateway). */
  of(gatewayId: string): GatewayState | undefined {
    return this.gateways.get(gatewayId);
  }

  holderOf(childId: string): string | undefined {
    return this.holders.get(childId);
  }

  /** Starts holding a gateway session's children (replacing what an earlier session of it held). */
  load(gateway: DeviceIdentity, children: ChildView[]): GatewayState {
    this.forget(gateway.deviceId);
    const state: GatewayState = { children: new Map(), relayedMessages: 0, relayedReadings: 0 };
    this.gateways.set(gateway.deviceId, state);
    for (const child of children) this.attach(gateway, child, state);
    return state;
  }

  /** Adds a child to a gateway session's state (it leaves any other gateway session of this node first). */
  attach(gateway: DeviceIdentity, child: ChildView, state: GatewayState): void {
    if (this.gateways.get(gateway.deviceId) !== state) return;
    const holder = this.holders.get(child.deviceId);
    if (holder && holder !== gateway.deviceId) this.gateways.get(holder)?.children.delete(child.deviceId);
    const existing = state.children.get(child.deviceId);
    if (existing) {
      existing.identity = { ...existing.identity, status: child.status };
      return;
    }
    state.children.set(child.deviceId, {
      identity: {
        organizationId: gateway.organizationId,
        deviceId: child.deviceId,
        serial: child.serial,
        productId: child.productId,
        status: child.status,
        credential: { type: 'via_gateway', gatewayId: gateway.deviceId, expiresAt: credentialExpiry(gateway) },
      },
      overQuota: false,
    });
    this.holders.set(child.deviceId, gateway.deviceId);
  }

  /** Removes a child from the gateway session holding it; returns that gateway's ID (undefined: none held it). */
  cut(childId: string): string | undefined {
    const holder = this.holders.get(childId);
    if (!holder) return undefined;
    this.holders.delete(childId);
    this.gateways.get(holder)?.children.delete(childId);
    return holder;
  }

  /** Sets a held child's status; returns its gateway's ID (undefined: none held it). */
  setStatus(childId: string, status: DeviceStatus): string | undefined {
    const holder = this.holders.get(childId);
    const child = holder ? this.gateways.get(holder)?.children.get(childId) : undefined;
    if (!child) return undefined;
    child.identity = { ...child.identity, status };
    return holder;
  }

  /** The gateway session ended: its children are no longer held here. */
  forget(gatewayId: string): GatewayState | undefined {
    const state = this.gateways.get(gatewayId);
    if (!state) return undefined;
    for (const childId of state.children.keys()) if (this.holders.get(childId) === gatewayId) this.holders.delete(childId);
    this.gateways.delete(gatewayId);
    return state;
  }
}

/** When the credential a session authenticated with expires (a child's is its gateway's). */
export function credentialExpiry(identity: DeviceIdentity): number {
  switch (identity.credential.type) {
    case 'certificate':
    case 'manufacturer_certificate':
      return identity.credential.notAfter;
    case 'symmetric_key':
      return identity.credential.tokenExpiresAt;
    case 'via_gateway':
      return identity.credential.expiresAt;
  }
}
