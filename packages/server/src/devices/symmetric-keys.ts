/**
 * Symmetric-key devices, for constrained devices without TLS client certificates. A device holds a
 * 32-byte key, issued to it individually or derived from an enrollment group's key as Azure DPS
 * does (HMAC-SHA256(groupKey, registrationId)), and proves itself with short-lived SAS tokens
 * (sas.ts). Keys are sealed under the master key, one row per version; rotation invalidates the
 * previous key at once or after a grace period; issuing or rotating one from a session needs a
 * recent step-up. `authenticate` is the broker's hot path: one
 * indexed read (the device's valid keys joined to the device), AES-GCM opens and an HMAC, no
 * argon2. It writes no audit entry (a flood of bad connects must not flood the log): its caller
 * logs the stable reason. Issue, rotation, groups and registrations are audited.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCodes } from '@bulwark/protocol';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditEvent, AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../errors.js';
import type { KeyCustody } from '../keys/custody.js';
import type { DeviceSymmetricKeysTable, EnrollmentGroupsTable } from '../storage/schema.js';
import { isUniqueViolation } from '../storage/unique-violation.js';
import { newId } from '../tokens.js';
import { RepeatSampler } from '../audit/repeat-sampler.js';
import type { EnrollmentPolicyService } from './enrollment-policy.js';
import { ChildNotEnrollableError, DeviceNotEnrollableError, RegistrationRefusedError } from './errors.js';
import { DeviceAuthenticationError, type DeviceIdentity } from './identity.js';
import { SERIAL, selfRegisteredDevice } from './model.js';
import {
  deriveDeviceKey,
  deviceResource,
  parseToken,
  registrationResource,
  SasFormatError,
  signatureMatches,
  type SasToken,
} from './sas.js';
import type { DeviceRow, DevicesStore } from './store.js';
import { requireCredentialStepUp, type StepUpCheck } from './step-up.js';
import type { SymmetricKeyStore } from './symmetric-key-store.js';
import type { Executor } from '../storage/executor.js';

export { createToken } from './sas.js';

/** Longest grace period a rotated-out key may keep. */
export const MAX_GRACE_SECONDS = 7 * 24 * 60 * 60;
/** A device clock this far ahead still gets a full-lifetime token accepted. */
const CLOCK_SKEW_SECONDS = 60;

export const keyContext = (deviceId: string, version: number) => `device:${deviceId}:symmetric-key:${version}`;
export const groupContext = (groupId: string) => `enrollment-group:${groupId}`;

export interface IssuedKey {
  deviceId: string;
  version: number;
  /** The key, base64; given out once and never again. */
  key: string;
  /** Whether an earlier key was replaced. */
  rotated: boolean;
  /** Until when the replaced key still authenticates (null: not at all). */
  previousKeyValidUntil: Date | null;
}

export interface EnrollmentGroupView {
  id: string;
  name: string;
  productId: string;
  createdAt: string;
  disabledAt: string | null;
}

export interface SymmetricKeyOptions {
  /** Longest a token may still be valid when it is presented (config auth.deviceTokenMaxLifetimeSeconds). */
  maxTokenLifetimeSeconds: number;
}

type GroupRow = EnrollmentGroupsTable;

function groupView(row: GroupRow): EnrollmentGroupView {
  return {
    id: row.id,
    name: row.name,
    productId: row.product_id,
    createdAt: new Date(row.created_at).toISOString(),
    disabledAt: row.disabled_at === null ? null : new Date(row.disabled_at).toISOString(),
  };
}

export class SymmetricKeyService {
  constructor(
    private readonly store: SymmetricKeyStore,
    private readonly devices: DevicesStore,
    private readonly box: KeyCustody,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly requireStepUp: StepUpCheck,
    private readonly options: SymmetricKeyOptions,
    /** The enrollment groups' allow-lists (issue 18); null: none checked. */
    private readonly policies: EnrollmentPolicyService | null = null,
  ) {}

  private readonly refusals = new RepeatSampler();

