/**
 * The database schema as Kysely sees it: one interface per table, so every query is typed.
 * Timestamps are milliseconds since the epoch (bigint in PostgreSQL, integer in SQLite).
 * Flags are nullable timestamps ("verified at") rather than booleans: one encoding on both engines.
 */
import type { ColumnType, Generated } from 'kysely';
import type {
  DeviceVersionReportsTable,
  DirectorTargetsTable,
  RolloutActiveDevicesTable,
  RolloutDevicesTable,
  RolloutsTable,
} from './rollout-tables.js';
import type { TufMetadataTable } from './repository-tables.js';

export interface OrganizationsTable {
  id: string;
  slug: string;
  name: string;
  mfa_required_roles: string; // JSON array of roles that must use MFA
  passkey_required_roles: string; // JSON array of roles that must sign in with a passkey (030)
  created_at: number;
}

export interface UsersTable {
  id: string;
  organization_id: string;
  kind: 'operator' | 'consumer';
  email: string; // normalized: trimmed, lower case
  email_verified_at: number | null;
  name: string;
  role: string | null; // operators only
  status: 'active' | 'disabled';
  password_hash: string | null; // null until an invitation is accepted
  password_changed_at: number | null;
  must_change_password: number; // 0 or 1
  failed_logins: number;
  locked_until: number | null;
  mfa_secret: string | null; // sealed under the master key
  mfa_enabled_at: number | null;
  mfa_last_step: number | null; // last TOTP time step accepted: a code is never accepted twice
  created_at: number;
  updated_at: number;
}

export interface RecoveryCodesTable {
  id: string;
  user_id: string;
  code_hash: string;
  used_at: number | null;
}

export interface SessionsTable {
  id: string;
  token_hash: string;
  user_id: string;
  organization_id: string;
  transport: 'cookie' | 'bearer';
  scope: 'full' | 'password_change' | 'mfa_pending' | 'mfa_enrollment' | 'passkey_enrollment';
  created_at: number;
  last_seen_at: number;
  expires_at: number; // absolute timeout
  step_up_at: number | null; // last time the user re-proved a factor
  source_ip: string;
  user_agent: string;
  revoked_at: number | null;
}

export interface OneTimeTokensTable {
  id: string;
  token_hash: string;
  purpose: 'password_reset' | 'email_verify' | 'invitation' | 'email_change' | 'device_enrollment' | 'manufacturer_ca_proof';
  organization_id: string;
  user_id: string | null;
  email: string;
  payload: string; // JSON
  created_at: number;
  expires_at: number;
  used_at: number | null;
  revoked_at: number | null;
}

