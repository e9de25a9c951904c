/**
 * Changes that cut a child from a gateway, told in-process the moment they commit: an operator
 * moved or detached a child, or the child left service. The MQTT broker of this node listens and
 * updates its gateway sessions before the API call returns; other nodes learn the same change
 * from their credential watcher's poll (GatewaysService.changesSince).
 */
import type { DeviceStatus } from './model.js';

export interface ChildChange {
  childId: string;
  /** The gateway the child is attached to now (null: none); undefined when not known (a status change seen by a poll). */
  gatewayId?: string | null;
  status: DeviceStatus;
  /** Set when known: what a gateway session needs to speak for the child at once. */
  serial?: string;
  productId?: string;
}

export class GatewayFeed {
  private readonly listeners = new Set<(change: ChildChange) => void>();

  on(listener: (change: ChildChange) => void): void {
    this.listeners.add(listener);
  }

  off(listener: (change: ChildChange) => void): void {
    this.listeners.delete(listener);
  }

  emit(change: ChildChange): void {
    for (const listener of this.listeners) listener(change);
  }
}
