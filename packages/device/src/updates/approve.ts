/**
 * Step 3 of the agent's checks: the director's choice must be an image the image repository's
 * offline keys signed, byte for byte (length and SHA-256), by the delegated role of the device's
 * pinned product and saying that product, for this hardware, newer than what runs, and not below
 * the anti-rollback counter. What passes is the update the agent may install.
 */
import { productRoleOf, type ImageTargetCustom } from '@bulwark/protocol';
import type { TargetFile } from '@tufjs/models';
import semver from 'semver';
import type { DirectorTarget } from './director.js';
import {
  DirectorMismatchError,
  HardwareMismatchError,
  MetadataInvalidError,
  ProductMismatchError,
  ProductUnpinnedError,
  RollbackRefusedError,
  TargetUnknownError,
} from './errors.js';
import type { SignedTarget } from './repository.js';

export interface ApprovedUpdate {
  target: string;
  length: number;
  sha256: string;
  version: string;
  securityVersion: number;
  rolloutId: string;
}

export interface DeviceFacts {
  /** The product pinned at setup (null: a state directory from before products were pinned). */
  productId: string | null;
  hardwareId: string;
  /** Version of the running image (null: unknown, anything signed is newer). */
  runningVersion: string | null;
  /** The committed anti-rollback counter. */
  securityCounter: number;
}

export function approveTarget(director: DirectorTarget, signed: SignedTarget | undefined, device: DeviceFacts): ApprovedUpdate {
  if (device.productId === null) throw new ProductUnpinnedError();
  if (!signed) throw new TargetUnknownError(director.name);
  const image = signed.file;
  if (image.length !== director.length || image.hashes.sha256 !== director.sha256) {
    throw new DirectorMismatchError(
      `The director's ${director.name} (${director.length} bytes, sha256 ${director.sha256}) is not the signed image (${image.length} bytes, sha256 ${image.hashes.sha256})`,
      {
        target: director.name,
      },
    );
  }
  if (director.custom.hardwareId !== device.hardwareId) {
    throw new DirectorMismatchError(
      `The director chose ${director.name} for hardware ${director.custom.hardwareId}; this device is ${device.hardwareId}`,
    );
  }
  const custom = imageCustomOf(image);
  const role = productRoleOf(device.productId);
  if (signed.role !== role || custom.product !== device.productId) {
    throw new ProductMismatchError(
      `${director.name} is signed by role ${signed.role ?? '(a nested delegation)'} for product ${custom.product}; this device is product ${device.productId} (role ${role})`,
      {
        role: signed.role,
        product: custom.product,
      },
    );
  }
  if (!custom.hardwareIds.includes(device.hardwareId)) throw new HardwareMismatchError(device.hardwareId, custom.hardwareIds);
  if (device.runningVersion !== null && !semver.gt(custom.version, device.runningVersion)) {
    throw new RollbackRefusedError(`${director.name} is version ${custom.version}, not newer than the running ${device.runningVersion}`, {
      version: custom.version,
      running: device.runningVersion,
    });
  }
  if (custom.securityVersion < device.securityCounter) {
    throw new RollbackRefusedError(
      `${director.name} has securityVersion ${custom.securityVersion}, below the device's anti-rollback counter ${device.securityCounter}`,
      {
        securityVersion: custom.securityVersion,
        counter: device.securityCounter,
      },
    );
  }
  return {
    target: director.name,
    length: image.length,
    sha256: director.sha256,
    version: custom.version,
    securityVersion: custom.securityVersion,
    rolloutId: director.custom.rolloutId,
  };
}

/** The release-signed `custom` of an image target, validated (signed does not mean well-formed). */
function imageCustomOf(image: TargetFile): ImageTargetCustom {
  const custom = image.custom as Partial<ImageTargetCustom>;
  const valid =
    typeof custom.product === 'string' &&
    typeof custom.version === 'string' &&
    semver.valid(custom.version) !== null &&
    Number.isSafeInteger(custom.securityVersion) &&
    (custom.securityVersion as number) >= 0 &&
    Array.isArray(custom.hardwareIds) &&
    custom.hardwareIds.every((h) => typeof h === 'string');
  if (!valid)
    throw new MetadataInvalidError(`${image.path}: custom must carry a product, a semantic version, a securityVersion ≥ 0 and hardwareIds`);
  return custom as ImageTargetCustom;
}
