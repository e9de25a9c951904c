/**
 * For the device SDK's tests: a real platform node (HTTPS API and MQTT broker over TLS on
 * ephemeral ports, SQLite) from the server's own test helpers, with a product to register devices
 * under, and a TCP fault injector to stand between a device and the broker.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
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

/**
 * A TCP relay in front of the broker that can cut the network: `cut()` drops every connection
 * and refuses new ones (the port stays bound, connections are reset at once), `restore()` relays
 * again. TLS runs end to end through it, device to broker.
 */
export class NetworkFault {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private down = false;
  /** TCP connections attempted while the network was cut. */
  refused = 0;
  /** TCP connections relayed. */
  relayed = 0;

  constructor(private readonly target: number) {}

  async listen(): Promise<number> {
    this.server = createServer((inbound) => {
      if (this.down) {
        this.refused++;
        inbound.resetAndDestroy();
        return;
      }
      this.relayed++;
      const outbound = connect(this.target, '127.0.0.1');
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return (this.server!.address() as { port: number }).port;
  }

  cut(): void {
    this.down = true;
    for (const s of this.sockets) s.resetAndDestroy();
  }

  restore(): void {
    this.down = false;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
