/**
 * Errors of the updates domain, each with a stable `update.*` code. Repository and metadata
 * errors live here; releases and rollouts declare theirs beside their services, extending these.
 */
import { BulwarkError } from '../errors.js';

/** Base of every updates error. */
export class UpdateError extends BulwarkError {}

/** Signed metadata that fails a signature, threshold, version or expiry check. */
export class MetadataRejectedError extends UpdateError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('update.metadata_rejected', message, 400, details);
  }
}
