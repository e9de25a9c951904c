/**
 * The latest root, director root and timestamp of each organization, kept in this process for a
 * second: every device's refresh fetches `timestamp.json` and probes for the next root and director
 * root version, and without this each of those is a round trip for a row that changes a few times
 * a day. This process forgets an organization's entries whenever it writes that organization's
 * metadata (inside the writing transaction and again once it committed), so its own changes are
 * served at once; a change another worker or node wrote is seen here once the entry is older than
 * LATEST_METADATA_TTL_MS. Absence is kept as well (a repository before its ceremony).
 */
import { BoundedCache } from '../../bounded-cache.js';
import type { MetadataRow } from './metadata-store.js';

/** How long a change written by another worker or node may go unseen by this one. */
export const LATEST_METADATA_TTL_MS = 1_000;

/** The roles whose latest version devices ask for on every refresh. */
export const LATEST_CACHED_ROLES: readonly string[] = ['root', 'director-root', 'timestamp'];

export class LatestMetadataCache {
  private readonly entries = new BoundedCache<{ row: MetadataRow | null; readAt: number }>(3_000);
  /** Bumped by every forget: a read that started before it does not store what it read (it may predate the write). */
  private generation = 0;

  constructor(
    /** Monotonic milliseconds (real time: the lag is between processes, not on the platform clock). */
    private readonly now: () => number = () => performance.now(),
    private readonly ttlMs = LATEST_METADATA_TTL_MS,
  ) {}

  /** The latest row of the role, from this process if it read it less than the TTL ago, else through `read`. */
  async latest(organizationId: string, role: string, read: () => Promise<MetadataRow | undefined>): Promise<MetadataRow | null> {
    const key = `${organizationId}\0${role}`;
    const entry = this.entries.get(key);
    if (entry && this.now() - entry.readAt < this.ttlMs) return entry.row;
    const generation = this.generation;
    const readAt = this.now();
    const row = (await read()) ?? null;
    if (generation === this.generation) this.entries.set(key, { row, readAt });
    return row;
  }

  /** The organization's metadata changed: read it again on the next request. */
  forget(organizationId: string): void {
    this.generation++;
    for (const role of LATEST_CACHED_ROLES) this.entries.delete(`${organizationId}\0${role}`);
  }
}
