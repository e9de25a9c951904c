/**
 * The director check (docs/updates.md "What the agent checks", step 2): the device's targets
 * metadata must carry the threshold of signatures of the director root's `targets` role, a
 * version not below the last one seen (equal only for the very same bytes), an expiry in the
 * future, and name this device. The director root is pinned at setup; a newer one is accepted
 * only as TUF accepts a root rotation (version + 1, signed by the old root's and its own threshold).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIRECTOR_ROOT_PATH, DIRECTOR_TARGETS_PATH, type DirectorTargetCustom } from '@bulwark/protocol';
import { Metadata, MetadataKind, type Root, type Targets } from '@tufjs/models';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { readJson, writeDurably, writeJsonDurably } from './durable.js';
import { DirectorMismatchError, MetadataExpiredError, MetadataInvalidError } from './errors.js';
import { httpsGetBytes, type TlsIdentity } from './https.js';

const MAX_METADATA_BYTES = 512 * 1024;

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
export function verifyDirectorTargets(bytes: Buffer, root: Metadata<Root>, lastSeen: LastSeen | null, deviceId: string, now: Date): DirectorVerdict {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const metadata = parseMetadata(bytes, MetadataKind.Targets, 'director targets');
  try {
    root.verifyDelegate('targets', metadata);
  } catch (error) {
    throw new MetadataInvalidError(`Director targets: not signed by the threshold of the director root's targets keys (${(error as Error).message})`);
  }
  const signed = metadata.signed;
  if (lastSeen && signed.version < lastSeen.version) {
    throw new MetadataInvalidError(`Director targets version ${signed.version} is older than version ${lastSeen.version} already seen (a replay)`);
  }
  if (lastSeen && signed.version === lastSeen.version && sha256 !== lastSeen.sha256) {
    throw new MetadataInvalidError(`Director targets version ${signed.version} differs from the version ${lastSeen.version} already seen`);
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
    throw new DirectorMismatchError(`Director targets are for device ${String(custom.deviceId)}, not ${deviceId}`, { deviceId: custom.deviceId });
  }
  if (typeof custom.hardwareId !== 'string' || typeof custom.rolloutId !== 'string') {
    throw new MetadataInvalidError('Director target custom must carry string hardwareId and rolloutId');
  }
  const sha256 = target.hashes.sha256;
  if (!sha256) throw new MetadataInvalidError(`Director target ${target.path} has no sha256 hash`);
  return { name: target.path, length: target.length, sha256, custom: { deviceId, hardwareId: custom.hardwareId, rolloutId: custom.rolloutId } };
}

function parseMetadata<K extends MetadataKind.Root | MetadataKind.Targets>(bytes: Buffer, kind: K, what: string): K extends MetadataKind.Root ? Metadata<Root> : Metadata<Targets> {
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
      throw new MetadataInvalidError(`No pinned director root in ${options.dir}: provision one at setup (bulwark-agent setup --director-root)`);
    }
    this.base = options.baseUrl.replace(/\/+$/, '');
    this.clock = options.clock ?? { now: () => Date.now() };
  }

  root(): Metadata<Root> {
    return parseMetadata(readFileSync(join(this.options.dir, 'root.json')), MetadataKind.Root, 'pinned director root');
  }

  /** Fetches the director targets, verifies them, and remembers their version. */
  async check(): Promise<DirectorVerdict> {
    await this.rotateRoot();
    const bytes = await httpsGetBytes(`${this.base}${DIRECTOR_TARGETS_PATH}`, this.options.tls, MAX_METADATA_BYTES, this.options.timeoutMs);
    const lastPath = join(this.options.dir, 'last-seen.json');
    const verdict = verifyDirectorTargets(bytes, this.root(), readJson<LastSeen | null>(lastPath, null), this.options.deviceId, new Date(this.clock.now()));
    writeJsonDurably(lastPath, { version: verdict.version, sha256: verdict.sha256 } satisfies LastSeen);
    return verdict;
  }

  /** Accepts the director's root when it is exactly the next version, signed by the old and new thresholds. */
  private async rotateRoot(): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = await httpsGetBytes(`${this.base}${DIRECTOR_ROOT_PATH}`, this.options.tls, MAX_METADATA_BYTES, this.options.timeoutMs);
    } catch (error) {
      if (error instanceof DownloadHTTPError && error.statusCode === 404) return;
      throw error;
    }
    const pinned = this.root();
    const offered = parseMetadata(bytes, MetadataKind.Root, 'director root');
    if (offered.signed.version <= pinned.signed.version) return;
    if (offered.signed.version !== pinned.signed.version + 1) {
      throw new MetadataInvalidError(`Director root version ${offered.signed.version} does not follow the pinned version ${pinned.signed.version}`);
    }
    try {
      pinned.verifyDelegate('root', offered);
      offered.verifyDelegate('root', offered);
    } catch (error) {
      throw new MetadataInvalidError(`Director root ${offered.signed.version} is not signed by the previous and its own root keys (${(error as Error).message})`);
    }
    writeDurably(join(this.options.dir, 'root.json'), bytes);
  }
}
