/**
 * The firmware update protocol shared by the server and the device agent (docs/updates.md):
 * where the TUF image repository and the director live, what a signed target carries, and the
 * messages a device sends while it updates.
 */

/** The image repository's public TUF paths, per organization (no authentication: metadata and images are signed). */
export const tufMetadataPath = (organizationId: string): string => `/tuf/${organizationId}/metadata/`;
export const tufTargetsPath = (organizationId: string): string => `/tuf/${organizationId}/targets/`;

/** Device endpoints (mutual TLS, the device's own certificate). */
export const DIRECTOR_ROOT_PATH = '/device/v1/updates/director/root.json';
export const DIRECTOR_TARGETS_PATH = '/device/v1/updates/director/targets.json';
/** One version of the director root, so a device pinned to an older one walks the chain (TUF 5.3). */
export const directorRootPath = (version: number): string => `/device/v1/updates/director/${version}.root.json`;

/**
 * Everything one update check reads, in one request (mutual TLS, the device's own certificate): the
 * director's root chain and this device's director targets, and the image repository's root chain,
 * timestamp, snapshot, top-level targets and product line. The query says what the device already
 * trusts ({@link UpdateMetadataQuery}); the answer is an {@link UpdateMetadata}. Transport only:
 * the device verifies every file as if it had fetched it alone, and fetches alone any file the
 * answer lacks (docs/updates.md "One request per check").
 */
export const UPDATE_METADATA_PATH = '/device/v1/updates/metadata.json';

/** The most newer roots of each repository one {@link UpdateMetadata} carries; a device further behind fetches the rest one by one. */
export const BUNDLED_ROOTS = 8;

/** What the device trusts already, as the query of {@link UPDATE_METADATA_PATH} says it. */
export interface UpdateMetadataQuery {
  /** The version of the director root the device has pinned. */
  directorRoot: number;
  /** The version of the image repository root it trusts. */
  root: number;
  /** The version of the image repository snapshot it holds: the same one current means no snapshot or targets in the answer. */
  snapshot?: number;
  /** Its pinned product: that line's delegated targets come with the snapshot. */
  product?: string;
}

/** The answer of {@link UPDATE_METADATA_PATH}: each file as its own route serves it, byte for byte. */
export interface UpdateMetadata {
  director: {
    /** The director roots after the one the device pinned, oldest first (at most BUNDLED_ROOTS). */
    roots: string[];
    /** The latest director root's version: a root after it does not exist (no need to ask). */
    latestRoot: number;
    /** This device's director targets metadata. */
    targets: string;
  };
  repository: {
    /** The latest image repository root's version: a root after it does not exist. */
    latestRoot: number;
    /** Files by TUF name (`<version>.root.json`, `timestamp.json`, `<version>.snapshot.json`, …). */
    files: Record<string, string>;
  };
}

/** The name of a firmware image in the image repository: `<productId>/firmware-<version>.bin`. */
export const targetNameOf = (productId: string, version: string): string => `${productId}/firmware-${version}.bin`;

/**
 * A product ID as the image repository uses it: the name of a delegated role and the first part of
 * its images' paths, so no glob or path characters. A device pins its product at setup.
 */
export const PRODUCT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** The delegated targets role of a product line in the image repository. */
export const productRoleOf = (productId: string): string => `product-${productId}`;

/**
 * The `custom` field of an image repository target, signed with the release keys (so neither the
 * server nor its online keys can change what hardware an image is for or what version it is).
 */
export interface ImageTargetCustom {
  product: string;
  /** Semantic version. */
  version: string;
  /** Anti-rollback counter: a device refuses an image whose securityVersion is below the one it has committed. */
  securityVersion: number;
  hardwareIds: string[];
}

/** The `custom` field of a target in a device's director targets metadata. */
export interface DirectorTargetCustom {
  /** The device this metadata was signed for: a device refuses metadata naming another. */
  deviceId: string;
  hardwareId: string;
  rolloutId: string;
}

/** Device-side update states (reported on `d/<id>/updates/status`). */
export const UPDATE_STATES = ['downloading', 'installing', 'rebooting', 'verifying', 'succeeded', 'failed', 'rolled_back'] as const;
export type UpdateState = (typeof UPDATE_STATES)[number];

/** Per-device rollout states as the API shows them: `pending` (not yet offered or not yet started) and the device states. */
export const ROLLOUT_DEVICE_STATES = ['pending', ...UPDATE_STATES] as const;
export type RolloutDeviceState = (typeof ROLLOUT_DEVICE_STATES)[number];

/** MQTT channels below `d/<id>/updates/`. */
export const UPDATE_TOPICS = {
  /** platform → device: `{ rolloutId }`, a hint to fetch the director targets now. */
  available: 'updates/available',
  /** device → platform: an {@link UpdateStatus}. */
  status: 'updates/status',
  /** device → platform: a {@link SignedVersionReport}. */
  report: 'updates/report',
} as const;

export interface UpdateStatus {
  rolloutId: string;
  state: UpdateState;
  /** The image repository target the step is about. */
  target: string;
  /** Device clock, milliseconds since the epoch. */
  ts: number;
  error?: { code: string; message: string };
}

/** What the device runs, signed with its own key so the report cannot be forged by a relay. */
export interface VersionReport {
  deviceId: string;
  /** Strictly increasing per device (persisted by the agent): a replayed report is refused. */
  counter: number;
  ts: number;
  running: { target: string | null; version: string | null; sha256: string | null };
  /** The slot the device booted and the one it falls back to. */
  slot: 'a' | 'b';
  securityVersion: number;
  /** Errors since the previous report (download, verification, health check). */
  errors: { code: string; message: string }[];
}

export interface SignedVersionReport {
  report: VersionReport;
  /**
   * Base64 signature over the canonical JSON (RFC 8785-style, as TUF canonicalizes) of `report`:
   * ECDSA P-256 with SHA-256 (DER) by the device's certificate key.
   */
  signature: string;
}

/** Error codes the agent reports and the server returns for updates. */
export const UPDATE_ERROR_CODES = [
  'update.hash_mismatch',
  'update.length_exceeded',
  'update.download_stalled',
  'update.metadata_expired',
  'update.metadata_invalid',
  'update.rollback_refused',
  'update.hardware_mismatch',
  'update.target_unknown',
  'update.director_mismatch',
  'update.health_check_failed',
  /** The image is not of the device's pinned product: its signed custom.product or the delegated role that signed it. */
  'update.product_mismatch',
  /** The state directory pins no product (set up before products were pinned): nothing is installed until `bulwark-agent pin`. */
  'update.product_unpinned',
] as const;
export type UpdateErrorCode = (typeof UPDATE_ERROR_CODES)[number];
