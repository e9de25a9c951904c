/**
 * The TUF image repository of each organization: root and targets signed offline and uploaded by
 * operators, product lines' metadata uploaded with releases, snapshot and timestamp signed here by
 * online keys after each change and refreshed before they expire. Every accepted upload is checked
 * (tuf/accept.ts), stored as a new version, re-signed for and audited in one transaction.
 */
import type { Key, Metadata, Root, Targets } from '@tufjs/models';
import { BUNDLED_ROOTS, productRoleOf, type UpdateMetadataQuery } from '@bulwark/protocol';
import { auditActor, requirePermission, type Actor } from '../accounts/roles.js';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import { BoundedCache } from '../bounded-cache.js';
import { BulwarkError } from '../errors.js';
import type { SigningKeys } from '../keys/signing-keys.js';
import { ConcurrentChangeError, MetadataRejectedError, RepositoryNotReadyError } from './errors.js';
import { LatestMetadataCache } from './tuf/latest-cache.js';
import { checkDirectorRoot, checkImageRoot, checkProductMetadata, checkRoot, checkTopLevelTargets } from './tuf/accept.js';
import { tufKeyOf } from './tuf/keys.js';
import * as store from './tuf/metadata-store.js';

import type { OnlineKeys } from './tuf/offline.js';
import { activates, ONLINE_ROLES, type OnlineRole } from './tuf/online-rotation.js';
import { signSnapshot, signTimestamp } from './tuf/online.js';
import { parseRoot, parseTargets } from './tuf/verify.js';
import type { Executor } from '../storage/executor.js';

