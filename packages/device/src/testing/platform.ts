/**
 * For the device SDK's tests: a real platform node (HTTPS API and MQTT broker over TLS on
 * ephemeral ports, SQLite) from the server's own test helpers, with a product to register devices
 * under, and (re-exported from the server harness) a TCP fault injector to stand between a device and the broker.
 */
import { join } from 'node:path';
import { cliActor, ENGINES, organizationIdOf, testProduct, startTestPlatform, type TestPlatform } from '@bulwark/server/testing';
import { enroll } from '../est.js';
import { tempDir } from './temp.js';

export { tempDir };

/** Device tests exercise the device side; the storage engines are covered by the server's tests. */
export const SQLITE = ENGINES.find((e) => e.engine === 'sqlite')!;

export interface DevicePlatform {
  t: TestPlatform;
  org: string;
  product: string;
  apiUrl: string;
  brokerUrl: string;
  /** Registers a pending device (as an operator would); returns its ID. */
  register(serial?: string): Promise<string>;
  /** A one-time EST enrollment token for the device. */
  enrollmentToken(deviceId: string): Promise<string>;
  /** A registered device enrolled over EST into a fresh identity directory (removed by close()). */
  enrolledDevice(): Promise<{ deviceId: string; dir: string }>;
  /** Telemetry rows stored for the device. */
  stored(deviceId: string): Promise<number>;
  close(): Promise<void>;
}

let serials = 0;

export async function startDevicePlatform(overrides: Record<string, unknown> = {}): Promise<DevicePlatform> {
  const t = await startTestPlatform(SQLITE, { mqtt: { port: 0, watchIntervalMs: 100 }, ...overrides });
  const org = await organizationIdOf(t.platform, t.org);
  const product = await testProduct(t.platform, org);
  const actor = cliActor(org, 'test');
  const temps: { remove(): void }[] = [];
  const platform: DevicePlatform = {
    t,
    org,
    product,
    apiUrl: `https://localhost:${t.server.port}`,
    brokerUrl: `mqtts://localhost:${t.server.mqtt!.port}`,
    register: async (serial = `DEV-${process.pid}-${++serials}`) =>
      (await t.platform.devices.service.register(actor, { serial, productId: product })).id,
    enrollmentToken: async (deviceId) => (await t.platform.devices.enrollment.createEnrollmentToken(actor, deviceId)).token,
    enrolledDevice: async () => {
      const deviceId = await platform.register();
      const temp = tempDir('device');
      temps.push(temp);
      const dir = join(temp.dir, 'identity');
      await enroll({ apiUrl: platform.apiUrl, ca: t.ca, token: await platform.enrollmentToken(deviceId), deviceId, dir });
      return { deviceId, dir };
    },
    stored: (deviceId) => t.platform.telemetry.store.count(deviceId),
    close: async () => {
      await t.close();
      for (const temp of temps) temp.remove();
    },
  };
  return platform;
}

export { eventually, presenceOnline, settle } from '@bulwark/server/testing';

export { NetworkFault } from '@bulwark/server/testing';
