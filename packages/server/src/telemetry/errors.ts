/**
 * Errors of the telemetry query API, each with a stable code. An unknown device, or one of another
 * organization, is the platform's ordinary NotFoundError (the same answer either way).
 */
import { ErrorCodes } from '@bulwark/protocol';
import { ValidationError } from '../errors.js';

/** The range divided by the interval makes more buckets than one query may compute. */
export class TooManyBucketsError extends ValidationError {
  constructor(buckets: number, max: number, smallestInterval: string) {
    super(
      `The range holds ${buckets} buckets of this interval; at most ${max} are computed per query: use an interval of at least ${smallestInterval} or a shorter range`,
      { buckets, max, smallestInterval },
      ErrorCodes.telemetryTooManyBuckets,
    );
  }
}

/** `from` is not before `to`. */
export class InvalidRangeError extends ValidationError {
  constructor(from: number, to: number) {
    super(
      `from (${new Date(from).toISOString()}) must be before to (${new Date(to).toISOString()})`,
      { from, to },
      ErrorCodes.telemetryInvalidRange,
    );
  }
}
