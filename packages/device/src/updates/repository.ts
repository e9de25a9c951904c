/**
 * The image repository as the device sees it: a tuf-js Updater over mutual TLS whose trust starts
 * from the root provisioned into the state directory at setup (never fetched unauthenticated on
 * first use). tuf-js does the TUF client workflow (root chain, timestamp, snapshot, targets,
 * delegations; expiry, rollback, mix-and-match) within the limits pinned in TUF_LIMITS; its
 * failures become the agent's error codes. One check is added to tuf-js's: a delegated role it
 * already trusts is verified again against the delegator of the path being walked (tuf-js would
 * reuse it on the strength of whichever delegator it was first reached through). It also says
 * which role signed a target, so the agent can require the device's own product line. The TUF
 * conformance client (tuf-client.ts) runs this same class over plain HTTP.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { tufMetadataPath, tufTargetsPath } from '@bulwark/protocol';
import { MetadataKind, type Metadata, type TargetFile, type Targets } from '@tufjs/models';
import { CryptoError, RepositoryError as ModelRepositoryError, ValueError as ModelValueError } from '@tufjs/models/dist/error.js';
import { Updater, type Config } from 'tuf-js';
import { DownloadLengthMismatchError, ExpiredMetadataError, RepositoryError, RuntimeError, ValueError } from 'tuf-js/dist/error.js';
import { MetadataExpiredError, MetadataInvalidError } from './errors.js';
import { mutualTls, TufFetcher, type HttpGet, type TlsIdentity } from './https.js';

/**
 * The updater's limits, pinned here rather than left to tuf-js's defaults (a tuf-js upgrade must
 * not move them silently): root versions walked per refresh, delegated roles visited per lookup,
 * and the most bytes read for metadata whose length no signed metadata gives.
 */
export const TUF_LIMITS: Partial<Config> = {
  maxRootRotations: 256,
  maxDelegations: 32,
  rootMaxLength: 512_000,
  timestampMaxLength: 16_384,
  snapshotMaxLength: 2_000_000,
  targetsMaxLength: 5_000_000,
  prefixTargetsWithHash: true,
};

/** A metadata file's TUF name: `timestamp.json` or `<version>.<role>.json`. */
const METADATA_FILE = /^(timestamp|[1-9][0-9]{0,9}\.[A-Za-z0-9_-]{1,80})\.json$/;

export interface ImageRepositoryOptions {
  /** Where the repository's metadata is served (`…/metadata/`). */
  metadataBaseUrl: string;
  /** Where its targets are served (`…/targets/`); needed only to download. */
  targetBaseUrl?: string;
  /** Where tuf-js keeps the trusted metadata (`root.json` must be provisioned there first). */
  metadataDir: string;
  /** The GET every request goes through (`mutualTls(identity)` on a device). */
  get: HttpGet;
  timeoutMs?: number;
}

/** The platform's image repository of one organization, as the agent reaches it. */
export interface PlatformRepositoryOptions {
  /** The platform's HTTPS origin, e.g. `https://updates.example.com:8443`. */
  baseUrl: string;
  organizationId: string;
  metadataDir: string;
  tls: TlsIdentity;
  timeoutMs?: number;
}

/** An image target as the repository signs it. */
export interface SignedTarget {
  file: TargetFile;
  /** The role whose metadata signs it: `product-<productId>` for a product line's image. */
  role: string | null;
}

/** The parts of tuf-js 5.0's (private) Updater internals the repository reads or wraps. */
interface UpdaterInternals {
  trustedSet?: Partial<TrustedRoles>;
  loadTargets?: (role: string, parentRole: string) => Promise<Metadata<Targets> | undefined>;
}

/** The part of tuf-js's (private) TrustedMetadataStore the agent reads. */
interface TrustedRoles {
  root: Metadata<never>;
  targets: Metadata<Targets> | undefined;
  getRole(name: string): Metadata<Targets> | undefined;
}

