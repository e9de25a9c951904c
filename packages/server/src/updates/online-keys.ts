/**
 * Rotation of an organization's online keys, snapshot, timestamp and director, by the TUF rules
 * (docs/updates.md, "Rotating the online keys"). `start` stages new keys (sealed under the master
 * key, or on the token, like the current ones) and answers the unsigned next root(s) naming them;
 * the root key holders sign those offline (`bulwark firmware root sign`) and upload them, and the
 * repository then switches to the staged keys in the transaction that accepts the root
 * (TufRepository.acceptRoot). Until then the current keys go on signing; `cancel` drops the staged ones.
 */
import type { Key } from '@tufjs/models';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import { ValidationError } from '../errors.js';
import type { SigningKeys } from '../keys/signing-keys.js';
import { NoOnlineRotationError, OnlineRotationPendingError, RepositoryNotReadyError } from './errors.js';
import { onlinePurposes, type TufRepository } from './repository.js';
import { tufKeyOf } from './tuf/keys.js';
import { DEFAULT_EXPIRY_DAYS, expiresIn, onlineKeysJson, publicKeyJson } from './tuf/offline.js';
import { nextDirectorRoot, nextImageRoot, ONLINE_ROLES, type OnlineRole } from './tuf/online-rotation.js';
import type { Clock } from '../clock.js';

export interface OnlineRotationPlan {
  organizationId: string;
  /** The roles being rotated. */
  roles: OnlineRole[];
  /** The public halves of the staged keys, by role (`.pub` JSON form). */
  pending: Partial<Record<OnlineRole, Record<string, unknown>>>;
  /** The keys in use until the new roots are uploaded (`online-keys` JSON form). */
  current: Record<string, unknown>;
  /** The next image repository root, unsigned, when snapshot or timestamp is rotated. */
  root: Record<string, unknown> | null;
  /** The next director root, unsigned, when the director key is rotated. */
  directorRoot: Record<string, unknown> | null;
}

export class OnlineKeyRotation {
  constructor(
    readonly signingKeys: SigningKeys,
    readonly repository: TufRepository,
    readonly audit: AuditService,
    readonly clock: Clock,
    /** Throws unless the actor re-proved a factor recently (accounts). */
    readonly requireStepUp: (actor: Actor) => void,
  ) {}

  /** Stages new keys for the roles and answers the unsigned roots that name them. */
  async start(actor: Actor, roles: readonly string[] = ONLINE_ROLES, expiresDays = DEFAULT_EXPIRY_DAYS): Promise<OnlineRotationPlan> {
    requirePermission(actor, 'org:manage');
    this.requireStepUp(actor);
    const wanted = checkRoles(roles);
    expiresIn(expiresDays);
    const org = actor.organizationId;
    const staged = await this.repository.stagedKeys(org);
    if (Object.keys(staged).length > 0) throw new OnlineRotationPendingError(Object.keys(staged));
    const { root, directorRoot } = await this.repository.roots(org);
    if (!root || (wanted.includes('director') && !directorRoot))
      throw new RepositoryNotReadyError(
        'No root names the online keys yet: run the root ceremony (docs/updates.md) with the current keys instead of rotating them',
      );
    const current = await this.repository.onlineKeys(org);
    const purposes = onlinePurposes(org);
    await this.repository.db.transaction().execute(async (trx) => {
      const pending: Record<string, string> = {};
      for (const role of wanted) pending[role] = tufKeyOf((await this.signingKeys.createPending(purposes[role], trx)).publicKey).keyID;
      await this.audit.record(
        {
          organizationId: org,
          actor: auditActor(actor),
          action: 'update.online_rotation_started',
          target: { type: 'tuf_repository', id: org },
          sourceIp: actor.sourceIp,
          details: { roles: wanted, pending, current: Object.fromEntries(wanted.map((r) => [r, current[r].keyID])) },
        },
        trx,
      );
    });
    return this.plan(actor, expiresDays);
  }

  /**
   * The pending rotation's unsigned roots, built from the current roots (so after another root was
   * uploaded meanwhile, the next version again). Refused when no rotation is pending.
   */
  async plan(actor: Actor, expiresDays = DEFAULT_EXPIRY_DAYS): Promise<OnlineRotationPlan> {
    requirePermission(actor, 'org:manage');
    const org = actor.organizationId;
    const staged = await this.repository.stagedKeys(org);
    const roles = ONLINE_ROLES.filter((r) => staged[r]);
    if (roles.length === 0) throw new NoOnlineRotationError();
    const { root, directorRoot } = await this.repository.roots(org);
    const expires = expiresIn(expiresDays, this.clock.now());
    const key = (role: OnlineRole): Key | undefined => staged[role]?.key;
    const imageRoles = staged.snapshot || staged.timestamp;
    return {
      organizationId: org,
      roles,
      pending: Object.fromEntries(roles.map((r) => [r, publicKeyJson(key(r)!)])),
      current: onlineKeysJson(await this.repository.onlineKeys(org)),
      root: imageRoles && root ? toJson(nextImageRoot(root, { snapshot: key('snapshot'), timestamp: key('timestamp') }, expires)) : null,
      directorRoot: staged.director && directorRoot ? toJson(nextDirectorRoot(directorRoot, staged.director.key, expires)) : null,
    };
  }

  /** Drops the staged keys (retired, kept for the record): a root naming them is refused from now on. */
  async cancel(actor: Actor): Promise<{ organizationId: string; cancelled: OnlineRole[] }> {
    requirePermission(actor, 'org:manage');
    this.requireStepUp(actor);
    const org = actor.organizationId;
    const purposes = onlinePurposes(org);
    return this.repository.db.transaction().execute(async (trx) => {
      const cancelled: Record<string, string> = {};
      for (const role of ONLINE_ROLES) {
        const id = await this.signingKeys.cancelPending(purposes[role], trx);
        if (id) cancelled[role] = id;
      }
      if (Object.keys(cancelled).length === 0) throw new NoOnlineRotationError();
      await this.audit.record(
        {
          organizationId: org,
          actor: auditActor(actor),
          action: 'update.online_rotation_cancelled',
          target: { type: 'tuf_repository', id: org },
          sourceIp: actor.sourceIp,
          details: { signingKeys: cancelled },
        },
        trx,
      );
      return { organizationId: org, cancelled: Object.keys(cancelled) as OnlineRole[] };
    });
  }
}

const toJson = (metadata: { toJSON(): object }) => metadata.toJSON() as Record<string, unknown>;

function checkRoles(roles: readonly string[]): OnlineRole[] {
  const wanted = [...new Set(roles)];
  const unknown = wanted.filter((r) => !(ONLINE_ROLES as readonly string[]).includes(r));
  if (wanted.length === 0 || unknown.length > 0)
    throw new ValidationError(
      `roles must be one or more of ${ONLINE_ROLES.join(', ')}${unknown.length ? `, not ${unknown.join(', ')}` : ''}`,
      { field: 'roles' },
    );
  return ONLINE_ROLES.filter((r) => wanted.includes(r));
}
