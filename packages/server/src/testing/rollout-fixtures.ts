/**
 * Test fixtures of the director and rollouts: a release row as the release service would leave it
 * (inserted directly: the signed-release path belongs to the releases tests), devices of a
 * product with a hardware revision, a device identity as the broker hands it over, and a status
 * message and a signed version report as an agent would publish them.
 */
import { createHash, randomBytes, sign } from 'node:crypto';
import { canonicalize } from '@tufjs/canonical-json';
import type { UpdateStatus, VersionReport } from '@bulwark/protocol';
import { cliActor } from '../accounts/roles.js';
import type { DeviceIdentity } from '../devices/identity.js';
import type { Platform } from '../platform.js';
import { newId } from '../tokens.js';

/**
 * Config for a platform whose rollouts only the test advances (`rollouts.tick()` on its manual
 * clock): the server's own ticker runs on real time every `rolloutTickSeconds` and, on a slow
 * engine, could tick between the test moving the clock and its own tick.
 */
export const ROLLOUTS_TICKED_BY_TEST = { updates: { rolloutTickSeconds: 3600 } };

export interface TestRelease {
  id: string;
  version: string;
  targetName: string;
  sha256: string;
  length: number;
}

/** A release of `image` (an uploaded blob), or of 64 random bytes nobody uploaded, with `sbom` (default `{}`) stored. */
export async function insertRelease(
  platform: Platform,
  organizationId: string,
  productId: string,
  version: string,
  hardwareIds = ['hw-a'],
  image?: { sha256: string; length: number },
  sbom: unknown = {},
): Promise<TestRelease> {
  const bytes = randomBytes(64);
  const named = image ?? { sha256: createHash('sha256').update(bytes).digest('hex'), length: bytes.length };
  const release = { id: newId(), version, targetName: `${productId}/firmware-${version}.bin`, ...named };
  await platform.db
    .insertInto('firmware_releases')
    .values({
      id: release.id,
      organization_id: organizationId,
      product_id: productId,
      version,
      security_version: 1,
      hardware_ids: JSON.stringify(hardwareIds),
      target_name: release.targetName,
      sha256: release.sha256,
      length: release.length,
      notes: '',
      sbom: JSON.stringify(sbom),
      created_by: null,
      created_at: platform.clock.now(),
    })
    .execute();
  return release;
}

/** A product with a hardware revision (what a device without `attributes.hardwareId` runs on). */
export async function hardwareProduct(
  platform: Platform,
  organizationId: string,
  name: string,
  hardwareRevision = 'hw-a',
): Promise<string> {
  const product = await platform.devices.service.createProduct(cliActor(organizationId, 'test'), { name, hardwareRevision });
  return product.id;
}

/**
 * The console tests' rollout: `count` devices tagged `fleet` of a new product `Thermostat`, a
 * release 2.0.0 of it, and a running rollout `spring-update` in two phases (10 % soaking an hour, then 100 %).
 */
export async function springUpdate(platform: Platform, organizationId: string, prefix: string, count: number) {
  const product = await hardwareProduct(platform, organizationId, 'Thermostat');
  const deviceIds = await registerDevices(platform, organizationId, product, prefix, count, { tags: ['fleet'] });
  const release = await insertRelease(platform, organizationId, product, '2.0.0');
  const rollout = await platform.updates.rollouts.create(cliActor(organizationId, 'test'), {
    releaseId: release.id,
    name: 'spring-update',
    selector: { tags: ['fleet'] },
    phases: [
      { percent: 10, soakSeconds: 3600 },
      { percent: 100, soakSeconds: 0 },
    ],
  });
  return { rolloutId: rollout.id, deviceIds };
}

/** Registered and activated devices (as enrollment leaves them), unless `pending` is asked for. */
export async function registerDevices(
  platform: Platform,
  organizationId: string,
  productId: string,
  prefix: string,
  count: number,
  { pending = false, ...extra }: { tags?: string[]; group?: string; attributes?: Record<string, unknown>; pending?: boolean } = {},
): Promise<string[]> {
  const actor = cliActor(organizationId, 'test');
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const { id } = await platform.devices.service.register(actor, { serial: `${prefix}-${i}`, productId, ...extra });
    if (!pending) await platform.devices.service.transition(actor, id, 'activate');
    ids.push(id);
  }
  return ids;
}

export function identityOf(organizationId: string, deviceId: string, productId: string): DeviceIdentity {
  return {
    organizationId,
    deviceId,
    serial: deviceId,
    productId,
    status: 'active',
    credential: { type: 'symmetric_key', keyVersion: 1, tokenExpiresAt: Number.MAX_SAFE_INTEGER },
  };
}

export function statusPayload(
  rolloutId: string,
  state: UpdateStatus['state'],
  target: string,
  error?: { code: string; message: string },
): Buffer {
  return Buffer.from(JSON.stringify({ rolloutId, state, target, ts: Date.now(), ...(error ? { error } : {}) }));
}

/** A signed version report as an agent publishes it: `key` (PKCS#8 PEM) signs the canonical JSON of `report`. */
export function signedReport(report: VersionReport, key: string): string {
  const signature = sign('sha256', Buffer.from(canonicalize(report)), { key, dsaEncoding: 'der' }).toString('base64');
  return JSON.stringify({ report, signature });
}
