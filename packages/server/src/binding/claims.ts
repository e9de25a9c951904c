/**
 * Claiming a device (docs/binding.md): operators issue each device a one-time claim code (shown
 * once, stored hashed); a consumer claims with the code while the device's claim window is open,
 * which only a button press on the device opens (reported over MQTT on `binding/presence`). A
 * code alone never binds. Failed claims are counted per account and per source address (shared
 * by every node through the database) and lock claiming out for a while; every refusal is audited
 * with its code.
 */
import { randomBytes, verify, X509Certificate } from 'node:crypto';
import { claimLabelLink, claimProofMessage, ErrorCodes, type ErrorCode } from '@bulwark/protocol';
import { requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import { iso, type Clock } from '../clock.js';
import type { DeviceIdentity } from '../devices/identity.js';
import type { DevicesService } from '../devices/service.js';
import { DeviceMessageRefusal, NotFoundError, ValidationError } from '../errors.js';
import type { PkiService } from '../pki/service.js';
import { isUniqueViolation } from '../storage/unique-violation.js';
import { sha256Hex } from '../tokens.js';
import { claimCodeHash, newClaimCode, normalizeClaimCode } from './claim-codes.js';
import { ClaimLockedError, ClaimRefusedError } from './errors.js';
import type { IssuedClaimCode, MyDeviceView } from './model.js';
import type { BindingStore, ClaimRow, FailureRow } from './store.js';

export interface ClaimLimits {
  presenceWindowSeconds: number;
  presenceReportsPerMinute: number;
  claimFailuresPerAccount: number;
  claimFailuresPerAddress: number;
  claimFailureWindowSeconds: number;
  claimLockoutSeconds: number;
}

/** Most devices one bulk request issues codes for. */
export const MAX_BULK_CODES = 500;
/** Devices whose presence rate is remembered at most (oldest windows are forgotten first). */
const MAX_PRESENCE_METERS = 100_000;

/** The device's signature over a claim challenge, relayed by the app. */
export interface PresenceProof {
  nonce: string;
  signature: string;
}

type Refusal = { code: ErrorCode; message: string; status: number; counts: boolean; deviceId: string | null };

export class ClaimService {
  /** Button presses per device in the current minute (promise 9: a device cannot flood the platform with them). */
  private readonly presenceMeters = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly store: BindingStore,
    private readonly devices: DevicesService,
    private readonly pki: PkiService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly limits: ClaimLimits,
    /** The platform's public URL from config, the default base of the label links (docs/binding.md#the-label). */
    private readonly labelBase: string,
  ) {}

  /**
   * Makes a new claim code for each device (replacing any earlier one, used or not) and returns
   * them with their label links (on `labelBase`, by default the configured public URL): the only
   * time they are shown. Audited per device, without the code.
   */
  async issueCodes(actor: Actor, deviceIds: string[], labelBase = this.labelBase): Promise<IssuedClaimCode[]> {
    requirePermission(actor, 'devices:write');
    const ids = [...new Set(deviceIds)];
    if (ids.length === 0 || ids.length > MAX_BULK_CODES)
      throw new ValidationError(`Give 1 to ${MAX_BULK_CODES} device IDs`, { field: 'deviceIds' });
    const devices = await this.devices.viewsOf(actor.organizationId, ids);
    const found = new Map(devices.map((d) => [d.id, d]));
    const missing = ids.find((id) => !found.has(id));
    if (missing) throw new NotFoundError('Device', { deviceId: missing });
    const now = this.clock.now();
    const issued: IssuedClaimCode[] = [];
    await this.store.db.transaction().execute(async (trx) => {
      for (const id of ids) {
        const device = found.get(id)!;
        // 80 random bits: no collision is expected; the unique index would refuse one (the request fails, nothing is issued).
        const code = newClaimCode();
        await this.store.ensureClaim(id, actor.organizationId, trx);
        await this.store.updateClaim(
          id,
          {
            code_hash: claimCodeHash(normalizeClaimCode(code)!),
            code_created_at: now,
            code_used_at: null,
            presence_until: null,
            nonce_hash: null,
            nonce_user_id: null,
            nonce_until: null,
          },
          trx,
        );
        issued.push({
          deviceId: id,
          serial: device.serial,
          productId: device.productId,
          code,
          link: claimLabelLink(labelBase, device.productId, code),
        });
        await this.audit.recordBy(actor, 'binding.claim_code_issued', { type: 'device', id }, undefined, trx);
      }
    });
    return issued;
  }

  /**
   * A button press on the device (MQTT `binding/presence`): opens its claim window for
   * `presenceWindowSeconds`. Refused past `presenceReportsPerMinute` per device.
   */
  async devicePresence(identity: DeviceIdentity): Promise<void> {
    const now = this.clock.now();
    const meter = this.presenceMeters.get(identity.deviceId);
    if (!meter || now - meter.start >= 60_000) {
      if (this.presenceMeters.size >= MAX_PRESENCE_METERS) this.prunePresenceMeters(now);
      this.presenceMeters.set(identity.deviceId, { start: now, count: 1 });
    } else if (++meter.count > this.limits.presenceReportsPerMinute) {
      throw new DeviceMessageRefusal(
        ErrorCodes.presenceRateLimited,
        `At most ${this.limits.presenceReportsPerMinute} presence reports a minute; the claim window is already open`,
      );
    }
    await this.store.ensureClaim(identity.deviceId, identity.organizationId);
    await this.store.updateClaim(identity.deviceId, { presence_until: now + this.limits.presenceWindowSeconds * 1000 });
  }

  /**
   * Binds the device whose code this is to the consumer as its owner, if the device's claim
   * window is open and nobody owns it. The code is spent and the window closed by the claim.
   */
  async claim(actor: Actor, input: string, proof?: PresenceProof): Promise<MyDeviceView> {
    const now = this.clock.now();
    await this.requireUnlocked(actor, now);
    const normalized = normalizeClaimCode(input);
    const signed = proof ? { nonce: proof.nonce, valid: await this.deviceSigned(actor, normalized, proof) } : null;
    const outcome = await this.bind(actor, normalized, now, signed);
    if ('code' in outcome) {
      await this.refused(actor, outcome);
      throw new ClaimRefusedError(outcome.code, outcome.message, outcome.status);
    }
    const [device] = await this.devices.viewsOf(actor.organizationId, [outcome.deviceId]);
    return {
      id: outcome.deviceId,
      serial: device!.serial,
      productId: device!.productId,
      status: device!.status,
      role: 'owner',
      label: null,
      since: iso(now),
    };
  }

  /**
   * The other presence proof: a nonce for the device to sign, valid for the claim window, for
   * this consumer only. The app relays it to the device over a local link and sends the signature
   * with the claim. The code must be good (refused and counted as a claim is otherwise).
   */
  async challenge(actor: Actor, input: string): Promise<{ nonce: string; expiresAt: string }> {
    const now = this.clock.now();
    await this.requireUnlocked(actor, now);
    const normalized = normalizeClaimCode(input);
    const row = normalized ? await this.store.claimByCode(actor.organizationId, claimCodeHash(normalized)) : undefined;
    const refusal = !row
      ? invalidCode()
      : row.code_used_at !== null
        ? usedCode(row.device_id)
        : (await this.store.owner(row.device_id))
          ? bound(row.device_id)
          : null;
    if (refusal || !row) {
      const why = refusal ?? invalidCode();
      await this.refused(actor, why);
      throw new ClaimRefusedError(why.code, why.message, why.status);
    }
    const nonce = randomBytes(32).toString('base64url');
    const until = now + this.limits.presenceWindowSeconds * 1000;
    await this.store.updateClaim(row.device_id, { nonce_hash: sha256Hex(nonce), nonce_user_id: actor.userId, nonce_until: until });
    return { nonce, expiresAt: iso(until) };
  }

  private async requireUnlocked(actor: Actor, now: number): Promise<void> {
    const subjects = [`user:${actor.userId}`, `ip:${actor.sourceIp}`];
    const locked = (await this.store.failures(subjects)).reduce((until, f) => Math.max(until, Number(f.locked_until ?? 0)), 0);
    if (locked > now) {
      const error = new ClaimLockedError(Math.ceil((locked - now) / 1000));
      await this.refused(actor, { code: error.code, message: error.message, status: 429, counts: false, deviceId: null });
      throw error;
    }
  }

  /** Whether the signature is the device's (a current, unrevoked certificate of the device whose code this is) over its challenge. */
  private async deviceSigned(actor: Actor, normalized: string | null, proof: PresenceProof): Promise<boolean> {
    const row = normalized ? await this.store.claimByCode(actor.organizationId, claimCodeHash(normalized)) : undefined;
    if (!row || proof.signature.length > 512) return false;
    const message = Buffer.from(claimProofMessage(row.device_id, proof.nonce), 'utf8');
    const signature = Buffer.from(proof.signature, 'base64');
    for (const pem of await this.pki.currentCertificates(actor.organizationId, row.device_id)) {
      try {
        if (verify('sha256', message, new X509Certificate(pem).publicKey, signature)) return true;
      } catch {
        // A malformed signature verifies against no key.
      }
    }
    return false;
  }

  /** The claim's transaction: binds, or says why not. Two consumers claiming at once: the one-owner index lets one through. */
  private async bind(
    actor: Actor,
    normalized: string | null,
    now: number,
    signed: { nonce: string; valid: boolean } | null,
  ): Promise<Refusal | { deviceId: string }> {
    try {
      return await this.bindOnce(actor, normalized, now, signed);
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      return refusal(ErrorCodes.deviceAlreadyBound, 'This device belongs to someone already', 409, false, null);
    }
  }

  private bindOnce(
    actor: Actor,
    normalized: string | null,
    now: number,
    signed: { nonce: string; valid: boolean } | null,
  ): Promise<Refusal | { deviceId: string }> {
    return this.store.db.transaction().execute(async (trx): Promise<Refusal | { deviceId: string }> => {
      const row = normalized ? await this.store.claimByCode(actor.organizationId, claimCodeHash(normalized), trx) : undefined;
      if (!row) return invalidCode();
      if (row.code_used_at !== null) return usedCode(row.device_id);
      if (await this.store.owner(row.device_id, trx)) return bound(row.device_id);
      const absent = signed ? this.challengeProblem(row, actor, signed, now) : this.buttonProblem(row, now);
      if (absent) return absent;
      await this.store.updateClaim(
        row.device_id,
        { code_used_at: now, presence_until: null, nonce_hash: null, nonce_user_id: null, nonce_until: null },
        trx,
      );
      await this.store.insertMember(
        {
          device_id: row.device_id,
          user_id: actor.userId,
          organization_id: actor.organizationId,
          role: 'owner',
          label: null,
          invited_by: null,
          since: now,
        },
        trx,
      );
      await this.audit.recordBy(
        actor,
        'binding.claimed',
        { type: 'device', id: row.device_id },
        { presence: signed ? 'signed_nonce' : 'button', ...(actor.app ? { clientId: actor.app.clientId } : {}) },
        trx,
      );
      return { deviceId: row.device_id };
    });
  }

  /** Why the button-press window does not stand, or null. */
  private buttonProblem(row: ClaimRow, now: number): Refusal | null {
    if (row.presence_until === null)
      return refusal(
        ErrorCodes.presenceRequired,
        'Press the button on the device to prove you are next to it, then claim within two minutes',
        409,
        false,
        row.device_id,
      );
    if (Number(row.presence_until) < now)
      return refusal(
        ErrorCodes.presenceExpired,
        'The claim window has closed: press the button on the device again',
        409,
        false,
        row.device_id,
      );
    return null;
  }

  /** Why the device's signature over this consumer's challenge does not stand, or null. */
  private challengeProblem(row: ClaimRow, actor: Actor, signed: { nonce: string; valid: boolean }, now: number): Refusal | null {
    if (row.nonce_hash !== sha256Hex(signed.nonce) || row.nonce_user_id !== actor.userId || !signed.valid)
      return refusal(
        ErrorCodes.presenceProofInvalid,
        "The device did not sign this claim's challenge: ask for a new challenge and have the device sign it",
        409,
        false,
        row.device_id,
      );
    if (Number(row.nonce_until) < now)
      return refusal(ErrorCodes.presenceExpired, 'The challenge has expired: ask for a new one', 409, false, row.device_id);
    return null;
  }

  /** Audits a refused claim and, for a wrong code, counts it against the account and the address. */
  private async refused(actor: Actor, refusal: Refusal): Promise<void> {
    const now = this.clock.now();
    await this.store.db.transaction().execute(async (trx) => {
      if (refusal.counts) {
        const windowMs = this.limits.claimFailureWindowSeconds * 1000;
        const existing = new Map(
          (await this.store.failures([`user:${actor.userId}`, `ip:${actor.sourceIp}`], trx)).map((f) => [f.subject, f]),
        );
        const limits: [string, number][] = [
          [`user:${actor.userId}`, this.limits.claimFailuresPerAccount],
          [`ip:${actor.sourceIp}`, this.limits.claimFailuresPerAddress],
        ];
        for (const [subject, max] of limits) {
          const prior = existing.get(subject);
          const fresh = !prior || now - Number(prior.window_started_at) >= windowMs;
          const row: FailureRow = {
            subject,
            failures: fresh ? 1 : Number(prior.failures) + 1,
            window_started_at: fresh ? now : Number(prior.window_started_at),
            locked_until: prior && Number(prior.locked_until ?? 0) > now ? Number(prior.locked_until) : null,
          };
          if (row.failures >= max) row.locked_until = now + this.limits.claimLockoutSeconds * 1000;
          await this.store.putFailure(row, trx);
        }
      }
      await this.audit.recordBy(actor, 'binding.claim_refused', { type: 'device', id: refusal.deviceId }, { code: refusal.code }, trx, {
        outcome: 'denied',
      });
    });
  }

  private prunePresenceMeters(now: number): void {
    for (const [id, meter] of this.presenceMeters) if (now - meter.start >= 60_000) this.presenceMeters.delete(id);
    // Still full of fresh windows: forget the oldest half (a device forgotten may press again, nothing more).
    if (this.presenceMeters.size >= MAX_PRESENCE_METERS)
      for (const id of [...this.presenceMeters.keys()].slice(0, MAX_PRESENCE_METERS / 2)) this.presenceMeters.delete(id);
  }
}

const invalidCode = () =>
  refusal(ErrorCodes.claimCodeInvalid, 'No device has this claim code: check the code printed on the device', 404, true, null);
const usedCode = (deviceId: string) =>
  refusal(ErrorCodes.claimCodeUsed, 'This claim code was used already; ask the seller for a new one', 409, true, deviceId);
const bound = (deviceId: string) =>
  refusal(
    ErrorCodes.deviceAlreadyBound,
    'This device belongs to someone already: its owner must release it, or support reset it',
    409,
    false,
    deviceId,
  );

function refusal(code: ErrorCode, message: string, status: number, counts: boolean, deviceId: string | null): Refusal {
  return { code, message, status, counts, deviceId };
}
