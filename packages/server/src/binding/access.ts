/**
 * A consumer's standing on a device, checked on every consumer operation: no standing (another
 * consumer's device, another organization's, or no such device) is the same 404, so device IDs
 * cannot be probed; a standing too low for the operation is refused with its code.
 */
import type { Actor } from '../accounts/roles.js';
import { NotFoundError } from '../errors.js';
import { RoleInsufficientError } from './errors.js';
import { ROLE_CAN } from './model.js';
import type { BindingStore, Executor, MemberRow } from './store.js';

export async function standingOf(store: BindingStore, actor: Actor, deviceId: string, db?: Executor): Promise<MemberRow> {
  const member = actor.kind === 'consumer' ? await store.member(deviceId, actor.userId, db) : undefined;
  if (!member || member.organization_id !== actor.organizationId) throw new NotFoundError('Device', { deviceId });
  return member;
}

export function requireRole(member: MemberRow, can: keyof typeof ROLE_CAN, what: string): void {
  if (!ROLE_CAN[can].has(member.role)) throw new RoleInsufficientError(what, member.role);
}