const DIRECTOR_ROOT = 'director-root';
const PRODUCT_ROLE = /^product-[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const VERSIONED_FILE = /^([1-9][0-9]{0,9})\.(root|snapshot|targets|product-[A-Za-z0-9][A-Za-z0-9_-]{0,63})\.json$/;

export interface RoleStatus {
  role: string;
  version: number;
  expires: string;
  updatedAt: string;
}

export interface RepositoryStatus {
  organizationId: string;
  /** Root, top-level targets, snapshot and timestamp are all in place: devices can refresh. */
  ready: boolean;
  roles: RoleStatus[];
  directorRoot: RoleStatus | null;
}

/** A public metadata file: its JSON, and whether it may be cached (versioned files never change). */
export interface MetadataFile {
  json: string;
  immutable: boolean;
}

/** The public metadata of one update check (UPDATE_METADATA_PATH), but the device's director targets. */
export interface CheckMetadata {
  /** The director roots after the one the device pinned, oldest first, as uploaded. */
  directorRoots: string[];
  directorLatestRoot: number;
  latestRoot: number;
  /** Image repository files by TUF name, each as `metadataFile` answers it. */
  files: Record<string, string>;
}

/** The staged (pending) online keys of an organization, by role: the signing key's row ID and its TUF key. */
export type StagedKeys = Partial<Record<OnlineRole, { id: string; key: Key }>>;

export const onlinePurposes = (organizationId: string): Record<OnlineRole, string> => ({
  snapshot: `tuf-snapshot:${organizationId}`,
  timestamp: `tuf-timestamp:${organizationId}`,
  director: `director:${organizationId}`,
});

export class TufRepository {
  constructor(
    readonly db: Executor,
    readonly signingKeys: SigningKeys,
    readonly audit: AuditService,
    readonly clock: Clock,
    readonly options: { timestampExpirySeconds: number; snapshotExpirySeconds: number },
  ) {}

  /**
   * Versioned metadata never changes once written (the table's key is organization, role and
   * version, and rows are only ever inserted), so what devices fetch by version is kept here, up
   * to 256 files and 16 MiB. Only files found are kept: a version published later is read then.
   */
  private readonly versions = new BoundedCache<string>(256, 16 * 1024 * 1024);

  /** The versions each timestamp and snapshot names (`checkMetadata`), by organization, role and version. */
  private readonly metas = new BoundedCache<Record<string, number>>(64);

  /** The latest root, director root and timestamp, served without a round trip (tuf/latest-cache.ts). */
  private readonly latest = new LatestMetadataCache();

  private async byVersion(organizationId: string, role: string, version: number): Promise<string | null> {
    const key = `${organizationId}\0${role}\0${version}`;
    const cached = this.versions.get(key);
    if (cached !== undefined) return cached;
    // A device's refresh probes for the root after the one it trusts: past the latest, answered without a round trip.
    if (role === 'root' || role === DIRECTOR_ROOT) {
      const newest = await this.latestRow(organizationId, role);
      if (!newest || version > newest.version) return null;
    }
    const row = await store.byVersion(this.db, organizationId, role, version);
    if (!row) return null;
    this.versions.set(key, row.json, row.json.length);
    return row.json;
  }

  private latestRow(organizationId: string, role: string): Promise<store.MetadataRow | null> {
    return this.latest.latest(organizationId, role, () => store.latest(this.db, organizationId, role));
  }

  /**
   * The organization's metadata was written: what this process kept of its latest versions is read
   * again. Every write here calls it; a test that writes the table directly (an attacker with the
   * database) calls it to skip the second another process would wait.
   */
  metadataChanged(organizationId: string): void {
    this.latest.forget(organizationId);
  }

  /**
   * The public halves of the organization's online keys, created on first use. Called before any
   * transaction that signs: a key created inside a transaction that then rolls back would stay cached.
   */
  async onlineKeys(organizationId: string): Promise<OnlineKeys> {
    const purposes = onlinePurposes(organizationId);
    const [snapshot, timestamp, director] = [
      await this.signingKeys.current(purposes.snapshot),
      await this.signingKeys.current(purposes.timestamp),
      await this.signingKeys.current(purposes.director),
    ];
    return {
      organizationId,
      snapshot: tufKeyOf(snapshot.publicKey),
      timestamp: tufKeyOf(timestamp.publicKey),
      director: tufKeyOf(director.publicKey),
    };
  }

  /** The keys staged by a pending online key rotation (updates/online-keys.ts), by role. */
  async stagedKeys(organizationId: string, db: Executor = this.db): Promise<StagedKeys> {
    const purposes = onlinePurposes(organizationId);
    const staged: StagedKeys = {};
    for (const role of ONLINE_ROLES) {
      const key = await this.signingKeys.pending(purposes[role], db);
      if (key) staged[role] = { id: key.id, key: tufKeyOf(key.publicKey) };
    }
    return staged;
  }

  /** The current image repository and director roots (parsed), or null before the ceremony. */
  async roots(
    organizationId: string,
    db: Executor = this.db,
  ): Promise<{ root: Metadata<Root> | null; directorRoot: Metadata<Root> | null }> {
    const directorRow = await store.latest(db, organizationId, DIRECTOR_ROOT);
    return {
      root: await this.currentRoot(db, organizationId),
      directorRoot: directorRow ? parseRoot(JSON.parse(directorRow.json), 'The stored director root') : null,
    };
  }

  async onlineKeysFor(actor: Actor): Promise<OnlineKeys> {
    requirePermission(actor, 'firmware:read');
    return this.onlineKeys(actor.organizationId);
  }

  /**
   * Accepts a new image repository root (first, or rotation by TUF 5.3.4) and/or director root,
   * then re-signs snapshot and timestamp with the online keys the new root names. A root that names
   * a pending rotation's staged key alone for its role switches that role to it in the same
   * transaction, retiring the key before (docs/updates.md, "Rotating the online keys").
   */
  async acceptRoot(actor: Actor, upload: { root?: unknown; directorRoot?: unknown }): Promise<RepositoryStatus> {
    requirePermission(actor, 'org:manage');
    if (upload.root === undefined && upload.directorRoot === undefined)
      throw new MetadataRejectedError('Send root, directorRoot, or both', { reason: 'malformed' });
    const org = actor.organizationId;
    const online = await this.onlineKeys(org);
    const staged = await this.stagedKeys(org);
    return this.audited(actor, 'update.root_accepted', async (trx) => {
      const now = this.clock.now();
      const details: Record<string, unknown> = {};
      const switching: OnlineRole[] = [];
      let imageRoot = await this.currentRoot(trx, org);
      if (upload.root !== undefined) {
        const next = parseRoot(upload.root, 'The root');
        checkRoot(next, imageRoot, now, 'The root');
        const expected = { snapshot: online.snapshot.keyID, timestamp: online.timestamp.keyID };
        for (const role of ['snapshot', 'timestamp'] as const) {
          if (imageRoot && activates(next, role, staged[role]?.key.keyID)) {
            expected[role] = staged[role]!.key.keyID;
            switching.push(role);
          }
        }
        checkImageRoot(next, expected);
        await this.store(trx, org, 'root', next, now);
        details.root = { version: next.signed.version, rotation: imageRoot !== null };
        imageRoot = next;
      }
      if (upload.directorRoot !== undefined) {
        if (!imageRoot) throw new RepositoryNotReadyError('Upload the image repository root first (or with the director root)');
        const currentRow = await store.latest(trx, org, DIRECTOR_ROOT);
        const next = parseRoot(upload.directorRoot, 'The director root');
        checkRoot(next, currentRow ? parseRoot(JSON.parse(currentRow.json), 'The stored director root') : null, now, 'The director root');
        const switchesDirector = currentRow !== undefined && activates(next, 'targets', staged.director?.key.keyID);
        checkDirectorRoot(next, imageRoot, switchesDirector ? staged.director!.key.keyID : online.director.keyID);
        if (switchesDirector) switching.push('director');
        await this.store(trx, org, DIRECTOR_ROOT, next, now);
        details.directorRoot = { version: next.signed.version };
      }
      if (switching.length > 0) details.onlineKeysActivated = await this.activate(actor, trx, org, switching, staged, online);
      if (upload.root !== undefined) await this.signOnline(trx, org, now, true);
      return details;
    });
  }

  /** Makes the staged keys of the roles current, retiring the ones before; one audit entry per role. */
  private async activate(
    actor: Actor,
    trx: Executor,
    org: string,
    roles: OnlineRole[],
    staged: StagedKeys,
    online: OnlineKeys,
  ): Promise<Record<string, { keyId: string; retiredKeyId: string }>> {
    const purposes = onlinePurposes(org);
    const activated: Record<string, { keyId: string; retiredKeyId: string }> = {};
    for (const role of roles) {
      const next = staged[role]!;
      const retiredSigningKeys = await this.signingKeys.activatePending(purposes[role], next.id, trx);
      if (!retiredSigningKeys) throw new ConcurrentChangeError(`The pending ${role} key (the rotation was cancelled meanwhile)`);
      activated[role] = { keyId: next.key.keyID, retiredKeyId: online[role].keyID };
      await this.audit.record(
        {
          organizationId: org,
          actor: auditActor(actor),
          action: 'update.online_key_activated',
          target: { type: 'signing_key', id: next.id },
          sourceIp: actor.sourceIp,
          details: { role, keyId: next.key.keyID, retiredKeyId: online[role].keyID, retiredSigningKeys },
        },
        trx,
      );
    }
    return activated;
  }

  /** Accepts new top-level targets (the product lines' delegations), signed by the root's targets keys. */
  async acceptTargets(actor: Actor, json: unknown): Promise<RepositoryStatus> {
    requirePermission(actor, 'org:manage');
    const org = actor.organizationId;
    await this.onlineKeys(org);
    return this.audited(actor, 'update.targets_accepted', async (trx) => {
      const now = this.clock.now();
      const root = await this.currentRoot(trx, org);
      if (!root) throw new RepositoryNotReadyError('Upload the root first: POST /api/v1/updates/repository/root');
      const next = parseTargets(json, 'The top-level targets');
      checkTopLevelTargets(next, root, await this.currentTargets(trx, org, 'targets'), now);
      await this.store(trx, org, 'targets', next, now);
      await this.signOnline(trx, org, now, true);
      return { version: next.signed.version, delegations: Object.keys(next.signed.delegations?.roles ?? {}) };
    });
  }

  /**
   * Accepts a product line's new delegated metadata inside the caller's transaction (a release),
   * re-signs snapshot and timestamp, and returns the verified metadata. The caller must have called
   * `onlineKeys` before opening the transaction.
   */
  async acceptProductMetadata(actor: Actor, productId: string, json: unknown, trx: Executor): Promise<Metadata<Targets>> {
    const org = actor.organizationId;
    const now = this.clock.now();
    const root = await this.currentRoot(trx, org);
    const topLevel = await this.currentTargets(trx, org, 'targets');
    if (!root || !topLevel)
      throw new RepositoryNotReadyError(
        'The repository needs its root and top-level targets before releases: run the ceremony (docs/updates.md)',
      );
    try {
      checkTopLevelTargets(topLevel, root, null, Number.NEGATIVE_INFINITY);
    } catch {
      throw new RepositoryNotReadyError(
        "The top-level targets are not signed by the current root's targets keys (the root was rotated): upload top-level targets signed by the new keys first",
      );
    }
    if (Date.parse(topLevel.signed.expires) <= now)
      throw new RepositoryNotReadyError(
        `The top-level targets expired at ${topLevel.signed.expires}: devices would refuse every image; upload re-signed top-level targets first`,
      );
    const role = productRoleOf(productId);
    const next = parseTargets(json, `The ${role} metadata`);
    checkProductMetadata(next, productId, topLevel, await this.currentTargets(trx, org, role), now);
    await this.store(trx, org, role, next, now);
    await this.signOnline(trx, org, now, true);
    await this.audit.record(
      {
        organizationId: org,
        actor: auditActor(actor),
        action: 'update.product_metadata_accepted',
        target: { type: 'tuf_role', id: role },
        sourceIp: actor.sourceIp,
        details: { version: next.signed.version, targets: Object.keys(next.signed.targets) },
      },
      trx,
    );
    return next;
  }

  async status(actor: Actor): Promise<RepositoryStatus> {
    requirePermission(actor, 'firmware:read');
    return this.statusOf(this.db, actor.organizationId);
  }

  /**
   * The organization's current director root (signed JSON as uploaded), or null before the ceremony.
   * Inside a transaction pass it as `db` (SQLite has one connection).
   */
  async directorRoot(organizationId: string, db: Executor = this.db): Promise<Record<string, unknown> | null> {
    const row =
      db === this.db ? await this.latestRow(organizationId, DIRECTOR_ROOT) : await store.latest(db, organizationId, DIRECTOR_ROOT);
    return row ? (JSON.parse(row.json) as Record<string, unknown>) : null;
  }

  /**
   * One stored version of the organization's director root, or null when that version was never
   * uploaded: a device pinned to an older root walks the chain version by version (TUF 5.3).
   */
  async directorRootVersion(organizationId: string, version: number, db: Executor = this.db): Promise<Record<string, unknown> | null> {
    const json =
      db === this.db
        ? await this.byVersion(organizationId, DIRECTOR_ROOT, version)
        : (await store.byVersion(db, organizationId, DIRECTOR_ROOT, version))?.json;
    return json ? (JSON.parse(json) as Record<string, unknown>) : null;
  }

  /**
   * A public metadata file by its TUF name: `<version>.root.json` (and `root.json`, the latest),
   * `timestamp.json`, `<version>.snapshot.json`, `<version>.targets.json`, `<version>.product-<id>.json`.
   */
  async metadataFile(organizationId: string, file: string): Promise<MetadataFile | null> {
    if (file === 'root.json' || file === 'timestamp.json') {
      const row = await this.latestRow(organizationId, file.slice(0, -'.json'.length));
      return row ? { json: row.json, immutable: false } : null;
    }
    const match = VERSIONED_FILE.exec(file);
    if (!match) return null;
    const json = await this.byVersion(organizationId, match[2]!, Number(match[1]));
    return json === null ? null : { json, immutable: true };
  }

  /**
   * What one update check reads of the organization's public metadata, for a device that trusts
   * `have`: the director and image roots after the ones it trusts (at most BUNDLED_ROOTS of each),
   * the timestamp, and unless the device holds the snapshot it names, that snapshot with the
   * top-level targets and the device's product line it names. Null before the director ceremony
   * (no director root). A file missing here (a repository not ready, a root too far ahead, a write
   * between two reads) is one the device fetches alone.
   */
  async checkMetadata(organizationId: string, have: UpdateMetadataQuery): Promise<CheckMetadata | null> {
    const directorLatest = await this.latestRow(organizationId, DIRECTOR_ROOT);
    if (!directorLatest) return null;
    const directorRoots = await this.rootsAfter(organizationId, DIRECTOR_ROOT, have.directorRoot, directorLatest.version);
    const latestRoot = (await this.latestRow(organizationId, 'root'))?.version ?? 0;
    const files: Record<string, string> = {};
    for (const [index, json] of (await this.rootsAfter(organizationId, 'root', have.root, latestRoot)).entries())
      files[`${have.root + index + 1}.root.json`] = json;
    const timestamp = await this.latestRow(organizationId, 'timestamp');
    if (timestamp) {
      files['timestamp.json'] = timestamp.json;
      const snapshot = this.metaOf(organizationId, 'timestamp', timestamp.version, timestamp.json)['snapshot.json'];
      if (snapshot !== undefined && snapshot !== have.snapshot) {
        await this.addFile(files, organizationId, 'snapshot', snapshot);
        const named = files[`${snapshot}.snapshot.json`];
        const roles = named === undefined ? {} : this.metaOf(organizationId, 'snapshot', snapshot, named);
        for (const role of ['targets', ...(have.product ? [productRoleOf(have.product)] : [])]) {
          const version = roles[`${role}.json`];
          if (version !== undefined) await this.addFile(files, organizationId, role, version);
        }
      }
    }
    return { directorRoots, directorLatestRoot: directorLatest.version, latestRoot, files };
  }

  /** The roots after version `after`, up to `latest` and at most BUNDLED_ROOTS of them; stops at the first missing. */
  private async rootsAfter(organizationId: string, role: string, after: number, latest: number): Promise<string[]> {
    const roots: string[] = [];
    for (let version = after + 1; version <= Math.min(latest, after + BUNDLED_ROOTS); version++) {
      const json = await this.byVersion(organizationId, role, version);
      if (json === null) break;
      roots.push(json);
    }
    return roots;
  }

  private async addFile(files: Record<string, string>, organizationId: string, role: string, version: number): Promise<void> {
    const json = await this.byVersion(organizationId, role, version);
    if (json !== null) files[`${version}.${role}.json`] = json;
  }

  /**
   * The versions a stored timestamp or snapshot names (its `signed.meta`, by file name), parsed once
   * per version: a version never changes once written, and every device's check reads the timestamp.
   */
  private metaOf(organizationId: string, role: 'timestamp' | 'snapshot', version: number, json: string): Record<string, number> {
    const key = `${organizationId}\0${role}\0${version}`;
    let meta = this.metas.get(key);
    if (!meta) {
      meta = metaVersions(json);
      this.metas.set(key, meta);
    }
    return meta;
  }

  /** Re-signs snapshot and timestamp metadata past half their lifetime, for every organization. */
  async refresh(): Promise<void> {
    const failures: unknown[] = [];
    for (const org of await store.organizationsWithTimestamp(this.db)) {
      try {
        await this.db.transaction().execute(async (trx) => {
          const now = this.clock.now();
          const halfGone = (row: store.MetadataRow | undefined) => !row || now >= row.created_at + (row.expires_at - row.created_at) / 2;
          const snapshotDue = halfGone(await store.latest(trx, org, 'snapshot'));
          if (snapshotDue || halfGone(await store.latest(trx, org, 'timestamp'))) await this.signOnline(trx, org, now, snapshotDue);
        });
        this.metadataChanged(org);
      } catch (error) {
        // Another node refreshed first: nothing to do. Anything else is reported after the other organizations.
        if (!(error instanceof BulwarkError && error.code === 'update.concurrent_change')) failures.push(error);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, `refreshing ${failures.length} organization(s) failed`);
  }

  /**
   * Writes a new timestamp (and, when asked or when none exists, a new snapshot of the current
   * targets versions). Nothing before the top-level targets exist: a snapshot without them is useless.
   */
  async signOnline(trx: Executor, org: string, now: number, newSnapshot: boolean): Promise<void> {
    const root = await this.currentRoot(trx, org);
    if (!root || !(await store.latest(trx, org, 'targets'))) return;
    const purposes = onlinePurposes(org);
    const snapshotKey = await this.signingKeys.current(purposes.snapshot, trx);
    const timestampKey = await this.signingKeys.current(purposes.timestamp, trx);
    checkImageRoot(root, { snapshot: tufKeyOf(snapshotKey.publicKey).keyID, timestamp: tufKeyOf(timestampKey.publicKey).keyID });

    let snapshot = await store.latest(trx, org, 'snapshot');
    if (newSnapshot || !snapshot) {
      const roles: Record<string, number> = {};
      for (const row of await store.latestOfEachRole(trx, org))
        if (row.role === 'targets' || PRODUCT_ROLE.test(row.role)) roles[row.role] = row.version;
      const signed = signSnapshot(snapshotKey, (snapshot?.version ?? 0) + 1, roles, now, this.options.snapshotExpirySeconds);
      snapshot = {
        organization_id: org,
        role: 'snapshot',
        version: signed.version,
        json: signed.json,
        expires_at: signed.expiresAt,
        created_at: now,
      };
      await store.insert(trx, snapshot);
    }
    const previous = await store.latest(trx, org, 'timestamp');
    const timestamp = signTimestamp(timestampKey, (previous?.version ?? 0) + 1, snapshot, now, this.options.timestampExpirySeconds);
    await store.insert(trx, {
      organization_id: org,
      role: 'timestamp',
      version: timestamp.version,
      json: timestamp.json,
      expires_at: timestamp.expiresAt,
      created_at: now,
    });
    // Forgotten now and again by the caller once its transaction committed: a read in between may still see the rows before.
    this.metadataChanged(org);
  }

  private async store(trx: Executor, org: string, role: string, metadata: Metadata<Root | Targets>, now: number): Promise<void> {
    await store.insert(trx, {
      organization_id: org,
      role,
      version: metadata.signed.version,
      json: JSON.stringify(metadata.toJSON()),
      expires_at: Date.parse(metadata.signed.expires),
      created_at: now,
    });
    this.metadataChanged(org);
  }

  private async currentRoot(db: Executor, org: string): Promise<Metadata<Root> | null> {
    const row = await store.latest(db, org, 'root');
    return row ? parseRoot(JSON.parse(row.json), 'The stored root') : null;
  }

  private async currentTargets(db: Executor, org: string, role: string): Promise<Metadata<Targets> | null> {
    const row = await store.latest(db, org, role);
    return row ? parseTargets(JSON.parse(row.json), `The stored ${role} metadata`) : null;
  }

  private async statusOf(db: Executor, org: string): Promise<RepositoryStatus> {
    const rows = await store.latestOfEachRole(db, org);
    const view = (row: store.MetadataRow): RoleStatus => ({
      role: row.role,
      version: row.version,
      expires: new Date(Number(row.expires_at)).toISOString(),
      updatedAt: new Date(Number(row.created_at)).toISOString(),
    });
    const roles = rows.filter((r) => r.role !== DIRECTOR_ROOT).map(view);
    const director = rows.find((r) => r.role === DIRECTOR_ROOT);
    const present = new Set(roles.map((r) => r.role));
    return {
      organizationId: org,
      ready: ['root', 'targets', 'snapshot', 'timestamp'].every((r) => present.has(r)),
      roles,
      directorRoot: director ? view(director) : null,
    };
  }

  /** Runs an operator upload in one transaction and audits it; a refusal is audited (denied) after the rollback. */
  private async audited(actor: Actor, action: string, fn: (trx: Executor) => Promise<Record<string, unknown>>): Promise<RepositoryStatus> {
    const org = actor.organizationId;
    const event = {
      organizationId: org,
      actor: auditActor(actor),
      action,
      target: { type: 'tuf_repository', id: org },
      sourceIp: actor.sourceIp,
    };
    try {
      const status = await this.db.transaction().execute(async (trx) => {
        const details = await fn(trx);
        await this.audit.record({ ...event, details }, trx);
        return this.statusOf(trx, org);
      });
      this.metadataChanged(org);
      return status;
    } catch (error) {
      if (error instanceof BulwarkError)
        await this.audit.record({ ...event, outcome: 'denied', details: { code: error.code, reason: error.message } });
      throw error;
    }
  }
}

/** The versions a stored timestamp or snapshot names (its `signed.meta`), by file name. */
function metaVersions(json: string): Record<string, number> {
  const meta = (JSON.parse(json) as { signed?: { meta?: Record<string, { version?: unknown }> } }).signed?.meta ?? {};
  const versions: Record<string, number> = {};
  for (const [file, entry] of Object.entries(meta)) if (Number.isSafeInteger(entry.version)) versions[file] = entry.version as number;
  return versions;
}
