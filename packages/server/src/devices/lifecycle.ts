/**
 * A device's lifecycle: which status may follow which. `retired` is terminal (a retired serial
 * never comes back); everything else may be quarantined, disabled or retired, and brought back
 * to `active` by an operator. A transition to the status a device already has is refused too,
 * so a repeated command says so instead of writing a second audit entry for nothing.
 */
import type { DeviceStatus } from './model.js';

/** Every status (one list, in @bulwark/protocol, that the console reads too). */
export { DEVICE_STATUSES } from '@bulwark/protocol';

/** The statuses an operator may set, by the action that sets them. */
export const LIFECYCLE_ACTIONS = {
  activate: 'active',
  quarantine: 'quarantined',
  disable: 'disabled',
  retire: 'retired',
} as const satisfies Record<string, DeviceStatus>;
export type LifecycleAction = keyof typeof LIFECYCLE_ACTIONS;

const ALLOWED: Record<DeviceStatus, readonly DeviceStatus[]> = {
  pending: ['active', 'quarantined', 'disabled', 'retired'],
  active: ['quarantined', 'disabled', 'retired'],
  quarantined: ['active', 'disabled', 'retired'],
  disabled: ['active', 'quarantined', 'retired'],
  retired: [],
};

export function allowedTransitions(from: DeviceStatus): readonly DeviceStatus[] {
  return ALLOWED[from];
}

export function canTransition(from: DeviceStatus, to: DeviceStatus): boolean {
  return ALLOWED[from].includes(to);
}