export interface ApiKeysTable {
  id: string;
  user_id: string;
  organization_id: string;
  name: string;
  secret_hash: string;
  scopes: string; // JSON array of permissions
  created_at: number;
  expires_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface AuditLogTable {
  seq: number;
  ts: number;
  organization_id: string | null;
  actor_type: string;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  source_ip: string | null;
  outcome: 'success' | 'failure' | 'denied';
  details: string; // JSON
  prev_hash: string;
  hash: string;
}

export interface AuditCheckpointsTable {
  seq: number; // the last entry covered
  hash: string; // that entry's hash
  ts: number;
  key_id: string;
  signature: string; // base64 Ed25519 over the canonical checkpoint
}

export interface SigningKeysTable {
  id: string;
  purpose: string;
  algorithm: string;
  public_key: string; // PEM
  private_key: string; // sealed under the master key
  created_at: number;
  retired_at: number | null;
}

export interface KvTable {
  key: string;
  value: string;
  updated_at: number;
}

export interface IssuedCertificatesTable {
  serial: string; // lowercase hex
  organization_id: string;
  device_id: string;
  subject: string;
  not_before: number;
  not_after: number;
  fingerprint_sha256: string; // lowercase hex of the DER
  pem: string;
  status: 'active' | 'revoked';
  revoked_at: number | null;
  revocation_reason: string | null;
  created_at: number;
}

export interface BootstrapCasTable {
  id: string;
  organization_id: string;
  name: string;
  subject: string; // as node:crypto prints it
  subject_sha256: string; // lookup key: a presented certificate's issuer hashes to it
  fingerprint_sha256: string; // lowercase hex of the DER
  pem: string;
  not_after: number;
  created_at: number;
  deleted_at: number | null;
}

export interface ProductsTable {
  id: string;
  organization_id: string;
  name: string;
  hardware_revision: string | null;
  firmware_line: string | null;
  created_at: number;
  telemetry_retention_days: number | null; // null: the deployment's telemetry.retentionDays
  telemetry_daily_readings: number | null; // null: the deployment's telemetry.dailyReadingsPerDevice
  telemetry_daily_bytes: number | null; // null: the deployment's telemetry.dailyBytesPerDevice
  /** 022: the end of the declared support period (security updates until then, ETSI 5.3-13); null: none declared. */
  support_until: number | null;
  /** 033: the commands its devices take (JSON array, devices/command-catalogue.ts); null: none declared. */
  commands: string | null;
}

export interface DevicesTable {
  id: string; // platform ID (UUID)
  organization_id: string;
  serial: string; // the brand's serial, unique in the organization; compared byte-wise
  product_id: string;
  status: 'pending' | 'active' | 'quarantined' | 'disabled' | 'retired';
  firmware_version: string | null; // as the device last reported it
  last_seen_at: number | null;
  attributes: string; // JSON object
  tags: string; // JSON array (also one row per tag in device_tags, for filtering)
  group_name: string | null;
  /** 018: when an operator made this device a gateway; null: not a gateway. */
  gateway_enabled_at: number | null;
  /** 018: the gateway this child device is attached to (it has no credential of its own); null: a directly connected device. */
  gateway_id: string | null;
  /** 018: when the device was last attached to, moved between or detached from gateways (brokers poll it). */
  gateway_changed_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface DeviceTagsTable {
  organization_id: string;
  tag: string;
  serial: string;
  device_id: string;
}

export interface TelemetryTable {
  /** Unique and increasing (the rowid on SQLite): the tie-break of readings with equal ts. */
  seq: Generated<number>;
  organization_id: string;
  device_id: string;
  /** The device's timestamp of the reading (ms), or the receive time when it sent none. */
  ts: number;
  received_at: number;
  data: string; // JSON object of the reading's values
}

/** What a device was admitted per UTC day (telemetry quota): readings and payload bytes. */
export interface TelemetryUsageTable {
  device_id: string;
  /** Days since the epoch, UTC. */
  day: number;
  organization_id: string;
  readings: number;
  bytes: number;
}

export interface DevicePresenceTable {
  device_id: string;
  organization_id: string;
  connected_since: number | null; // null: offline
  node_id: string;
  remote_address: string | null;
  protocol: string | null;
  changed_at: number;
}

export interface EnrollmentGroupsTable {
  id: string;
  organization_id: string;
  name: string; // unique in the organization
  product_id: string; // devices registering through the group are created in this product
  sealed_key: string; // the group key, sealed under the master key (context enrollment-group:<id>)
  created_at: number;
  disabled_at: number | null;
}

export interface DeviceSymmetricKeysTable {
  id: string; // `<device_id>:<version>`
  device_id: string;
  organization_id: string;
  version: number;
  sealed_key: string; // sealed under the master key (context device:<device_id>:symmetric-key:<version>)
  enrollment_group_id: string | null; // set when derived from an enrollment group's key
  created_at: number;
  valid_until: number | null; // null for the current key; the end of a rotated-out key's grace period
}

export interface DeviceShadowsTable {
  device_id: string;
  organization_id: string;
  reported: string; // JSON object
  reported_version: number;
  reported_at: number | null;
  desired: string; // JSON object
  desired_version: number;
  desired_at: number | null;
}

export interface DeviceShadowHistoryTable {
  id: string;
  organization_id: string;
  device_id: string;
  kind: 'reported' | 'desired';
  version: number;
  change: string; // JSON: the patch that made this version
  state: string; // JSON: the whole state after it
  actor: string | null;
  changed_at: number;
}

export interface DeviceCommandsTable {
  id: string;
  organization_id: string;
  device_id: string;
  name: string;
  params: string; // JSON object
  status: 'pending' | 'succeeded' | 'failed' | 'rejected' | 'timed_out';
  result: string | null; // JSON
  error: string | null;
  created_by: string;
  created_at: number;
  expires_at: number;
  completed_at: number | null;
}

/** A firmware release (010_releases). */
export interface FirmwareReleasesTable {
  id: string;
  organization_id: string;
  product_id: string;
  /** Semantic version, as signed in the target's custom field. */
  version: string;
  security_version: number;
  hardware_ids: string; // JSON array of strings
  /** The image repository target: `<productId>/firmware-<version>.bin`. */
  target_name: string;
  sha256: string;
  length: number;
  notes: string;
  sbom: string; // CycloneDX JSON
  created_by: string | null;
  created_at: number;
  /** What its attestations showed (016): JSON ReleaseProvenance, null when it had none (may be left out on insert). */
  provenance: ColumnType<string | null, string | null | undefined, string | null>;
}

/** A product's release policy (016): which attestations a release needs and whose signatures count. */
export interface ReleasePoliciesTable {
  product_id: string;
  organization_id: string;
  policy: string; // JSON ReleasePolicy
  updated_by: string | null;
  updated_at: number;
}

/** A release its product's policy refused (016): kept with the reason; it was never published. */
export interface ReleaseRefusalsTable {
  id: string;
  organization_id: string;
  product_id: string;
  version: string;
  sha256: string;
  code: string;
  reason: string;
  created_by: string | null;
  created_at: number;
}

/** An organization's holding of a blob (014): the bytes its quota counts; `stored` 0 while the upload runs. */
export interface FirmwareBlobsTable {
  id: string;
  organization_id: string;
  sha256: string;
  length: number;
  stored: number;
  created_at: number;
}

/** An OAuth client an organization registered for a companion app (017): public, PKCE-protected. */
export interface AppClientsTable {
  id: string;
  organization_id: string;
  name: string;
  redirect_uris: string; // JSON string[]
  scopes: string; // JSON AppScope[]
  first_party: number;
  status: 'active' | 'disabled';
  created_by: string | null;
  created_at: number;
  updated_at: number;
}

/** What a consumer consented a third-party client may do (017). */
export interface AppConsentsTable {
  id: string;
  organization_id: string;
  user_id: string;
  client_id: string;
  scopes: string; // JSON AppScope[]
  created_at: number;
  updated_at: number;
}

/** An authorization code (017): its digest, what it is bound to, single use. */
export interface AppAuthorizationCodesTable {
  id: string;
  code_hash: string;
  organization_id: string;
  client_id: string;
  user_id: string;
  session_id: string | null;
  redirect_uri: string;
  code_challenge: string;
  scopes: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  family_id: string | null;
  /** When the consumer last proved a factor in the session that authorized (their step-up), ms; null if never. */
  auth_time: number | null;
}

/** One grant to one client: the refresh tokens it rotates through and the access tokens it mints (017). */
export interface AppTokenFamiliesTable {
  id: string;
  organization_id: string;
  client_id: string;
  user_id: string;
  scopes: string;
  code_id: string | null;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
  /** The authorizing session's step-up time (ms): what a sensitive action through the app counts as its recent sign-in. */
  auth_time: number | null;
}

/** A refresh token of a family, stored as its digest; `used_at` is set when it is rotated (017). */
export interface AppRefreshTokensTable {
  id: string;
  family_id: string;
  token_hash: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/** An organization's access-token signing key (017); `rotated_at` once superseded, `retired_at` once it verifies nothing. */
export interface AppSigningKeysTable {
  id: string;
  organization_id: string;
  algorithm: string;
  public_jwk: string;
  private_key: string; // sealed under the master key
  created_at: number;
  rotated_at: number | null;
  retired_at: number | null;
}

export interface Database {
  organizations: OrganizationsTable;
  users: UsersTable;
  recovery_codes: RecoveryCodesTable;
  sessions: SessionsTable;
  one_time_tokens: OneTimeTokensTable;
  api_keys: ApiKeysTable;
  audit_log: AuditLogTable;
  audit_checkpoints: AuditCheckpointsTable;
  signing_keys: SigningKeysTable;
  kv: KvTable;
  products: ProductsTable;
  telemetry_usage: TelemetryUsageTable;
  devices: DevicesTable;
  device_tags: DeviceTagsTable;
  issued_certificates: IssuedCertificatesTable;
  enrollment_groups: EnrollmentGroupsTable;
  device_symmetric_keys: DeviceSymmetricKeysTable;
  bootstrap_cas: BootstrapCasTable;
  telemetry: TelemetryTable;
  // 034_telemetry_log: SQLite appends here (PostgreSQL has no log); every read goes through the view.
  telemetry_log: TelemetryTable;
  telemetry_readings: TelemetryTable;
  device_presence: DevicePresenceTable;
  device_shadows: DeviceShadowsTable;
  device_shadow_history: DeviceShadowHistoryTable;
  device_commands: DeviceCommandsTable;
  // 009_update_repository (TUF image repository)
  tuf_metadata: TufMetadataTable;
  // 010_releases
  firmware_releases: FirmwareReleasesTable;
  // 011_rollouts (director and rollouts)
  rollouts: RolloutsTable;
  rollout_devices: RolloutDevicesTable;
  // 012_rollout_offer_timeout
  rollout_active_devices: RolloutActiveDevicesTable;
  director_targets: DirectorTargetsTable;
  device_version_reports: DeviceVersionReportsTable;
  // 014_firmware_blobs
  firmware_blobs: FirmwareBlobsTable;
  // 016_release_provenance
  release_policies: ReleasePoliciesTable;
  release_refusals: ReleaseRefusalsTable;
  // 017_app_auth
  app_clients: AppClientsTable;
  app_consents: AppConsentsTable;
  app_authorization_codes: AppAuthorizationCodesTable;
  app_token_families: AppTokenFamiliesTable;
  app_refresh_tokens: AppRefreshTokensTable;
  app_signing_keys: AppSigningKeysTable;
  // 019_binding
  device_members: DeviceMembersTable;
  binding_invitations: BindingInvitationsTable;
  device_claims: DeviceClaimsTable;
  claim_failures: ClaimFailuresTable;
  // 020_privacy
  product_privacy: ProductPrivacyTable;
  device_consents: DeviceConsentsTable;
  // 030_passkeys
  passkey_credentials: PasskeyCredentialsTable;
  passkey_challenges: PasskeyChallengesTable;
  // 027_anomaly
  device_behaviour_minutes: DeviceBehaviourMinutesTable;
  device_behaviour_addresses: DeviceBehaviourAddressesTable;
  device_connection_conflicts: DeviceConnectionConflictsTable;
  anomaly_product_rules: AnomalyProductRulesTable;
  // 029_job_leases
  job_leases: JobLeasesTable;
  // 024_disclosures
  disclosure_reports: DisclosureReportsTable;
  // 026_advisories
  assessment_advisories: AssessmentAdvisoriesTable;
  assessment_advisory_exposure: AssessmentAdvisoryExposureTable;
  ca_revocations: CaRevocationsTable;
  // 025_manufacturer_cas
  manufacturer_cas: ManufacturerCasTable;
  manufacturer_registrations: ManufacturerRegistrationsTable;
  enrollment_policies: EnrollmentPoliciesTable;
  enrollment_allowed_serials: EnrollmentAllowedSerialsTable;
  enrollment_daily_counts: EnrollmentDailyCountsTable;
  // 023_audit_personal
  audit_personal: AuditPersonalTable;
  // 022_assessment
  assessment_findings: AssessmentFindingsTable;
  assessment_finding_resources: AssessmentFindingResourcesTable;
  assessment_runs: AssessmentRunsTable;
  assessment_settings: AssessmentSettingsTable;
  // 021_sso
  sso_configs: SsoConfigsTable;
  sso_identities: SsoIdentitiesTable;
  sso_logins: SsoLoginsTable;
}

/** A consumer's standing on a device (019): its owner (one at most), or a member or guest it was shared with. */
export interface DeviceMembersTable {
  device_id: string;
  user_id: string;
  organization_id: string;
  role: 'owner' | 'member' | 'guest';
  /** The consumer's own name for the device. */
  label: string | null;
  /** Who shared it (null for the owner who claimed it). */
  invited_by: string | null;
  since: number;
}

/** An offer to share a device with a role, or to hand it over (`transfer`), waiting for the invitee to accept (019). */
export interface BindingInvitationsTable {
  id: string;
  organization_id: string;
  device_id: string;
  kind: 'share' | 'transfer';
  role: 'owner' | 'member' | 'guest';
  /** Lower-case; the consumer signed in with this address accepts. */
  invitee_email: string;
  invited_by: string;
  created_at: number;
  expires_at: number;
}

/** A device's claim code (SHA-256 of its normalised form), its presence window or claim challenge, and its last user-data reset (019). */
export interface DeviceClaimsTable {
  device_id: string;
  organization_id: string;
  code_hash: string | null;
  code_created_at: number | null;
  code_used_at: number | null;
  /** A button press on the device opens the claim window until then. */
  presence_until: number | null;
  /** A claim challenge: the SHA-256 of the nonce the device must sign, for whom, until when. */
  nonce_hash: string | null;
  nonce_user_id: string | null;
  nonce_until: number | null;
  reset_id: string | null;
  reset_requested_at: number | null;
  reset_confirmed_at: number | null;
}

/** Failed claims counted per subject (`user:<id>` or `ip:<address>`) in a window, and the lockout they led to (019). */
export interface ClaimFailuresTable {
  subject: string;
  failures: number;
  window_started_at: number;
  locked_until: number | null;
}

/** What an audit check (or, later, an anomaly rule or advisory match) found in an organization, and its state (022). */
export interface AssessmentFindingsTable {
  id: string;
  organization_id: string;
  /** The check that raised it (`device-certificate-expiring`, …). */
  check_id: string;
  /** What the finding is about within the check (a grouping key the check chooses; '' for the check as a whole). */
  subject: string;
  /** What raised it: `audit` (the checks of this slice); anomaly detection and advisories add theirs. */
  source: 'audit' | 'anomaly' | 'advisory';
  severity: 'critical' | 'high' | 'medium' | 'low' | 'info';
  title: string;
  evidence: string; // JSON object
  /** Every resource the check saw affected; at most assessment.resourcesPerFinding are listed. */
  resource_count: number;
  state: 'open' | 'resolved' | 'suppressed';
  first_seen_at: number;
  last_seen_at: number;
  resolved_at: number | null;
  suppressed_reason: string | null;
  suppressed_by: string | null;
  suppressed_at: number | null;
  suppressed_until: number | null;
}

/** The resources a finding names (022): a device, a certificate, a user, an API key, a setting… */
export interface AssessmentFindingResourcesTable {
  finding_id: string;
  resource_type: string;
  resource_id: string;
  position: number;
}

/** One run of the audit checks over an organization (022). */
export interface AssessmentRunsTable {
  id: string;
  organization_id: string;
  trigger: 'api' | 'cli' | 'schedule';
  started_at: number;
  duration_ms: number;
  checks: string; // JSON array of check IDs
  opened: number;
  resolved: number;
  open_total: number;
  failures: string; // JSON array of { check, message }
}

/** An organization's finding notifications (022): the webhook and its HMAC secret (sealed under the master key). */
export interface AssessmentSettingsTable {
  organization_id: string;
  webhook_url: string | null;
  webhook_secret: string | null;
  updated_at: number;
}

/** An organization's OpenID Connect provider and its sign-in policy (021). */
export interface SsoConfigsTable {
  id: string;
  organization_id: string;
  issuer: string;
  client_id: string;
  client_secret: string; // sealed under the master key
  redirect_uri: string;
  scopes: string; // space-separated
  /** The ID token claim whose values map to roles (e.g. `groups`). */
  role_claim: string;
  role_mapping: string; // JSON object: claim value -> operator role
  /** The role when no mapping matches; null refuses the sign-in. */
  default_role: string | null;
  mfa_acr_values: string; // JSON array of `acr` values that count as MFA
  sso_only: number; // 0 or 1: passwords refused for the organization's operators
  break_glass_user_id: string | null; // the one owner who may still sign in with a password
  max_session_minutes: number;
  /** An SSO-only operator's API keys work only while their last provider sign-in is this recent. */
  api_key_reauth_days: number;
  created_at: number;
  updated_at: number;
}

/** A provider identity (issuer + subject) an operator signed in with (021). */
export interface SsoIdentitiesTable {
  id: string;
  organization_id: string;
  user_id: string;
  issuer: string;
  subject: string;
  email: string | null; // for display only
  last_sign_in_at: number | null;
  last_mfa_asserted: number; // 0 or 1: the provider asserted MFA at the last sign-in
  created_at: number;
}

/** A single sign-on in flight: its state (as SHA-256), nonce and PKCE verifier, bound to the browser that started it (021). */
export interface SsoLoginsTable {
  state_hash: string;
  organization_id: string;
  browser_hash: string;
  nonce: string;
  code_verifier: string;
  transport: 'cookie' | 'bearer';
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

export type { Generated };

/** A product's privacy declaration (020): what it senses, which telemetry it collects and why (JSON, see binding/privacy.ts). */
export interface ProductPrivacyTable {
  product_id: string;
  organization_id: string;
  declaration: string;
  updated_at: number;
}

/** The owner's decision on one purpose of a bound device's product declaration (020); required purposes are not stored. */
export interface DeviceConsentsTable {
  device_id: string;
  purpose: string;
  organization_id: string;
  /** 1 granted, 0 withdrawn. */
  granted: number;
  /** The consumer who decided. */
  decided_by: string;
  decided_at: number;
}

/** An audit entry's personal fields, outside the hash chain (023): erased with the account of the user they are about. */
export interface AuditPersonalTable {
  seq: number;
  subject_user_id: string | null;
  /** JSON object merged into the entry's details when read. */
  data: string;
}

/** A vulnerability report received through the public intake (024, ETSI EN 303 645 5.2-1). */
export interface DisclosureReportsTable {
  id: string;
  organization_id: string;
  /** The product the reporter named, as given (free text, bounded). */
  product: string | null;
  title: string;
  description: string;
  /** The reporter's address for the reply (personal data); null when none was given. */
  contact: string | null;
  /** received | triaged | fixed | rejected */
  state: string;
  /** The operators' last note on a change of state. */
  note: string | null;
  received_at: number;
  /** Triage is due by then. */
  acknowledge_by: number;
  /** Fixed or rejected by then. */
  resolve_by: number;
  triaged_at: number | null;
  resolved_at: number | null;
  updated_at: number;
}

/** An OSV advisory an organization imported (026). */
export interface AssessmentAdvisoriesTable {
  organization_id: string;
  id: string; // the OSV ID
  modified: string; // the record's own RFC 3339 time
  summary: string;
  aliases: string; // JSON array
  severity: 'critical' | 'high' | 'medium' | 'low' | 'info';
  severity_source: string; // CVSS_V3 <score>, database_specific, default
  record: string; // the OSV JSON as imported
  imported_at: number;
}

/** Devices running a release an advisory affects, on one day (026); the day's last run wins. */
export interface AssessmentAdvisoryExposureTable {
  organization_id: string;
  advisory_id: string;
  day: string; // YYYY-MM-DD, UTC
  devices: number;
  releases: number;
  recorded_at: number;
}

/** A CA certificate recorded as revoked (026): deployment-wide (organization_id null: the platform's issuing CAs) or an organization's. */
export interface CaRevocationsTable {
  id: string;
  organization_id: string | null;
  fingerprint_sha256: string; // lowercase hex of the DER
  subject: string;
  pem: string;
  reason: string; // an RFC 5280 reason name
  revoked_by: string | null;
  revoked_at: number;
}

/** A device's behaviour in one minute (027), added to by each node's flush; `addresses` is the most distinct source addresses one node saw that minute. */
export interface DeviceBehaviourMinutesTable {
  device_id: string;
  /** Start of the minute (ms epoch). */
  minute: number;
  organization_id: string;
  product_id: string;
  messages: number;
  bytes: number;
  connects: number;
  auth_failures: number;
  acl_denials: number;
  payload_errors: number;
  /** Connections that replaced a live session of the device. */
  takeovers: number;
  /** Reboots the device reported (the update flow's `rebooting` state). */
  reboots: number;
  /** Updates the device reported `failed` or `rolled_back`. */
  update_failures: number;
  addresses: number;
}

/** A source address a device was seen from (connected or failed to authenticate) in an hour (027). */
export interface DeviceBehaviourAddressesTable {
  device_id: string;
  /** Start of the hour (ms epoch). */
  hour: number;
  address: string;
}

/** A connection that took over a live session of the same device (027): who held it, who took it, with what credential. */
export interface DeviceConnectionConflictsTable {
  id: string;
  organization_id: string;
  device_id: string;
  at: number;
  address: string;
  previous_address: string;
  /** `certificate:<serial>` or `symmetric_key:<version>`. */
  credential: string;
  previous_credential: string;
  /** How long the replaced session had been connected. */
  previous_age_ms: number;
}

/** A product's anomaly rules (027): JSON of assessment/anomaly/rules.ts ProductRules. */
/** Who runs a deployment-wide background job (029): the node `holder` until `expires_at`, renewed at each run. */
export interface JobLeasesTable {
  job: string;
  holder: string;
  expires_at: number;
}

export interface AnomalyProductRulesTable {
  product_id: string;
  organization_id: string;
  rules: string;
  updated_at: number;
  updated_by: string;
}

/** A manufacturer CA a product trusts for just-in-time provisioning (025), registered with proof of possession of its key. */
export interface ManufacturerCasTable {
  id: string;
  organization_id: string;
  product_id: string;
  name: string;
  subject: string;
  subject_sha256: string;
  fingerprint_sha256: string;
  pem: string;
  not_after: number;
  /** Where a device's ID comes from in its certificate. */
  device_id_from: 'cn' | 'serial_number' | 'key_sha256';
  /** Put before the derived value to make the device ID (may be empty), so two manufacturers' serials cannot collide. */
  device_id_prefix: string;
  /** What a device registered through the CA becomes: active at once, or pending an operator's approval. */
  activation: 'active' | 'pending';
  created_at: number;
  revoked_at: number | null;
}

/** A manufacturer certificate through which a device was registered (025): the same certificate maps to the same device. */
export interface ManufacturerRegistrationsTable {
  fingerprint_sha256: string;
  organization_id: string;
  device_id: string;
  manufacturer_ca_id: string;
  not_after: number;
  created_at: number;
}

/** Where an allow-list applies: a product (its manufacturer CAs) or an enrollment group. */
export type EnrollmentScope = 'product' | 'enrollment_group';

/** The allow-list of a product or an enrollment group (025). JSON arrays in text columns. */
export interface EnrollmentPoliciesTable {
  scope: EnrollmentScope;
  scope_id: string;
  organization_id: string;
  serial_patterns: string;
  source_cidrs: string;
  daily_quota: number | null;
  /** 1 when the imported serial list is part of the allow-list. */
  serial_list: number;
  updated_at: number;
}

export interface EnrollmentAllowedSerialsTable {
  scope: EnrollmentScope;
  scope_id: string;
  serial: string;
}

/** Registrations counted per scope and UTC day (days since the epoch), for the daily quota. */
export interface EnrollmentDailyCountsTable {
  scope: EnrollmentScope;
  scope_id: string;
  day: number;
  registrations: number;
}

/** A user's registered passkey (030): a WebAuthn credential and what its authenticator said of itself. */
export interface PasskeyCredentialsTable {
  id: string;
  organization_id: string;
  user_id: string;
  credential_id: string; // base64url, as the authenticator made it
  public_key: string; // base64url COSE key
  counter: number; // the signature counter last seen; a lower or equal one means a cloned authenticator
  transports: string; // JSON array (usb, nfc, ble, internal, hybrid)
  device_type: 'singleDevice' | 'multiDevice';
  backed_up: number; // 0 or 1
  aaguid: string;
  name: string;
  created_at: number;
  last_used_at: number | null;
}

/** A WebAuthn ceremony's challenge (030): digest only, single use, bound to a session or a ceremony secret. */
export interface PasskeyChallengesTable {
  id: string;
  challenge_hash: string;
  purpose: 'registration' | 'authentication' | 'mfa' | 'step_up';
  user_id: string | null;
  session_id: string | null;
  binding_hash: string | null; // SHA-256 of the ceremony secret handed to a caller without a session
  created_at: number;
  expires_at: number;
}
