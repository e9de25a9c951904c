/**
 * The error body every Bulwark HTTP endpoint answers with, and the stable codes it carries.
 * Codes are part of the public contract: clients branch on them, so they never change meaning.
 */
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
  requestInvalid: 'request.invalid',
  requestTooLarge: 'request.too_large',
  requestUnsupportedMediaType: 'request.unsupported_media_type',
  requestUriTooLong: 'request.uri_too_long',
  requestHeadersTooLarge: 'request.headers_too_large',
  requestTimeout: 'request.timeout',
  serviceUnavailable: 'service.unavailable',
  notFound: 'resource.not_found',
  conflict: 'resource.conflict',
  rateLimited: 'request.rate_limited',
  internal: 'internal.error',
  unauthenticated: 'auth.unauthenticated',
  invalidCredentials: 'auth.invalid_credentials',
  forbidden: 'auth.forbidden',
  csrfFailed: 'auth.csrf_failed',
  mfaRequired: 'auth.mfa_required',
  mfaEnrollmentRequired: 'auth.mfa_enrollment_required',
  mfaInvalid: 'auth.mfa_invalid',
  stepUpRequired: 'auth.step_up_required',
  passwordChangeRequired: 'auth.password_change_required',
  passwordRejected: 'auth.password_rejected',
  tokenInvalid: 'auth.token_invalid',
  emailNotVerified: 'auth.email_not_verified',
  deviceInvalidTransition: 'device.invalid_transition',
  deviceSerialTaken: 'device.serial_taken',
  deviceImportRejected: 'device.import_rejected',
  deviceAuthFailed: 'device.auth_failed',
  enrollmentGroupExists: 'enrollment_group.exists',
  enrollmentGroupDisabled: 'enrollment_group.disabled',
  deviceCertificateRequired: 'device.certificate_required',
  deviceNotEnrollable: 'device.not_enrollable',
  bootstrapCaInvalid: 'pki.bootstrap_ca_invalid',
  bootstrapCaExists: 'pki.bootstrap_ca_exists',
  productExists: 'product.exists',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];