export class ImageRepository {
  private readonly updater: Updater;
  private readonly fetcher: TufFetcher;
  private readonly trusted: TrustedRoles;

  constructor(private readonly options: ImageRepositoryOptions) {
    if (!existsSync(join(options.metadataDir, 'root.json'))) {
      throw new MetadataInvalidError(
        `No trusted image repository root in ${options.metadataDir}: provision one at setup (bulwark-agent setup --root)`,
      );
    }
    this.fetcher = new TufFetcher(options.get, options.timeoutMs);
    this.updater = new Updater({
      metadataDir: options.metadataDir,
      metadataBaseUrl: options.metadataBaseUrl,
      targetBaseUrl: options.targetBaseUrl,
      fetcher: this.fetcher,
      config: TUF_LIMITS,
    });
    const internals = this.updater as unknown as UpdaterInternals;
    const trusted = internals.trustedSet;
    const loadTargets = internals.loadTargets;
    if (typeof trusted?.getRole !== 'function' || typeof loadTargets !== 'function') {
      throw new MetadataInvalidError(
        'Image repository: tuf-js keeps its trusted metadata elsewhere than 5.0 did; refusing to run without the delegator check',
      );
    }
    this.trusted = trusted as TrustedRoles;
    internals.loadTargets = async (role, parentRole) => {
      this.verifyCachedDelegate(role, parentRole);
      return loadTargets.call(this.updater, role, parentRole);
    };
  }

  /** The organization's repository on the platform, over mutual TLS with the device's identity. */
  static ofPlatform(options: PlatformRepositoryOptions): ImageRepository {
    const base = options.baseUrl.replace(/\/+$/, '');
    return new ImageRepository({
      metadataBaseUrl: `${base}${tufMetadataPath(options.organizationId)}`,
      targetBaseUrl: `${base}${tufTargetsPath(options.organizationId)}`,
      metadataDir: options.metadataDir,
      get: mutualTls(options.tls),
      timeoutMs: options.timeoutMs,
    });
  }

  /**
   * A delegated role already trusted in this session was verified against the delegator it was
   * first reached through; reached now through `parentRole`, it must carry that delegator's
   * threshold of signatures too, or a role name delegated by two parents would inherit the
   * authority of the one that trusts it more (TUF 5.6.7; tuf-js 5.0 skips this).
   */
  private verifyCachedDelegate(role: string, parentRole: string): void {
    const cached = this.trusted.getRole(role);
    if (!cached || role === MetadataKind.Targets) return;
    const delegator = this.trusted.getRole(parentRole);
    if (!delegator) throw new MetadataInvalidError(`Image repository: ${role} is reached through ${parentRole}, which is not trusted`);
    try {
      delegator.verifyDelegate(role, cached);
    } catch (error) {
      throw new MetadataInvalidError(
        `Image repository: ${role} is not signed by the threshold of ${parentRole}'s keys for it (${(error as Error).message})`,
      );
    }
  }

  /**
   * The versions of the root it trusts and of the snapshot it holds (none before its first
   * refresh): what an update check tells the platform (UPDATE_METADATA_PATH). The snapshot is only
   * a hint; the refresh verifies it against the timestamp before any use.
   */
  trustedVersions(): { root: number; snapshot?: number } {
    const root = this.trusted.root.signed as { version: number };
    let snapshot: number | undefined;
    try {
      const version = (
        JSON.parse(readFileSync(join(this.options.metadataDir, 'snapshot.json'), 'utf8')) as { signed?: { version?: unknown } }
      ).signed?.version;
      if (Number.isSafeInteger(version) && (version as number) > 0) snapshot = version as number;
    } catch {
      // No snapshot yet (or an unreadable one, which the refresh replaces).
    }
    return snapshot === undefined ? { root: root.version } : { root: root.version, snapshot };
  }

