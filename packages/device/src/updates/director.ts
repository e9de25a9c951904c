/**
 * The director check (docs/updates.md "What the agent checks", step 1): the device's targets
 * metadata must carry the threshold of signatures of the director root's `targets` role, a
 * version not below the last one seen (equal only for the very same bytes) and at most
 * MAX_DIRECTOR_VERSION_STEP above it, an expiry in the future, and name this device. The director
 * root is pinned at setup and must itself be unexpired; newer ones are walked version by version as TUF walks a root chain
 * (each signed by the previous root's and its own threshold), and a root that changes the
 * `targets` keys forgets the last version seen (TUF 5.3.11, as for timestamp and snapshot), so a
 * device fast-forwarded by a stolen director key recovers by an offline root rotation alone.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DIRECTOR_TARGETS_PATH, directorRootPath, type DirectorTargetCustom, type UpdateMetadata } from '@bulwark/protocol';
import { Metadata, MetadataKind, type Root, type Targets } from '@tufjs/models';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { fsyncDir, readJson, writeDurably, writeJsonDurably } from './durable.js';
import { DirectorMismatchError, MetadataExpiredError, MetadataInvalidError } from './errors.js';
import { httpsGetBytes, type TlsIdentity } from './https.js';

const MAX_METADATA_BYTES = 512 * 1024;
/**
 * The server bumps a device's director version by one per signing (a change, or half the
 * expiry: two a day at the default), so a million is centuries of re-signing. A larger jump
 * above the last version seen (0 when none) is refused as a forged fast-forward.
 */
export const MAX_DIRECTOR_VERSION_STEP = 2 ** 20;
/** Director root versions walked in one check (tuf-js's maxRootRotations for the image repository is 256). */
const MAX_ROOT_ROTATIONS = 256;

/** The one image the director wants this device to run. */
export interface DirectorTarget {
  name: string;
  length: number;
  sha256: string;
  custom: DirectorTargetCustom;
}

export interface DirectorVerdict {
  version: number;
  /** Hash of the metadata bytes, to tell a replay of the same version from a forgery. */
  sha256: string;
  target: DirectorTarget | null;
}

export interface LastSeen {
  version: number;
  sha256: string;
}

export interface Clock {
  now(): number;
}

/** Verifies director targets metadata `bytes`; pure, so every rule is testable on its own. */
export function verifyDirectorTargets(
  bytes: Buffer,
  root: Metadata<Root>,
  lastSeen: LastSeen | null,
  deviceId: string,
  now: Date,
): DirectorVerdict {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const metadata = parseMetadata(bytes, MetadataKind.Targets, 'director targets');
  try {
    root.verifyDelegate('targets', metadata);
  } catch (error) {
    throw new MetadataInvalidError(
      `Director targets: not signed by the threshold of the director root's targets keys (${(error as Error).message})`,
    );
  }
  const signed = metadata.signed;
  if (lastSeen && signed.version < lastSeen.version) {
    throw new MetadataInvalidError(
      `Director targets version ${signed.version} is older than version ${lastSeen.version} already seen (a replay)`,
    );
  }
  if (lastSeen && signed.version === lastSeen.version && sha256 !== lastSeen.sha256) {
    throw new MetadataInvalidError(`Director targets version ${signed.version} differs from the version ${lastSeen.version} already seen`);
  }
  const floor = lastSeen?.version ?? 0;
  if (signed.version > floor + MAX_DIRECTOR_VERSION_STEP) {
    throw new MetadataInvalidError(
      `Director targets version ${signed.version} is more than 2^20 above the last version seen (${floor}): refused as a forged fast-forward`,
    );
  }
  if (signed.isExpired(now)) throw new MetadataExpiredError(`Director targets expired at ${signed.expires}`);
  return { version: signed.version, sha256, target: targetOf(signed, deviceId) };
}

function targetOf(signed: Targets, deviceId: string): DirectorTarget | null {
  const targets = Object.values(signed.targets);
  if (targets.length === 0) return null;
  if (targets.length > 1) throw new MetadataInvalidError(`Director targets name ${targets.length} images; a device runs exactly one`);
  const target = targets[0]!;
  const custom = target.custom as Partial<DirectorTargetCustom>;
  if (custom.deviceId !== deviceId) {
    throw new DirectorMismatchError(`Director targets are for device ${String(custom.deviceId)}, not ${deviceId}`, {
      deviceId: custom.deviceId,
    });
  }
  if (typeof custom.hardwareId !== 'string' || typeof custom.rolloutId !== 'string') {
    throw new MetadataInvalidError('Director target custom must carry string hardwareId and rolloutId');
  }
  const sha256 = target.hashes.sha256;
  if (!sha256) throw new MetadataInvalidError(`Director target ${target.path} has no sha256 hash`);
  return {
    name: target.path,
    length: target.length,
    sha256,
    custom: { deviceId, hardwareId: custom.hardwareId, rolloutId: custom.rolloutId },
  };
}

function parseMetadata<K extends MetadataKind.Root | MetadataKind.Targets>(
  bytes: Buffer,
  kind: K,
  what: string,
): K extends MetadataKind.Root ? Metadata<Root> : Metadata<Targets> {
  try {
    const json = JSON.parse(bytes.toString('utf8')) as Record<string, never>;
    return Metadata.fromJSON(kind as MetadataKind.Targets, json) as never;
  } catch (error) {
    throw new MetadataInvalidError(`The ${what} metadata is malformed: ${(error as Error).message}`);
  }
}

