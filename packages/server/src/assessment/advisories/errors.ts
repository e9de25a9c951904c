/** The advisories' errors, each with its stable code. */
import { ErrorCodes } from '@bulwark/protocol';
import { BulwarkError, ConflictError, NotFoundError, ValidationError } from '../../errors.js';

/** An OSV record is malformed or beyond the bounds an import accepts; the message names the first problem by its path. */
export class AdvisoryInvalidError extends ValidationError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, details, ErrorCodes.advisoryInvalid);
  }
}

/** The advisory source is not one the platform reads: not https, or on the deployment's own network. */
export class AdvisorySourceRefusedError extends ValidationError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, details, ErrorCodes.advisorySourceRefused);
  }
}

/** The advisory URL did not answer 200 with OSV JSON in time. */
export class AdvisoryFetchFailedError extends BulwarkError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCodes.advisoryFetchFailed, message, 502, details);
  }
}

export class AdvisoryNotFoundError extends NotFoundError {
  constructor(id: string) {
    super(`Advisory ${id}`, { id });
  }
}

/** The remediation cannot start: the fixed release is itself affected, or of a product no affected release belongs to. */
export class RemediationInvalidError extends ConflictError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, details, ErrorCodes.advisoryRemediationInvalid);
  }
}
