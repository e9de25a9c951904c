/** The assessment domain's errors, each with its stable code. */
import { ErrorCodes } from '@bulwark/protocol';
import { BulwarkError, ConflictError, NotFoundError, ValidationError } from '../errors.js';

export class FindingNotFoundError extends NotFoundError {
  constructor(id: string) {
    super(`Finding ${id}`, { id });
  }
}

/** A suppression needs a reason and an expiry in the future, within a year. */
export class SuppressionInvalidError extends ValidationError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, details, ErrorCodes.assessmentSuppressionInvalid);
  }
}

/** The action does not apply to the finding (no device, no certificate among its resources; a resolved finding). */
export class MitigationNotApplicableError extends ConflictError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, details, ErrorCodes.assessmentMitigationNotApplicable);
  }
}

/** The organization's webhook address is not one the platform will post to. */
export class WebhookInvalidError extends ValidationError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, details, ErrorCodes.assessmentWebhookInvalid);
  }
}

/** The webhook receiver did not answer 2xx in time. */
export class WebhookFailedError extends BulwarkError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCodes.assessmentWebhookFailed, message, 502, details);
  }
}

/** The disclosure report cannot move to that state (received → triaged → fixed / rejected), or changed meanwhile. */
export class DisclosureTransitionError extends ConflictError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, details, ErrorCodes.disclosureTransitionInvalid);
  }
}

/** A product's anomaly rules are not ones the detector can apply (window, threshold, metric). */
export class AnomalyRulesInvalidError extends ValidationError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, details, ErrorCodes.assessmentAnomalyRulesInvalid);
  }
}
