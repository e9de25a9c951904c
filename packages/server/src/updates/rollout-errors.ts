/**
 * Errors of the director and rollouts, each with a stable `update.*` code.
 */
import { UpdateError } from './errors.js';

/** A rollout that does not exist in the caller's organization (another organization's is the same 404). */
export class RolloutNotFoundError extends UpdateError {
  constructor(rolloutId: string) {
    super('update.rollout_not_found', `Rollout ${rolloutId} was not found`, 404);
  }
}

/** The release a rollout names does not exist in the caller's organization. */
export class RolloutReleaseNotFoundError extends UpdateError {
  constructor(releaseId: string) {
    super('update.release_not_found', `Release ${releaseId} was not found`, 404);
  }
}

/** The release a rollout names was refused by its product's release policy: it was never published. */
export class RolloutReleaseRefusedError extends UpdateError {
  constructor(refusalId: string, code: string, reason: string) {
    super(
      'update.release_refused',
      `Release ${refusalId} was refused by its product's release policy (${code}: ${reason}); it cannot be rolled out`,
      409,
      {
        refusalId,
        code,
      },
    );
  }
}

/** A rollout definition that breaks a rule (selector, phases, thresholds). */
export class RolloutInvalidError extends UpdateError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('update.rollout_invalid', message, 400, details);
  }
}

/** The selection matched no device that can join (wrong product, status, or all in other rollouts). */
export class RolloutEmptyError extends UpdateError {
  constructor(details: Record<string, unknown>) {
    super(
      'update.rollout_empty',
      "The selector matched no active or quarantined device of the release's product outside another unfinished rollout",
      409,
      details,
    );
  }
}

/** An operator action the rollout's status does not allow (pausing a completed rollout). */
export class RolloutStatusError extends UpdateError {
  constructor(action: string, status: string) {
    super('update.rollout_status', `Cannot ${action} a rollout that is ${status}`, 409, { status });
  }
}

/** Resuming a halted rollout whose current phase still fails at or above its failure threshold. */
export class RolloutStillFailingError extends UpdateError {
  constructor(rate: number, threshold: number) {
    super(
      'update.rollout_still_failing',
      `The current phase still fails at ${(rate * 100).toFixed(1)} %, at or above the failure threshold (${(threshold * 100).toFixed(1)} %): ` +
        'raise failureThreshold (PATCH the rollout) or retry the failed devices before resuming',
      409,
      { failureRate: rate, failureThreshold: threshold },
    );
  }
}

/** The director root of the organization has not been uploaded yet (the ceremony comes first), or not in the version asked for. */
export class NoDirectorRootError extends UpdateError {
  constructor(version?: number) {
    super(
      'update.no_director_root',
      version === undefined
        ? 'This organization has no director root yet: upload it after the key ceremony (POST /api/v1/updates/repository/root)'
        : `This organization has no director root version ${version}: versions run from 1 to that of root.json`,
      404,
      version === undefined ? undefined : { version },
    );
  }
}