export interface DirectorClientOptions {
  baseUrl: string;
  tls: TlsIdentity;
  /** Holds `root.json` (provisioned at setup) and `last-seen.json`. */
  dir: string;
  deviceId: string;
  clock?: Clock;
  timeoutMs?: number;
}

/** Fetches and verifies this device's director metadata, persisting what it has seen. */
export class DirectorClient {
  private readonly base: string;
  private readonly clock: Clock;

  constructor(private readonly options: DirectorClientOptions) {
    if (!existsSync(join(options.dir, 'root.json'))) {
      throw new MetadataInvalidError(
        `No pinned director root in ${options.dir}: provision one at setup (bulwark-agent setup --director-root)`,
      );
    }
    this.base = options.baseUrl.replace(/\/+$/, '');
    this.clock = options.clock ?? { now: () => Date.now() };
  }

  root(): Metadata<Root> {
    return parseMetadata(readFileSync(join(this.options.dir, 'root.json')), MetadataKind.Root, 'pinned director root');
  }

  /**
   * Fetches the director targets, verifies them, and remembers their version. The director root
   * reached by the walk must be unexpired (TUF 5.3.10): an expired one means the offline keys have
   * not renewed it, so whatever it still trusts may be a frozen view.
   */
  async check(received?: UpdateMetadata['director']): Promise<DirectorVerdict> {
    await this.updateRoot(received);
    const root = this.root();
    const now = new Date(this.clock.now());
    if (root.signed.isExpired(now))
      throw new MetadataExpiredError(`Director root version ${root.signed.version} expired at ${root.signed.expires}`);
    const bytes = received
      ? receivedBytes(received.targets, 'director targets')
      : await httpsGetBytes(`${this.base}${DIRECTOR_TARGETS_PATH}`, this.options.tls, MAX_METADATA_BYTES, this.options.timeoutMs);
    const verdict = verifyDirectorTargets(bytes, root, readJson<LastSeen | null>(this.lastSeenPath, null), this.options.deviceId, now);
    writeJsonDurably(this.lastSeenPath, { version: verdict.version, sha256: verdict.sha256 } satisfies LastSeen);
    return verdict;
  }

  private get lastSeenPath(): string {
    return join(this.options.dir, 'last-seen.json');
  }

  /**
   * Walks the director root chain from the pinned version: each next version must be exactly
   * that, signed by the threshold of the root before it and of itself. One that changes the
   * targets keys forgets the last targets version seen before it is pinned (so a power cut in
   * between repeats the rotation, never keeps a forged version under the new keys). With the
   * check's one answer, its roots are walked first and a version past the latest it names ends the
   * walk without asking; a version it lacks is fetched alone. Each is verified the same way.
   */
  private async updateRoot(received?: UpdateMetadata['director']): Promise<void> {
    const receivedRoots = new Map<number, Buffer>();
    for (const text of received?.roots ?? []) {
      const bytes = receivedBytes(text, 'director root');
      receivedRoots.set(parseMetadata(bytes, MetadataKind.Root, 'director root').signed.version, bytes);
    }
    let trusted = this.root();
    for (let rotations = 0; rotations < MAX_ROOT_ROTATIONS; rotations++) {
      const version = trusted.signed.version + 1;
      let bytes = receivedRoots.get(version);
      if (!bytes && received && version > received.latestRoot) return;
      try {
        bytes ??= await httpsGetBytes(
          `${this.base}${directorRootPath(version)}`,
          this.options.tls,
          MAX_METADATA_BYTES,
          this.options.timeoutMs,
        );
      } catch (error) {
        if (error instanceof DownloadHTTPError && error.statusCode === 404) return;
        throw error;
      }
      const offered = parseMetadata(bytes, MetadataKind.Root, 'director root');
      if (offered.signed.version !== version) {
        throw new MetadataInvalidError(`Director root ${version} says it is version ${offered.signed.version}`);
      }
      try {
        trusted.verifyDelegate('root', offered);
        offered.verifyDelegate('root', offered);
      } catch (error) {
        throw new MetadataInvalidError(
          `Director root ${version} is not signed by the previous and its own root keys (${(error as Error).message})`,
        );
      }
      if (targetsKeysOf(offered) !== targetsKeysOf(trusted) && existsSync(this.lastSeenPath)) {
        rmSync(this.lastSeenPath);
        fsyncDir(this.options.dir);
      }
      writeDurably(join(this.options.dir, 'root.json'), bytes);
      trusted = offered;
    }
  }
}

/** A file of the check's one answer as bytes, within the size a fetch of it alone may have. */
function receivedBytes(text: string, what: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > MAX_METADATA_BYTES) throw new MetadataInvalidError(`The ${what} metadata exceeds ${MAX_METADATA_BYTES} bytes`);
  return bytes;
}

/** The key IDs of a root's targets role, as one comparable string. */
function targetsKeysOf(root: Metadata<Root>): string {
  return [...(root.signed.roles[MetadataKind.Targets]?.keyIDs ?? [])].sort().join(',');
}
