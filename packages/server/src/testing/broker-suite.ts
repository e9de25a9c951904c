/**
 * A test suite's MQTT world: its `before` starts a platform node with the broker on an ephemeral
 * port, an organization with a product to provision devices under, and an OpenSSL scratch
 * directory holding the CA (for mosquitto clients); its `after` ends the clients the suite kept
 * and stops everything. Read the fields inside tests (they are set once `before` has run).
 */
import { after, before } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { EngineUnderTest } from './engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from './devices.js';
import { Openssl } from './openssl.js';
import { startTestPlatform, type TestPlatform } from './server.js';

export interface BrokerSuite {
  t: TestPlatform;
  org: string;
  product: string;
  /** The broker's mutual-TLS port. */
  port: number;
  /** Scratch directory for mosquitto clients' files; holds `ca.pem`. */
  ssl: Openssl;
  /** Clients ended after the suite. */
  clients: MqttClient[];
  /** A new active device with its key and certificate. */
  device(): Promise<TestDevice>;
  /** Telemetry rows stored for the device. */
  stored(deviceId: string): Promise<number>;
}

/** `config` overrides other sections of the node's config than `mqtt`. */
export function useBrokerSuite(
  engine: EngineUnderTest,
  mqtt: Record<string, unknown>,
  serialPrefix: string,
  config: Record<string, unknown> = {},
): BrokerSuite {
  let serial = 0;
  const suite = {
    ssl: new Openssl(),
    clients: [] as MqttClient[],
    device: () => provisionTestDevice(suite.t.platform, suite.org, suite.product, `${serialPrefix}-${++serial}`),
    stored: (deviceId: string) => suite.t.platform.telemetry.store.count(deviceId),
  } as BrokerSuite;
  before(async () => {
    suite.t = await startTestPlatform(engine, { ...config, mqtt: { port: 0, ...mqtt } });
    suite.org = await organizationIdOf(suite.t.platform, suite.t.org);
    suite.product = await testProduct(suite.t.platform, suite.org);
    suite.port = suite.t.server.mqtt!.port;
    suite.ssl.write('ca.pem', suite.t.ca);
  });
  after(async () => {
    for (const c of suite.clients) c.end(true);
    suite.ssl.close();
    await suite.t?.close();
  });
  return suite;
}
