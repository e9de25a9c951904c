/**
 * Every error code Bulwark puts on the wire, and the two bodies that carry one: the HTTP error
 * body and the MQTT error reply on `d/<deviceId>/errors`. Codes are part of the public contract:
 * clients and devices branch on them, so they never change meaning. A code that is not listed
 * here does not compile where an error is raised.
 */
import type { UpdateErrorCode } from './updates.js';

/** The error body every Bulwark HTTP endpoint answers with. */
export interface ErrorBody {
  error: {
    /** Stable, dotted, machine-readable code such as `auth.invalid_credentials`. */
    code: string;
    /** Human-readable explanation: what was wrong and what is expected. */
    message: string;
    /** Structured context (offending fields, limits, retry hints). */
    details?: Record<string, unknown>;
  };
}

/** An error reply on `d/<deviceId>/errors` (protocol §3.2): the topic of the refused message, and why. */
export interface ErrorReply {
  topic: string;
  code: string;
  message: string;
}

export const ErrorCodes = {
  // requests (HTTP transport)
  requestInvalid: 'request.invalid',
  requestTooLarge: 'request.too_large',
  requestUnsupportedMediaType: 'request.unsupported_media_type',
  requestUriTooLong: 'request.uri_too_long',
  requestHeadersTooLarge: 'request.headers_too_large',
  requestTimeout: 'request.timeout',
  serviceUnavailable: 'service.unavailable',
  storageUnavailable: 'storage.unavailable',
  notFound: 'resource.not_found',
  conflict: 'resource.conflict',
  rateLimited: 'request.rate_limited',
  internal: 'internal.error',
  configInvalid: 'config.invalid',
  configPkcs11Missing: 'config.pkcs11_missing',
  configPkcs11PinMissing: 'config.pkcs11_pin_missing',
  configWorkersNeedSharedState: 'config.workers_need_shared_state',

  // accounts
  unauthenticated: 'auth.unauthenticated',
  invalidCredentials: 'auth.invalid_credentials',
  forbidden: 'auth.forbidden',
  csrfFailed: 'auth.csrf_failed',
  mfaRequired: 'auth.mfa_required',
  mfaRequiredByPolicy: 'auth.mfa_required_by_policy',
  mfaEnrollmentRequired: 'auth.mfa_enrollment_required',
  mfaInvalid: 'auth.mfa_invalid',
  mfaNotEnabled: 'auth.mfa_not_enabled',
  mfaAlreadyEnabled: 'auth.mfa_already_enabled',
  mfaNotEnrolling: 'auth.mfa_not_enrolling',
  mfaNotPending: 'auth.mfa_not_pending',
  stepUpRequired: 'auth.step_up_required',
  passwordChangeRequired: 'auth.password_change_required',
  passwordRejected: 'auth.password_rejected',
  tokenInvalid: 'auth.token_invalid',
  appTokenNotAllowed: 'auth.app_token_not_allowed',
  insufficientScope: 'auth.insufficient_scope',
  emailNotVerified: 'auth.email_not_verified',
  ssoRequired: 'auth.sso_required',
  /** Passkeys (WebAuthn): the assertion did not verify (unknown or deleted credential, bad signature, wrong origin or RP, cloned authenticator); one answer for all. */
  passkeyInvalid: 'auth.passkey_invalid',
  /** The ceremony's challenge is unknown, used, expired, or was issued to another session or caller. */
  passkeyChallengeInvalid: 'auth.passkey_challenge_invalid',
  /** A registration response that does not verify (origin, RP ID, challenge, user verification, attestation). */
  passkeyRegistrationInvalid: 'auth.passkey_registration_invalid',
  /** That authenticator's credential is registered already. */
  passkeyExists: 'auth.passkey_exists',
  /** The user holds the most passkeys allowed (passkeys.maxPerUser). */
  passkeyLimitReached: 'auth.passkey_limit_reached',
  /** The user's role must sign in with a passkey: a TOTP or recovery code is not enough. */
  passkeyRequired: 'auth.passkey_required',
  /** Removing the last passkey (or last second factor) that the organization's policy requires. */
  passkeyRequiredByPolicy: 'auth.passkey_required_by_policy',
  /** The session may only register a passkey: the user's role requires one and they have none. */
  passkeyEnrollmentRequired: 'auth.passkey_enrollment_required',

  // operators' single sign-on (issue 18)
  ssoNotConfigured: 'sso.not_configured',
  ssoConfigInvalid: 'sso.config_invalid',
  ssoStateInvalid: 'sso.state_invalid',
  ssoProviderRefused: 'sso.provider_refused',
  ssoProviderUnreachable: 'sso.provider_unreachable',
  ssoIdTokenInvalid: 'sso.id_token_invalid',
  ssoNoRole: 'sso.no_role',
  ssoAccountConflict: 'sso.account_conflict',
  userExists: 'user.exists',
  organizationExists: 'org.exists',
  lastOwner: 'org.last_owner',
  apiKeyLimitReached: 'apikey.limit_reached',

  // companion-app authorization (OAuth 2.1, issue 14); on /oauth/* the RFC 6749 error names go beside them
  appRequestInvalid: 'app.request_invalid',
  appClientInvalid: 'app.client_invalid',
  appRedirectUriInvalid: 'app.redirect_uri_invalid',
  appRedirectUriMismatch: 'app.redirect_uri_mismatch',
  appScopeInvalid: 'app.scope_invalid',
  appResponseTypeUnsupported: 'app.response_type_unsupported',
  appGrantTypeUnsupported: 'app.grant_type_unsupported',
  appPkceRequired: 'app.pkce_required',
  appPkceMethodUnsupported: 'app.pkce_method_unsupported',
  appPkceVerifierInvalid: 'app.pkce_verifier_invalid',
  appCodeInvalid: 'app.code_invalid',
  appCodeReused: 'app.code_reused',
  appRefreshTokenInvalid: 'app.refresh_token_invalid',
  appRefreshTokenReused: 'app.refresh_token_reused',
  appAccessDenied: 'app.access_denied',
  appLoginRequired: 'app.login_required',
  appAccessTokenInvalid: 'app.access_token_invalid',
  appKeyActive: 'app.key_active',

  // devices
  deviceInvalidTransition: 'device.invalid_transition',
  deviceSerialTaken: 'device.serial_taken',
  deviceImportRejected: 'device.import_rejected',
  deviceAuthFailed: 'device.auth_failed',
  deviceCertificateRequired: 'device.certificate_required',
  deviceNotEnrollable: 'device.not_enrollable',
  deviceNotCommandable: 'device.not_commandable',
  deviceOffline: 'device.offline',
  /** A command, or a parameter of one, that the device's product does not declare. */
  deviceCommandUndeclared: 'device.command_undeclared',
  deviceProductMismatch: 'device.product_mismatch',
  enrollmentGroupExists: 'enrollment_group.exists',
  enrollmentGroupDisabled: 'enrollment_group.disabled',
  /** Just-in-time provisioning (docs/security-model.md, manufacturer CAs): why a device was not registered. */
  jitUnknownCa: 'jit.unknown_ca',
  jitCaRevoked: 'jit.ca_revoked',
  jitCertificateInvalid: 'jit.certificate_invalid',
  jitIdentityInvalid: 'jit.identity_invalid',
  jitIdentityConflict: 'jit.identity_conflict',
  jitSerialNotAllowed: 'jit.serial_not_allowed',
  jitAddressNotAllowed: 'jit.address_not_allowed',
  jitQuotaExceeded: 'jit.quota_exceeded',
  jitBusy: 'jit.busy',
  jitPendingApproval: 'jit.pending_approval',
  jitDeviceNotEnrollable: 'jit.device_not_enrollable',
  productExists: 'product.exists',

  // assessment (docs/assessment.md)
  assessmentSuppressionInvalid: 'assessment.suppression_invalid',
  assessmentMitigationNotApplicable: 'assessment.mitigation_not_applicable',
  assessmentWebhookInvalid: 'assessment.webhook_invalid',
  assessmentWebhookFailed: 'assessment.webhook_failed',
  assessmentAnomalyRulesInvalid: 'assessment.anomaly_rules_invalid',
  disclosureTransitionInvalid: 'disclosure.transition_invalid',
  advisoryInvalid: 'advisory.invalid',
  advisorySourceRefused: 'advisory.source_refused',
  advisoryFetchFailed: 'advisory.fetch_failed',
  advisoryRemediationInvalid: 'advisory.remediation_invalid',
  // binding (docs/binding.md)
  claimCodeInvalid: 'binding.claim_code_invalid',
  claimCodeUsed: 'binding.claim_code_used',
  claimLocked: 'binding.claim_locked',
  presenceRequired: 'binding.presence_required',
  presenceExpired: 'binding.presence_expired',
  presenceProofInvalid: 'binding.presence_proof_invalid',
  deviceAlreadyBound: 'binding.device_already_bound',
  bindingRoleInsufficient: 'binding.role_insufficient',
  invitationInvalid: 'binding.invitation_invalid',
  shareLimitReached: 'binding.share_limit_reached',
  commandNotAllowed: 'binding.command_not_allowed',
  liveStreamLimit: 'binding.live_stream_limit',
  /** Device-facing: button presses reported faster than binding.presenceReportsPerMinute. */
  presenceRateLimited: 'binding.presence_rate_limited',
  /** Device-facing: a reset confirmation naming no reset the platform sent this device. */
  resetUnknown: 'binding.reset_unknown',

  // device messages (MQTT error replies, protocol §3.2)
  payloadInvalid: 'payload.invalid',
  payloadNotJson: 'payload.not_json',
  payloadNotCbor: 'payload.not_cbor',
  payloadInvalidTimestamp: 'payload.invalid_timestamp',
  stateInvalid: 'state.invalid',
  stateTooLarge: 'state.too_large',
  stateVersionConflict: 'state.version_conflict',
  commandExpired: 'command.expired',

  // gateways (issue 14)
  /** The device is not a gateway: only a device an operator made a gateway registers or relays children. */
  gatewayNotAGateway: 'gateway.not_a_gateway',
  /** The child asked for is another gateway's, a directly connected device, or a gateway itself. */
  gatewayChildTaken: 'gateway.child_taken',
  /** The gateway holds its limit of children already. */
  gatewayChildrenLimit: 'gateway.children_limit',
  /** The gateway registers children faster than allowed. */
  gatewayRegistrationRate: 'gateway.registration_rate',
  /** A gateway cannot be a child, nor a child a gateway (one level only). */
  gatewayNested: 'gateway.nested',
  /** The device is not a child of that gateway. */
  gatewayNotAChild: 'gateway.not_a_child',
  /** The child's status closes this channel (a quarantined child keeps its update topics only). */
  gatewayChildNotActive: 'gateway.child_not_active',
  /** A gateway that still has children cannot stop being a gateway (detach or move them first). */
  gatewayHasChildren: 'gateway.has_children',
  /** A child device speaks through its gateway: it gets no certificate or key of its own. */
  gatewayChildNotEnrollable: 'gateway.child_not_enrollable',

  // telemetry
  telemetryTooManyBuckets: 'telemetry.too_many_buckets',
  telemetryInvalidRange: 'telemetry.invalid_range',
  /** Device-facing: the device reached its daily telemetry quota. */
  telemetryQuotaExceeded: 'telemetry.quota_exceeded',

  // pki
  bootstrapCaInvalid: 'pki.bootstrap_ca_invalid',
  bootstrapCaExists: 'pki.bootstrap_ca_exists',
  manufacturerCaInvalid: 'pki.manufacturer_ca_invalid',
  manufacturerCaExists: 'pki.manufacturer_ca_exists',
  manufacturerCaProofInvalid: 'pki.manufacturer_ca_proof_invalid',
  manufacturerCaRevoked: 'pki.manufacturer_ca_revoked',
  enrollmentPolicyInvalid: 'enrollment_policy.invalid',
  csrInvalid: 'pki.csr_invalid',
  weakKey: 'pki.weak_key',
  identityMismatch: 'pki.identity_mismatch',
  deviceIdInvalid: 'pki.device_id_invalid',
  alreadyRevoked: 'pki.already_revoked',
  certificateInvalid: 'pki.certificate_invalid',
  certificateNotCurrent: 'pki.certificate_not_current',
  chainInvalid: 'pki.chain_invalid',
  daysInvalid: 'pki.days_invalid',
  kindInvalid: 'pki.kind_invalid',
  serialInvalid: 'pki.serial_invalid',
  reasonInvalid: 'pki.reason_invalid',
  keyMismatch: 'pki.key_mismatch',
  notACa: 'pki.not_a_ca',
  requestPending: 'pki.request_pending',
  rootExists: 'pki.root_exists',
  rootOffline: 'pki.root_offline',
  rootOnToken: 'pki.root_on_token',
  rootIssuesDevices: 'pki.root_issues_devices',
  tokenLabelMissing: 'pki.token_label_missing',

  // keys
  keysUnavailable: 'keys.unavailable',
  caKeyMismatch: 'keys.ca_key_mismatch',
  caKeyMissing: 'keys.ca_key_missing',
  derivationMissing: 'keys.derivation_missing',
  hsmError: 'keys.hsm_error',
  hsmUnsupported: 'keys.hsm_unsupported',
  hsmNotConfigured: 'keys.hsm_not_configured',
  pkcs11UriInvalid: 'keys.pkcs11_uri_invalid',
  pkcs11PinMissing: 'keys.pkcs11_pin_missing',
  tokenKeyExists: 'keys.token_key_exists',
  keyFileExists: 'keys.key_file_exists',
  keyFileInvalid: 'keys.key_file_invalid',
  masterKeyInvalid: 'keys.master_key_invalid',
  masterKeyMissing: 'keys.master_key_missing',
  masterKeyConflict: 'keys.master_key_conflict',
  masterKeyExposed: 'keys.master_key_exposed',
  masterKeyFromEnv: 'keys.master_key_from_env',
  wrongMasterKey: 'keys.wrong_master_key',
  rotationIncomplete: 'keys.rotation_incomplete',
  notExportable: 'keys.not_exportable',
  passphraseMissing: 'keys.passphrase_missing',
  passphraseWeak: 'keys.passphrase_weak',
  passphraseWrong: 'keys.passphrase_wrong',
  sealedMalformed: 'keys.sealed_malformed',
  sealedTampered: 'keys.sealed_tampered',

  // updates (the agent's own refusals are UPDATE_ERROR_CODES)
  metadataRejected: 'update.metadata_rejected',
  onlineKeyMismatch: 'update.online_key_mismatch',
  onlineRotationPending: 'update.online_rotation_pending',
  onlineRotationNone: 'update.online_rotation_none',
  repositoryNotReady: 'update.repository_not_ready',
  concurrentChange: 'update.concurrent_change',
  imageMissing: 'update.image_missing',
  releaseExists: 'update.release_exists',
  releaseInvalid: 'update.release_invalid',
  releaseNotFound: 'update.release_not_found',
  sbomInvalid: 'update.sbom_invalid',
  blobHashMismatch: 'update.blob_hash_mismatch',
  blobInvalidHash: 'update.blob_invalid_hash',
  blobLengthMismatch: 'update.blob_length_mismatch',
  blobTooLarge: 'update.blob_too_large',
  blobQuotaExceeded: 'update.blob_quota_exceeded',
  rangeNotSatisfiable: 'update.range_not_satisfiable',
  rolloutInvalid: 'update.rollout_invalid',
  rolloutNotFound: 'update.rollout_not_found',
  rolloutStatus: 'update.rollout_status',
  rolloutEmpty: 'update.rollout_empty',
  rolloutStillFailing: 'update.rollout_still_failing',
  releaseRefused: 'update.release_refused',
  releasePolicyInvalid: 'update.release_policy_invalid',
  attestationInvalid: 'update.attestation_invalid',
  attestationUntrusted: 'update.attestation_untrusted',
  attestationSubjectMismatch: 'update.attestation_subject_mismatch',
  provenanceMissing: 'update.provenance_missing',
  provenanceBuilder: 'update.provenance_builder',
  provenanceSource: 'update.provenance_source',
  testsMissing: 'update.tests_missing',
  testsFailed: 'update.tests_failed',
  noDirectorRoot: 'update.no_director_root',
  deviceSilent: 'update.device_silent',
  updateChannelUnknown: 'update.channel_unknown',
  updateStatusInvalid: 'update.status_invalid',
  reportInvalid: 'update.report_invalid',
  reportReplayed: 'update.report_replayed',
  reportSignatureInvalid: 'update.report_signature_invalid',

  // consumer privacy (binding)
  privacyInvalid: 'binding.privacy_invalid',
  purposeUnknown: 'binding.purpose_unknown',
  purposeRequired: 'binding.purpose_required',

  // backup and restore (operations)
  backupInvalid: 'backup.invalid',
  backupTampered: 'backup.tampered',
  backupTooLarge: 'backup.too_large',
  backupKeyInvalid: 'backup.key_invalid',
  backupKeyExists: 'backup.key_exists',
  backupSignatureInvalid: 'backup.signature_invalid',
  backupWrongDeployment: 'backup.wrong_deployment',
  backupTargetNotEmpty: 'backup.target_not_empty',
  backupEngineMismatch: 'backup.engine_mismatch',
  backupToolFailed: 'backup.tool_failed',
  backupDrillFailed: 'backup.drill_failed',
  backupCopyFailed: 'backup.copy_failed',
} as const;

/** Every error code of the platform: the catalogue above and the update agent's refusals. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes] | UpdateErrorCode;

/** The HTTP error body: the one way one is built. */
export function errorBody(code: ErrorCode, message: string, details?: Record<string, unknown>): ErrorBody {
  return { error: details ? { code, message, details } : { code, message } };
}

/** The MQTT error reply to a message on `topic`: the one way one is built. */
export function errorReply(topic: string, code: ErrorCode, message: string): ErrorReply {
  return { topic, code, message };
}
