/**
 * Errors of the device registry, each with a stable code. An unknown device or product, or one of
 * another organization, is the platform's ordinary NotFoundError (the same answer either way).
 */
import { ErrorCodes } from '@bulwark/protocol';
import { BulwarkError, ConflictError, ForbiddenError, ValidationError } from '../errors.js';
import type { FieldProblem } from './model.js';
import type { DeviceStatus } from './model.js';

/** The lifecycle forbids this change (a retired device, or the status it already has). */
export class InvalidTransitionError extends ConflictError {
  constructor(from: DeviceStatus, to: DeviceStatus, allowed: readonly DeviceStatus[]) {
    super(
      `A ${from} device cannot become ${to}; from ${from} it may become ${allowed.length ? allowed.join(', ') : 'nothing (retired is final)'}`,
      { from, to, allowed },
      ErrorCodes.deviceInvalidTransition,
    );
  }
}

/** Another device of the organization already has this serial. */
export class SerialTakenError extends ConflictError {
  constructor(serial: string) {
    super(
      `A device with serial "${serial}" is already registered in this organization`,
      { field: 'serial', serial },
      ErrorCodes.deviceSerialTaken,
    );
  }
}

/** A product of the same name exists in the organization. */
export class ProductExistsError extends ConflictError {
  constructor(name: string) {
    super(`A product named "${name}" already exists in this organization`, { field: 'name', name }, ErrorCodes.productExists);
  }
}

export interface RowError {
  /** 1-based line of the file (CSV counts its header line). */
  line: number;
  serial?: string;
  problems: FieldProblem[];
}

/** Reported rows at most; the count says how many failed in all. */
export const MAX_REPORTED_ROWS = 1000;

/** At least one row of an import is invalid: nothing was imported; the report names every bad line. */
export class ImportRejectedError extends ValidationError {
  constructor(rows: number, errors: RowError[]) {
    const first = errors[0]!;
    super(
      `Nothing was imported: ${errors.length} of ${rows} rows are invalid (first at line ${first.line}: ${first.problems.map((p) => `${p.field} ${p.problem}`).join('; ')})`,
      { rows, failed: errors.length, errors: errors.slice(0, MAX_REPORTED_ROWS) },
      ErrorCodes.deviceImportRejected,
    );
  }
}

/** The import is larger than the row or byte limit; nothing was imported. */
export class ImportTooLargeError extends BulwarkError {
  constructor(limit: { maxRows?: number; limitBytes?: number }) {
    super(
      ErrorCodes.requestTooLarge,
      limit.maxRows
        ? `An import may hold at most ${limit.maxRows} rows; split the file`
        : `The import is larger than ${limit.limitBytes} bytes; split the file`,
      413,
      limit,
    );
  }
}

/** A disabled or retired device may not be given a certificate. */
export class DeviceNotEnrollableError extends ConflictError {
  constructor(deviceId: string, status: DeviceStatus) {
    super(
      `Device ${deviceId} is ${status}: only a pending, active or quarantined device can be enrolled`,
      { deviceId, status },
      'device.not_enrollable',
    );
  }
}

/** The device is not a gateway (an operator makes one with devices:write; a device cannot make itself one). */
export class NotAGatewayError extends ForbiddenError {
  constructor(deviceId: string) {
    super(
      `Device ${deviceId} is not a gateway: an operator must make it one before it registers or relays children`,
      ErrorCodes.gatewayNotAGateway,
      {
        deviceId,
      },
    );
  }
}

/** The device asked for as a child is another gateway's, a directly connected device, or a gateway. */
export class ChildTakenError extends ConflictError {
  constructor(serial: string, why: 'other_gateway' | 'direct' | 'gateway') {
    const reason = {
      other_gateway: 'is attached to another gateway',
      direct: 'is a directly connected device with its own credential',
      gateway: 'is a gateway itself',
    }[why];
    super(
      `The device with serial "${serial}" ${reason}: it cannot be registered as this gateway's child`,
      { serial, why },
      ErrorCodes.gatewayChildTaken,
    );
  }
}

/** The gateway holds its limit of children. */
export class ChildrenLimitError extends ConflictError {
  constructor(limit: number) {
    super(`A gateway may have at most ${limit} children; detach one first`, { limit }, ErrorCodes.gatewayChildrenLimit);
  }
}

/** A gateway cannot be a child, nor a child a gateway. */
export class NestedGatewayError extends ConflictError {
  constructor(deviceId: string, message: string) {
    super(message, { deviceId }, ErrorCodes.gatewayNested);
  }
}

/** The device is not a child of that gateway. */
export class NotAChildError extends ConflictError {
  constructor(gatewayId: string, childId: string) {
    super(`Device ${childId} is not a child of gateway ${gatewayId}`, { gatewayId, childId }, ErrorCodes.gatewayNotAChild);
  }
}

/** Making a device with children an ordinary device again. */
export class GatewayHasChildrenError extends ConflictError {
  constructor(gatewayId: string, children: number) {
    super(
      `Gateway ${gatewayId} still has ${children} children: detach or move them first`,
      { gatewayId, children },
      ErrorCodes.gatewayHasChildren,
    );
  }
}

/** The gateway registers children faster than `gateways.registrationsPerMinute`. */
export class RegistrationRateError extends BulwarkError {
  constructor(perMinute: number, retryAfterSeconds: number) {
    super(
      ErrorCodes.gatewayRegistrationRate,
      `A gateway may register at most ${perMinute} children a minute; retry in ${retryAfterSeconds} s`,
      429,
      { perMinute, retryAfterSeconds },
    );
  }
}

/** A child speaks through its gateway: it is given no certificate or key of its own. */
export class ChildNotEnrollableError extends ConflictError {
  constructor(deviceId: string, gatewayId: string) {
    super(
      `Device ${deviceId} is a child of gateway ${gatewayId}: it speaks through its gateway and gets no credential of its own (detach it first)`,
      { deviceId, gatewayId },
      ErrorCodes.gatewayChildNotEnrollable,
    );
  }
}

/**
 * A device was not registered just in time (or through an enrollment group's allow-list): the code
 * says why (jit.*), the same code the audit entry and the node's log carry.
 */
export class RegistrationRefusedError extends BulwarkError {
  constructor(code: RegistrationRefusal, message: string, status = 403) {
    super(code, message, status);
  }
}

export type RegistrationRefusal =
  | typeof ErrorCodes.jitUnknownCa
  | typeof ErrorCodes.jitCaRevoked
  | typeof ErrorCodes.jitCertificateInvalid
  | typeof ErrorCodes.jitIdentityInvalid
  | typeof ErrorCodes.jitIdentityConflict
  | typeof ErrorCodes.jitSerialNotAllowed
  | typeof ErrorCodes.jitAddressNotAllowed
  | typeof ErrorCodes.jitQuotaExceeded
  | typeof ErrorCodes.jitBusy
  | typeof ErrorCodes.jitPendingApproval
  | typeof ErrorCodes.jitDeviceNotEnrollable;