  /**
   * The image repository's files from the update check's one answer, by TUF name, and the latest
   * root version it named: the next refresh reads them instead of fetching them, and verifies
   * them the same way. A name that is not a metadata file's is ignored.
   */
  preload(files: Record<string, string>, latestRoot: number): void {
    const base = new URL(this.options.metadataBaseUrl.replace(/\/*$/, '/')).toString();
    const received = new Map<string, Buffer>();
    for (const [name, text] of Object.entries(files))
      if (METADATA_FILE.test(name)) received.set(`${base}${name}`, Buffer.from(text, 'utf8'));
    this.fetcher.preload(received, base, latestRoot);
  }

  /**
   * Where the target's bytes are served: under its hash's prefix when the trusted root says the
   * repository keeps consistent snapshots (the platform's does), at its bare path otherwise.
   */
  targetUrl(file: TargetFile, hashAlgorithm = Object.keys(file.hashes)[0]): string {
    if (!this.options.targetBaseUrl) throw new TypeError('The image repository was opened without a target base URL');
    const base = this.options.targetBaseUrl.replace(/\/+$/, '');
    const consistent = (this.trusted.root.signed as { consistentSnapshot?: boolean }).consistentSnapshot === true;
    const dir = posix.dirname(file.path);
    const name = consistent && hashAlgorithm ? `${file.hashes[hashAlgorithm]}.${posix.basename(file.path)}` : posix.basename(file.path);
    return `${base}/${dir === '.' ? '' : `${dir}/`}${name}`;
  }

  /**
   * Refreshes root, timestamp, snapshot and top-level targets (TUF 5.3 to 5.6): every check runs
   * it, so an expired or replayed repository is noticed even when nothing is to be installed.
   */
  async refresh(): Promise<void> {
    await this.verdictOf(() => this.updater.refresh());
  }

  /**
   * The signed target `name`, walking the delegations (each role verified and unexpired), with the
   * role whose metadata signs it; undefined when none signs it.
   */
  async target(name: string): Promise<SignedTarget | undefined> {
    const file = await this.verdictOf(() => this.updater.getTargetInfo(name));
    return file && { file, role: this.roleSigning(file) };
  }

  /**
   * Which role's trusted metadata holds `file` (the very object tuf-js's walk returned): the
   * top-level `targets` or one it delegates to; null for anything deeper. tuf-js keeps its trusted
   * set private, so this fails closed if a tuf-js version no longer has it where 5.0 does.
   */
  private roleSigning(file: TargetFile): string | null {
    const top = this.trusted.targets;
    if (!top) throw new MetadataInvalidError('Image repository: cannot tell which role signed the target (no trusted top-level targets)');
    const roles = [MetadataKind.Targets as string, ...Object.keys(top.signed.delegations?.roles ?? {})];
    return roles.find((role) => this.trusted.getRole(role)?.signed.targets[file.path] === file) ?? null;
  }

  private async verdictOf<T>(work: () => Promise<T>): Promise<T> {
    this.fetcher.failed = [];
    try {
      return await work();
    } catch (error) {
      throw asUpdateError(error, this.fetcher.failed);
    }
  }
}

/**
 * tuf-js's verdicts become the agent's codes; network failures pass through (retried later).
 * tuf-js reports a delegated targets failure as a RuntimeError wrapping the cause as text, so
 * it counts as a verdict only when no transfer failed (a root's 404 is the normal end of the chain).
 */
function asUpdateError(error: unknown, failedUrls: string[]): unknown {
  if (error instanceof ExpiredMetadataError || (error instanceof RuntimeError && /ExpiredMetadataError|is expired/.test(error.message))) {
    return new MetadataExpiredError(`Image repository: ${(error as Error).message}`);
  }
  const invalid = [RepositoryError, ValueError, DownloadLengthMismatchError, ModelRepositoryError, ModelValueError, CryptoError];
  if (invalid.some((kind) => error instanceof kind)) return new MetadataInvalidError(`Image repository: ${(error as Error).message}`);
  const transferFailed = failedUrls.some((url) => !url.endsWith('.root.json'));
  if (error instanceof RuntimeError && !transferFailed) return new MetadataInvalidError(`Image repository: ${error.message}`);
  return error;
}
