/**
 * The director (Uptane): per-device TUF targets metadata signed by the organization's online
 * director key (`director:<org>`), naming zero or one image, the one the device's rollout assigns
 * it, with `custom` = { deviceId, hardwareId, rolloutId } so a device refuses metadata meant for
 * another. The signed document is stored per device: its version only ever increases, and it is
 * re-signed only when what it names changes or it has passed half its lifetime, so devices
 * polling it cost a lookup, not a signature.
 */
import { Metadata, Signature, TargetFile, Targets } from '@tufjs/models';
import type { DirectorTargetCustom, RolloutDeviceState } from '@bulwark/protocol';
import type { Clock } from '../clock.js';
import type { SigningKey, SigningKeys } from '../keys/signing-keys.js';
import type { DirectorTargetsTable as DirectorTargetsRow, RolloutsTable } from '../storage/rollout-tables.js';
import { DirectorStore } from './director-store.js';
import type { TufRepository } from './repository.js';
import { tufKeyOf } from './tuf/keys.js';
import type { Executor } from '../storage/executor.js';

/** What the director needs to know of a device. */
export interface DirectorDevice {
  id: string;
  organizationId: string;
  /** `attributes.hardwareId`, else the product's hardware revision; null: the device is never named an image. */
  hardwareId: string | null;
}

/** The image a device is to install, and the rollout that says so. */
export interface DirectorAssignment {
  rolloutId: string;
  targetName: string;
  sha256: string;
  length: number;
}

export interface SignedDirectorTargets {
  metadata: Record<string, unknown>;
  version: number;
  signedAt: number;
  expiresAt: number;
}

/** The device's latest rollout as the director reads it, with that rollout's release. */
export interface LatestRollout {
  rolloutId: string;
  status: RolloutsTable['status'];
  state: RolloutDeviceState;
  offeredAt: number | null;
  targetName: string;
  sha256: string;
  length: number;
  /** The hardware IDs the release's signed metadata lists. */
  hardwareIds: string[];
}

export interface DirectorState {
  device: DirectorDevice;
  latest: LatestRollout | null;
  /** The metadata last signed for the device. */
  stored: DirectorTargetsRow | null;
}

/**
 * The image the device's latest rollout assigns it, if that rollout still says so: offered and
 * running, paused or completed; halted only for a device that has started; aborted only for one
 * that succeeded. Never an image whose signed hardware list lacks the device's hardware ID.
 */
export function assignmentOf(device: DirectorDevice, latest: LatestRollout | null): DirectorAssignment | null {
  if (!device.hardwareId || !latest || latest.offeredAt === null) return null;
  const named =
    latest.status === 'running' || latest.status === 'paused' || latest.status === 'completed'
      ? true
      : latest.status === 'halted'
        ? latest.state !== 'pending'
        : latest.state === 'succeeded';
  if (!named || !latest.hardwareIds.includes(device.hardwareId)) return null;
  return { rolloutId: latest.rolloutId, targetName: latest.targetName, sha256: latest.sha256, length: latest.length };
}

/** The TUF specification version the metadata declares (tuf-js checks the major). */
const TUF_SPEC_VERSION = '1.0.31';

