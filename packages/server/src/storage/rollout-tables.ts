/**
 * Kysely table interfaces of the director and rollouts (migrations 011_rollouts, 012_rollout_offer_timeout, 015_rollout_retries). Timestamps are
 * milliseconds since the epoch; JSON columns are text on both engines.
 */
/** A rollout (campaign) of one release to a snapshot of devices. */
export interface RolloutsTable {
  id: string;
  organization_id: string;
  release_id: string;
  product_id: string;
  name: string;
  selector: string; // JSON RolloutSelector
  phases: string; // JSON [{ percent, soakSeconds }]
  success_threshold: number;
  failure_threshold: number;
  max_concurrent_downloads: number;
  /** An offered device silent this long gives its download slot back (pending: offered again later; started: failed). */
  offer_timeout_seconds: number;
  /** Offers per device in all (015): a transient failure before the last is offered again after the backoff. */
  max_attempts: number;
  retry_backoff_seconds: number;
  /** Pause for an operator at this failure fraction of the current phase (null: none). */
  pause_threshold: number | null;
  /** The phase an operator resumed in after the pause threshold paused it: it does not pause that phase again. */
  pause_cleared_phase: number | null;
  schedule_window: string | null; // JSON ScheduleWindow
  status: 'running' | 'paused' | 'halted' | 'aborted' | 'completed';
  current_phase: number;
  phase_started_at: number;
  device_count: number;
  skipped_count: number; // selected devices already in another unfinished rollout
  created_by: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

/** One device of a rollout, snapshotted at creation. */
export interface RolloutDevicesTable {
  rollout_id: string;
  device_id: string;
  organization_id: string;
  phase: number;
  /** SHA-256 of `<rolloutId>:<deviceId>` in hex: the deterministic order devices are phased and offered in. */
  rank: string;
  state: 'pending' | 'downloading' | 'installing' | 'rebooting' | 'verifying' | 'succeeded' | 'failed' | 'rolled_back';
  error_code: string | null;
  error_message: string | null;
  offered_at: number | null;
  updated_at: number;
  /** Offers this device took up (015): an offer withdrawn because the device never started does not count. */
  attempts: number;
  /** After a transient failure: not offered again before this time. */
  retry_at: number | null;
}

/** The current director targets metadata of a device: re-signed only when its content changes or half its lifetime passed. */
export interface DirectorTargetsTable {
  device_id: string;
  organization_id: string;
  version: number;
  metadata: string; // the signed JSON document
  target_name: string | null;
  rollout_id: string | null;
  hardware_id: string | null;
  signed_at: number;
  expires_at: number;
}

/** The latest signed version report of a device, and the counter that refuses replays. */
export interface DeviceVersionReportsTable {
  device_id: string;
  organization_id: string;
  counter: number;
  report: string; // JSON VersionReport
  signature: string; // base64 DER ECDSA
  received_at: number;
}

/** The unfinished rollout (running, paused, halted) each device is enrolled in: the primary key makes a second enrollment impossible. */
export interface RolloutActiveDevicesTable {
  device_id: string;
  rollout_id: string;
}

export interface RolloutTables {
  rollouts: RolloutsTable;
  rollout_devices: RolloutDevicesTable;
  rollout_active_devices: RolloutActiveDevicesTable;
  director_targets: DirectorTargetsTable;
  device_version_reports: DeviceVersionReportsTable;
}
