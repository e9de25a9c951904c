/**
 * The image repository as the device sees it: a tuf-js Updater over mutual TLS whose trust starts
 * from the root provisioned into the state directory at setup (never fetched unauthenticated on
 * first use). tuf-js does the TUF client workflow (root chain, timestamp, snapshot, targets,
 * delegations; expiry, rollback, mix-and-match); its failures become the agent's error codes. It
 * also says which role signed a target, so the agent can require the device's own product line.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tufMetadataPath, tufTargetsPath } from '@bulwark/protocol';
import { MetadataKind, type Metadata, type TargetFile, type Targets } from '@tufjs/models';
import { CryptoError, RepositoryError as ModelRepositoryError, ValueError as ModelValueError } from '@tufjs/models/dist/error.js';
import { Updater } from 'tuf-js';
import { DownloadLengthMismatchError, ExpiredMetadataError, RepositoryError, RuntimeError, ValueError } from 'tuf-js/dist/error.js';
import { MetadataExpiredError, MetadataInvalidError } from './errors.js';
import { MtlsFetcher, type TlsIdentity } from './https.js';

export interface ImageRepositoryOptions {
  /** The platform's HTTPS origin, e.g. `https://updates.example.com:8443`. */
  baseUrl: string;
  organizationId: string;
  /** Where tuf-js keeps the trusted metadata (`root.json` must be provisioned there first). */
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

/** The part of tuf-js's (private) TrustedMetadataStore the agent reads. */
interface TrustedRoles {
  targets: Metadata<Targets> | undefined;
  getRole(name: string): Metadata<Targets> | undefined;
}

export class ImageRepository {
  private readonly updater: Updater;
  private readonly fetcher: MtlsFetcher;

  constructor(options: ImageRepositoryOptions) {
    if (!existsSync(join(options.metadataDir, 'root.json'))) {
      throw new MetadataInvalidError(`No trusted image repository root in ${options.metadataDir}: provision one at setup (bulwark-agent setup --root)`);
    }
    this.fetcher = new MtlsFetcher(options.tls, options.timeoutMs);
    const base = options.baseUrl.replace(/\/+$/, '');
    this.updater = new Updater({
      metadataDir: options.metadataDir,
      metadataBaseUrl: `${base}${tufMetadataPath(options.organizationId)}`,
      targetBaseUrl: `${base}${tufTargetsPath(options.organizationId)}`,
      fetcher: this.fetcher,
    });
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
    const trusted = (this.updater as unknown as { trustedSet?: Partial<TrustedRoles> }).trustedSet;
    if (typeof trusted?.getRole !== 'function' || !trusted.targets) {
      throw new MetadataInvalidError('Image repository: cannot tell which role signed the target (tuf-js keeps its trusted metadata elsewhere than 5.0 did)');
    }
    const roles = [MetadataKind.Targets as string, ...Object.keys(trusted.targets.signed.delegations?.roles ?? {})];
    return roles.find((role) => trusted.getRole!(role)?.signed.targets[file.path] === file) ?? null;
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