/** TUF's date form: ISO 8601 in UTC without fractional seconds. */
function tufDate(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class Director {
  private readonly keyIds = new Map<string, string>();
  private readonly store: DirectorStore;

  constructor(
    readonly db: Executor,
    readonly signingKeys: SigningKeys,
    readonly repository: TufRepository,
    readonly clock: Clock,
    readonly options: { expirySeconds: number },
  ) {
    this.store = new DirectorStore(db);
  }

  /** The organization's director public key (what the director root must list). */
  async key(organizationId: string): Promise<SigningKey> {
    return this.signingKeys.current(`director:${organizationId}`);
  }

  /** Signs one device's targets metadata (no storage): the director's hot path, also what the bench measures. */
  async signFor(device: DirectorDevice, assignment: DirectorAssignment | null, version = 1): Promise<SignedDirectorTargets> {
    const key = await this.key(device.organizationId);
    const keyID = this.keyIdOf(key);
    const signedAt = this.clock.now();
    // Whole seconds, as the document states it, so the stored expiry and the signed one agree.
    const expiresAt = Math.floor((signedAt + this.options.expirySeconds * 1000) / 1000) * 1000;
    const targets: Record<string, TargetFile> = {};
    if (assignment && device.hardwareId) {
      const custom: DirectorTargetCustom = { deviceId: device.id, hardwareId: device.hardwareId, rolloutId: assignment.rolloutId };
      targets[assignment.targetName] = new TargetFile({
        path: assignment.targetName,
        length: assignment.length,
        hashes: { sha256: assignment.sha256 },
        unrecognizedFields: { custom: { ...custom } },
      });
    }
    const metadata = new Metadata(new Targets({ version, specVersion: TUF_SPEC_VERSION, expires: tufDate(expiresAt), targets }));
    const signer = keyID;
    metadata.sign((data) => new Signature({ keyID: signer, sig: Buffer.from(key.sign(data), 'base64').toString('hex') }));
    return { metadata: metadata.toJSON() as Record<string, unknown>, version, signedAt, expiresAt };
  }

  private keyIdOf(key: SigningKey): string {
    let keyID = this.keyIds.get(key.id);
    if (!keyID) {
      keyID = tufKeyOf(key.publicKey).keyID;
      this.keyIds.set(key.id, keyID);
    }
    return keyID;
  }

  /**
   * What the director knows of a device, in one round trip: its hardware ID, its latest rollout
   * (with that rollout's release), and the metadata last signed for it. Null when the device does
   * not exist in the organization.
   */
  async stateOf(organizationId: string, deviceId: string): Promise<DirectorState | null> {
    const row = await this.store.stateRow(organizationId, deviceId);
    if (!row) return null;
    let fromAttributes: unknown;
    try {
      fromAttributes = (JSON.parse(row.attributes) as Record<string, unknown>).hardwareId;
    } catch {
      fromAttributes = undefined;
    }
    const hardwareId = typeof fromAttributes === 'string' && fromAttributes.length > 0 ? fromAttributes : row.hardware_revision || null;
    const latest: LatestRollout | null =
      row.rollout_id === null || row.rollout_status === null || row.state === null || row.target_name === null
        ? null
        : {
            rolloutId: row.rollout_id,
            status: row.rollout_status,
            state: row.state,
            offeredAt: row.offered_at === null ? null : Number(row.offered_at),
            targetName: row.target_name,
            sha256: row.sha256!,
            length: Number(row.length),
            hardwareIds: JSON.parse(row.hardware_ids!) as string[],
          };
    const stored: DirectorTargetsRow | null =
      row.stored_device_id === null
        ? null
        : {
            device_id: row.stored_device_id,
            organization_id: row.stored_organization_id!,
            version: Number(row.stored_version),
            metadata: row.stored_metadata!,
            target_name: row.stored_target_name,
            rollout_id: row.stored_rollout_id,
            hardware_id: row.stored_hardware_id,
            signed_at: Number(row.stored_signed_at),
            expires_at: Number(row.stored_expires_at),
          };
    return { device: { id: row.id, organizationId, hardwareId }, latest, stored };
  }

  /**
   * The device's current director targets metadata, re-signed (version + 1) when its content
   * changed or half its lifetime passed; `state` is what stateOf read (read again on a lost race).
   */
  async targetsFor(state: DirectorState): Promise<SignedDirectorTargets> {
    const { device } = state;
    const assignment = assignmentOf(device, state.latest);
    // Two requests of one device may race: the version check on write lets exactly one sign each version.
    for (let attempt = 0; attempt < 5; attempt++) {
      const stored = attempt === 0 ? state.stored : ((await this.store.storedTargets(device.id)) ?? null);
      const now = this.clock.now();
      if (stored && stored.organization_id === device.organizationId) {
        const same =
          stored.target_name === (assignment?.targetName ?? null) &&
          stored.rollout_id === (assignment?.rolloutId ?? null) &&
          stored.hardware_id === device.hardwareId;
        const fresh = now < Number(stored.signed_at) + (Number(stored.expires_at) - Number(stored.signed_at)) / 2;
        const metadata = JSON.parse(stored.metadata) as { signatures?: { keyid?: string }[] };
        // After an online key rotation the director root names a new key: what the old one signed is re-signed.
        const currentKey = metadata.signatures?.[0]?.keyid === this.keyIdOf(await this.key(device.organizationId));
        if (same && fresh && currentKey)
          return {
            metadata: metadata as Record<string, unknown>,
            version: stored.version,
            signedAt: Number(stored.signed_at),
            expiresAt: Number(stored.expires_at),
          };
      }
      const signed = await this.signFor(device, assignment, (stored?.version ?? 0) + 1);
      const row = {
        organization_id: device.organizationId,
        version: signed.version,
        metadata: JSON.stringify(signed.metadata),
        target_name: assignment?.targetName ?? null,
        rollout_id: assignment?.rolloutId ?? null,
        hardware_id: device.hardwareId,
        signed_at: signed.signedAt,
        expires_at: signed.expiresAt,
      };
      const written = stored
        ? await this.store.replaceTargets(device.id, stored.version, row)
        : await this.store.insertTargets({ device_id: device.id, ...row });
      if (written) return signed;
    }
    throw new Error(`director metadata of device ${device.id} kept changing while being signed`);
  }
}
