/**
 * A consumer's standing on a device, checked on every consumer operation: no standing (another
 * consumer's device, another organization's, or no such device) is the same 404, so device IDs
 * cannot be probed; a standing too low for the operation (a guest sharing, a member transferring)
 * is refused with binding.role_insufficient and audited as `binding.action_refused`.
 */
import { type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import { NotFoundError } from '../errors.js';
import { RoleInsufficientError } from './errors.js';
import { ROLE_CAN } from './model.js';
import type { BindingStore, MemberRow } from './store.js';
import type { Executor } from '../storage/executor.js';

export async function standingOf(store: BindingStore, actor: Actor, deviceId: string, db?: Executor): Promise<MemberRow> {
  const member = actor.kind === 'consumer' ? await store.member(deviceId, actor.userId, db) : undefined;
  if (!member || member.organization_id !== actor.organizationId) throw new NotFoundError('Device', { deviceId });
  return member;
}

/** The actor's standing on the device, if their role there allows `can`; otherwise refused and audited. */
export async function standingFor(
  store: BindingStore,
  audit: AuditService,
  actor: Actor,
  deviceId: string,
  can: keyof typeof ROLE_CAN,
  what: string,
): Promise<MemberRow> {
  const member = await standingOf(store, actor, deviceId);
  if (ROLE_CAN[can].has(member.role)) return member;
  const error = new RoleInsufficientError(what, member.role);
  await audit.recordBy(
    actor,
    'binding.action_refused',
    { type: 'device', id: deviceId },
    { code: error.code, role: member.role, attempted: what },
    undefined,
    { outcome: 'denied' },
  );
  throw error;
}