  /**
   * Issues a device's key, or rotates it: a new version, returned once. The previous key stops
   * working at once, or after `graceSeconds` (at most seven days) so devices in the field can be
   * given the new key first. The key lets its holder act as the device: a session needs a recent
   * step-up (step-up.ts), asked once the device is found, so another organization's device ID
   * answers 404 whatever the session.
   */
  async issueKey(actor: Actor, deviceId: string, options: { graceSeconds?: number } = {}): Promise<IssuedKey> {
    requirePermission(actor, 'devices:write');
    const graceSeconds = options.graceSeconds ?? 0;
    if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_GRACE_SECONDS) {
      throw new ValidationError(`graceSeconds must be a whole number from 0 to ${MAX_GRACE_SECONDS} (seven days)`, {
        field: 'graceSeconds',
      });
    }
    const key = randomBytes(32);
    try {
      return await this.store.db.transaction().execute(async (trx) => {
        const device = await this.devices.deviceInOrganization(actor.organizationId, deviceId, trx);
        if (!device) throw new NotFoundError('Device', { deviceId });
        if (device.status === 'disabled' || device.status === 'retired') throw new DeviceNotEnrollableError(deviceId, device.status);
        if (device.gateway_id !== null) throw new ChildNotEnrollableError(device.id, device.gateway_id);
        requireCredentialStepUp(actor, this.requireStepUp);
        const installed = await this.installKey(device, key, null, graceSeconds * 1000, trx);
        // Like a certificate, a key is the device's credential: a pending device becomes active.
        await this.activateIfPending(device, auditActor(actor), actor.sourceIp, 'symmetric key issued', this.clock.now(), trx);
        await this.audit.recordBy(
          actor,
          installed.rotated ? 'device.symmetric_key_rotated' : 'device.symmetric_key_issued',
          { type: 'device', id: device.id },
          { serial: device.serial, version: installed.version, ...(installed.rotated ? { graceSeconds } : {}) },
          trx,
        );
        return { deviceId: device.id, key: key.toString('base64'), ...installed };
      });
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ConflictError('The key of this device was changed at the same moment; try again', { deviceId });
      throw error;
    }
  }

  private async activateIfPending(
    device: { id: string; serial: string; organization_id: string; status: string },
    actor: AuditEvent['actor'],
    sourceIp: string | undefined,
    reason: string,
    now: number,
    trx: Executor,
  ): Promise<void> {
    if (device.status !== 'pending') return;
    await this.devices.activatePending(device.id, now, trx);
    await this.audit.record(
      {
        organizationId: device.organization_id,
        actor,
        action: 'device.status_changed',
        target: { type: 'device', id: device.id },
        ...(sourceIp ? { sourceIp } : {}),
        details: { serial: device.serial, from: 'pending', to: 'active', reason },
      },
      trx,
    );
  }

  /**
   * The identity a token proves for `deviceId`, or DeviceAuthenticationError with the reason.
   * Checks the token's form, resource and lifetime before touching the database, and the
   * device's status only after the signature, so nobody without a key learns a status.
   */
  async authenticate(deviceId: string, token: string): Promise<DeviceIdentity> {
    const sas = this.checkedToken(token, deviceResource(deviceId));
    const now = this.clock.now();
    const rows = await this.store.validKeysWithDevice(deviceId, now);
    if (rows.length === 0) throw new DeviceAuthenticationError('unknown_device');
    const match = rows.find((row) => signatureMatches(sas, this.box.open(row.sealed_key, keyContext(deviceId, row.version))));
    if (!match) throw new DeviceAuthenticationError('bad_signature');
    if (match.status === 'disabled') throw new DeviceAuthenticationError('device_disabled');
    if (match.status === 'retired') throw new DeviceAuthenticationError('device_retired');
    return {
      organizationId: match.organization_id,
      deviceId,
      serial: match.serial,
      productId: match.product_id,
      status: match.status,
      credential: { type: 'symmetric_key', keyVersion: match.version, tokenExpiresAt: sas.expiresAt * 1000 },
    };
  }

  /**
   * Creates an enrollment group of a product; its key is returned once (base64). The group key
   * derives the key of any serial of the product, so it is a device credential like the others:
   * a session needs a recent step-up.
   */
  async createGroup(actor: Actor, input: { name: string; productId: string }): Promise<EnrollmentGroupView & { key: string }> {
    requirePermission(actor, 'devices:write');
    requireCredentialStepUp(actor, this.requireStepUp);
    const name = input.name.trim();
    if (!name || name.length > 100) throw new ValidationError('name must be 1-100 characters', { field: 'name' });
    if (!(await this.devices.listProducts(actor.organizationId)).some((p) => p.id === input.productId)) {
      throw new ValidationError('productId must name a product of this organization', { field: 'productId' });
    }
    const key = randomBytes(32);
    const id = newId();
    const row: GroupRow = {
      id,
      organization_id: actor.organizationId,
      name,
      product_id: input.productId,
      sealed_key: this.box.seal(key, groupContext(id)),
      created_at: this.clock.now(),
      disabled_at: null,
    };
    const exists = () =>
      new ConflictError(
        `An enrollment group named "${name}" already exists in this organization`,
        { field: 'name', name },
        ErrorCodes.enrollmentGroupExists,
      );
    try {
      await this.store.db.transaction().execute(async (trx) => {
        if (await this.store.groupNameTaken(actor.organizationId, name, trx)) throw exists();
        await this.store.insertGroup(row, trx);
        await this.audit.recordBy(
          actor,
          'enrollment_group.created',
          { type: 'enrollment_group', id },
          { name, productId: input.productId },
          trx,
        );
      });
    } catch (error) {
      throw isUniqueViolation(error) ? exists() : error;
    }
    return { ...groupView(row), key: key.toString('base64') };
  }

  async listGroups(actor: Actor): Promise<EnrollmentGroupView[]> {
    requirePermission(actor, 'devices:read');
    return (await this.store.groups(actor.organizationId)).map(groupView);
  }

  /**
   * Stops registrations through the group. Devices that registered keep their derived keys
   * (rotate or disable them to cut them off: the group key derives every one of them).
   */
  async disableGroup(actor: Actor, groupId: string): Promise<EnrollmentGroupView> {
    requirePermission(actor, 'devices:write');
    return this.store.db.transaction().execute(async (trx) => {
      const group = await this.store.groupInOrganization(actor.organizationId, groupId, trx);
      if (!group) throw new NotFoundError('Enrollment group', { groupId });
      const now = this.clock.now();
      if (!(await this.store.disableGroup(group.id, now, trx)))
        throw new ConflictError(`Enrollment group "${group.name}" is already disabled`, { groupId }, ErrorCodes.enrollmentGroupDisabled);
      await this.audit.recordBy(actor, 'enrollment_group.disabled', { type: 'enrollment_group', id: group.id }, { name: group.name }, trx);
      return groupView({ ...group, disabled_at: now });
    });
  }

  /**
   * A device holding only its derived key registers itself: the token must be signed with
   * HMAC-SHA256(groupKey, registrationId) over `registrations/<groupId>/<registrationId>`. The
   * device with that serial in the group's organization (created active in the group's product
   * if absent; else it must be pending or active, of that product) gets the derived key as its
   * current key. Another organization's device of the same serial is never looked at.
   */
  async registerWithGroup(
    input: { groupId: string; registrationId: string },
    token: string,
    sourceIp: string,
  ): Promise<{ deviceId: string; created: boolean }> {
    const sas = this.checkedToken(token, registrationResource(input.groupId, input.registrationId));
    const group = await this.store.group(input.groupId);
    if (!group) throw new DeviceAuthenticationError('unknown_issuer');
    const actor: AuditEvent['actor'] = { type: 'anonymous', id: `enrollment_group:${group.id}` };
    // Audited once per group, reason, address and minute, with the count of those left unrecorded:
    // anyone who knows a group ID could otherwise fill the log with refused registrations.
    const refuse = async (reason: string, error: Error): Promise<never> => {
      const { record, unrecorded } = this.refusals.admit(`${group.id}\n${reason}\n${sourceIp}`, this.clock.now());
      if (record)
        await this.audit.record({
          organizationId: group.organization_id,
          actor,
          action: 'device.registration_refused',
          target: { type: 'enrollment_group', id: group.id },
          sourceIp,
          outcome: 'failure',
          details: { registrationId: input.registrationId, reason, ...(unrecorded > 0 ? { refusalsNotRecorded: unrecorded } : {}) },
        });
      throw error;
    };
    const derived = deriveDeviceKey(this.box.open(group.sealed_key, groupContext(group.id)), input.registrationId);
    if (!signatureMatches(sas, derived)) return refuse('bad_signature', new DeviceAuthenticationError('bad_signature'));
    if (group.disabled_at !== null)
      return refuse(
        'group_disabled',
        new ForbiddenError('This enrollment group is disabled: no device registers through it', ErrorCodes.enrollmentGroupDisabled),
      );
    if (!SERIAL.test(input.registrationId))
      throw new ValidationError('registrationId is the device serial: 1-128 printable ASCII characters without spaces', {
        field: 'registrationId',
      });
    try {
      // The group's allow-list (enrollment-policy.ts): address, serial; the quota counts new devices only.
      const quota = this.policies ? await this.policies.admit('enrollment_group', group.id, input.registrationId, sourceIp) : null;
      try {
        return await this.register(group, input.registrationId, derived, actor, sourceIp, quota);
      } catch (error) {
        // Two first registrations of one serial at once: the loser finds the winner's device.
        if (isUniqueViolation(error)) return await this.register(group, input.registrationId, derived, actor, sourceIp, quota);
        throw error;
      }
    } catch (error) {
      if (error instanceof ConflictError || error instanceof RegistrationRefusedError) return refuse(error.code, error);
      throw error;
    }
  }

  private register(
    group: GroupRow,
    serial: string,
    key: Buffer,
    actor: AuditEvent['actor'],
    sourceIp: string,
    quota: number | null,
  ): Promise<{ deviceId: string; created: boolean }> {
    const organizationId = group.organization_id;
    return this.store.db.transaction().execute(async (trx) => {
      const now = this.clock.now();
      let device = await this.devices.deviceBySerial(organizationId, serial, trx);
      const created = !device;
      if (!device) {
        device = selfRegisteredDevice(
          { id: newId(), organization_id: organizationId, serial, product_id: group.product_id, status: 'active' },
          now,
        );
        if (quota !== null && !(await this.policies!.countRegistration('enrollment_group', group.id, quota, trx)))
          throw new RegistrationRefusedError(
            ErrorCodes.jitQuotaExceeded,
            `The enrollment group registers at most ${quota} new devices a day; try again tomorrow`,
            429,
          );
        await this.devices.insertDevices([device], trx);
        await this.audit.record(
          {
            organizationId,
            actor,
            action: 'device.registered',
            target: { type: 'device', id: device.id },
            sourceIp,
            details: { serial, productId: group.product_id, enrollmentGroupId: group.id },
          },
          trx,
        );
      } else {
        if (device.product_id !== group.product_id)
          throw new ConflictError(
            `Device ${serial} belongs to another product than the enrollment group's`,
            { serial },
            'device.product_mismatch',
          );
        if (device.status !== 'pending' && device.status !== 'active')
          throw new ConflictError(
            `Device ${serial} is ${device.status}: only a pending or active device registers through an enrollment group`,
            { serial, status: device.status },
            'device.not_enrollable',
          );
        if (device.gateway_id !== null) throw new ChildNotEnrollableError(device.id, device.gateway_id);
        if (await this.holdsKey(device.id, group.id, key, trx)) return { deviceId: device.id, created: false };
        await this.activateIfPending(device, actor, sourceIp, 'registered', now, trx);
      }
      const installed = await this.installKey(device, key, group.id, 0, trx);
      await this.audit.record(
        {
          organizationId,
          actor,
          action: 'device.symmetric_key_registered',
          target: { type: 'device', id: device.id },
          sourceIp,
          details: { serial, enrollmentGroupId: group.id, version: installed.version, created },
        },
        trx,
      );
      return { deviceId: device.id, created };
    });
  }

  /** Whether the device's current key is already this group-derived key (a repeated registration). */
  private async holdsKey(deviceId: string, groupId: string, key: Buffer, db: Executor): Promise<boolean> {
    const current = await this.store.currentKey(deviceId, db);
    if (!current || current.enrollment_group_id !== groupId) return false;
    const held = this.box.open(current.sealed_key, keyContext(deviceId, current.version));
    return held.length === key.length && timingSafeEqual(held, key);
  }

  /**
   * Stores `key` as the device's new current version. Keys whose grace has ended are deleted;
   * without a grace period every older key is deleted, else older keys stay valid at most
   * `graceMs` more. The caller holds the transaction.
   */
  private async installKey(
    device: DeviceRow,
    key: Buffer,
    groupId: string | null,
    graceMs: number,
    trx: Executor,
  ): Promise<{ version: number; rotated: boolean; previousKeyValidUntil: Date | null }> {
    const now = this.clock.now();
    const existing = await this.store.keyVersions(device.id, trx);
    const version = Math.max(0, ...existing.map((k) => k.version)) + 1;
    const rotated = existing.some((k) => k.valid_until === null);
    const until = now + graceMs;
    if (graceMs === 0) {
      await this.store.deleteKeys(device.id, trx);
    } else {
      await this.store.deleteExpiredKeys(device.id, now, trx);
      await this.store.endValidity(device.id, until, trx);
    }
    const row: DeviceSymmetricKeysTable = {
      id: `${device.id}:${version}`,
      device_id: device.id,
      organization_id: device.organization_id,
      version,
      sealed_key: this.box.seal(key, keyContext(device.id, version)),
      enrollment_group_id: groupId,
      created_at: now,
      valid_until: null,
    };
    await this.store.insertKey(row, trx);
    return { version, rotated, previousKeyValidUntil: rotated && graceMs > 0 ? new Date(until) : null };
  }

  /** The parsed token, if it is well formed, names `resource`, has not expired and does not live too long. */
  private checkedToken(token: string, resource: string): SasToken {
    let sas: SasToken;
    try {
      sas = parseToken(token);
    } catch (error) {
      if (error instanceof SasFormatError) throw new DeviceAuthenticationError('malformed');
      throw error;
    }
    // A token for another device or registration is refused before any key is read.
    if (sas.resource !== resource) throw new DeviceAuthenticationError('malformed');
    const now = this.clock.now();
    if (sas.expiresAt * 1000 <= now) throw new DeviceAuthenticationError('expired');
    if (sas.expiresAt * 1000 - now > (this.options.maxTokenLifetimeSeconds + CLOCK_SKEW_SECONDS) * 1000)
      throw new DeviceAuthenticationError('lifetime_too_long');
    return sas;
  }
}
