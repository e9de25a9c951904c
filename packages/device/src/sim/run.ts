/**
 * The simulator: N devices in one process, each with its own P-256 key, its own certificate
 * (registered and issued through the operator API with an API key) and its own mutual-TLS MQTT
 * connection through the SDK's DeviceClient, each publishing QoS 1 telemetry at `rate` messages
 * per second **per device** for `durationSeconds`. Reports progress while it runs and a summary
 * at the end; `ok` is false when a device never connected, a message was refused or not
 * acknowledged.
 *
 * Gateway mode (`gateways`, `childrenPerGateway`): `devices` is ignored; each of the gateways is
 * provisioned like a device, made a gateway through the operator API, connects, registers its
 * children over MQTT (GatewayClient) and publishes each child's telemetry at `rate` per child
 * over its own connection.
 */
import { randomBytes } from 'node:crypto';
import { DeviceClient } from '../client.js';
import { QueueFullError } from '../errors.js';
import { GatewayClient, type ChildHandle } from '../gateway.js';
import { createCsr, generateDeviceKey } from '../keys.js';
import { inBatches } from './batches.js';
import { CERTIFICATE_BATCH, OperatorApi } from './operator-api.js';

export interface SimOptions {
  apiUrl: string;
  /** Default: the API's host on port 8883. */
  brokerUrl?: string | readonly string[];
  ca: string;
  apiKey: string;
  devices: number;
  /** Messages per second per device. */
  rate: number;
  durationSeconds: number;
  /** Product to register the devices under; default a product named "bulwark-sim" (created if needed). */
  productId?: string;
  /** Called about once a second, and once at the end. */
  onProgress?: (progress: SimProgress) => void;
  /** Devices connecting at the same time (default 50). */
  connectConcurrency?: number;
  /** Wait this long after the run for outstanding acknowledgements (default 10 s). */
  drainSeconds?: number;
  /** Gateway mode: this many gateways (instead of `devices`), each relaying `childrenPerGateway` children. */
  gateways?: number;
  childrenPerGateway?: number;
}

export interface SimProgress {
  phase: 'provisioning' | 'connecting' | 'publishing' | 'draining' | 'done';
  devices: number;
  provisioned: number;
  connected: number;
  sent: number;
  acked: number;
  errors: number;
  /** Acknowledged messages per second over the last interval. */
  rate: number;
  elapsedSeconds: number;
  /** Gateway mode: children registered through the gateways (and publishing). */
  children?: number;
}

export interface SimSummary extends SimProgress {
  ok: boolean;
  /** Acknowledged messages per second over the publishing phase. */
  averageRate: number;
  failures: string[];
}

const MAX_FAILURES_KEPT = 20;

export async function runSimulation(options: SimOptions): Promise<SimSummary> {
  const started = Date.now();
  const api = new OperatorApi(options.apiUrl, options.ca, options.apiKey);
  const brokerUrl = options.brokerUrl ?? `mqtts://${new URL(options.apiUrl).hostname}:8883`;
  const gateways = options.gateways ?? 0;
  const perGateway = options.childrenPerGateway ?? 0;
  const progress: SimProgress = {
    phase: 'provisioning',
    devices: gateways > 0 ? gateways : options.devices,
    provisioned: 0,
    connected: 0,
    sent: 0,
    acked: 0,
    errors: 0,
    rate: 0,
    elapsedSeconds: 0,
  };
  const failures: string[] = [];
  const fail = (what: string) => {
    progress.errors++;
    if (failures.length < MAX_FAILURES_KEPT) failures.push(what);
  };
  const clients: DeviceClient[] = [];
  /** Per client, messages acknowledged before publishing started (a gateway's registrations): not telemetry. */
  const before = new Map<DeviceClient, number>();
  const timers: NodeJS.Timeout[] = [];
  let lastAcked = 0;
  let lastTick = started;
  const report = () => {
    const now = Date.now();
    progress.acked = clients.reduce((n, c) => n + c.stats.acked - (before.get(c) ?? 0), 0);
    progress.rate = Math.round(((progress.acked - lastAcked) * 1000) / Math.max(1, now - lastTick));
    progress.elapsedSeconds = Math.round((now - started) / 100) / 10;
    lastAcked = progress.acked;
    lastTick = now;
    options.onProgress?.({ ...progress });
  };
  const ticker = setInterval(report, 1000);
  try {
    const productId = options.productId ?? (await api.productNamed('bulwark-sim'));
    const run = randomBytes(4).toString('hex');
    const identities = await provision(api, productId, run, progress.devices, () => progress.provisioned++);
    if (gateways > 0) await inBatches(identities, 8, (identity) => api.makeGateway(identity.deviceId));

    progress.phase = 'connecting';
    for (const identity of identities) {
      const client = new DeviceClient({
        brokerUrl,
        deviceId: identity.deviceId,
        ca: options.ca,
        credentials: { type: 'certificate', key: identity.key, cert: identity.cert },
        backoff: { baseMs: 500, capMs: 10_000 },
      });
      client.on('errorReply', (reply: { code: string; message: string }) => fail(`${identity.deviceId}: ${reply.code} ${reply.message}`));
      client.on('error', (error: Error) => fail(`${identity.deviceId}: ${error.message}`));
      client.on('connected', () => progress.connected++);
      client.on('disconnected', () => progress.connected--);
      clients.push(client);
    }
    const relays = gateways > 0 ? clients.map((client) => new GatewayClient(client)) : [];
    await inBatches(clients, options.connectConcurrency ?? 50, (client) => client.connect().catch(() => undefined));
    // Gateway mode: each gateway registers its children over its own connection; they are what publishes.
    const speakers: { deviceId: string; send: (values: Record<string, number>) => unknown; owner: DeviceClient }[] = [];
    if (gateways > 0) {
      progress.children = 0;
      await inBatches(relays, 8, async (relay, g) => {
        if (relay.client.failure) return;
        for (let c = 0; c < perGateway; c++) {
          try {
            const child: ChildHandle = await relay.registerChild(`sim-${run}-g${g}-c${c}`, { productId });
            speakers.push({ deviceId: child.deviceId, send: (values) => child.sendTelemetry(values), owner: relay.client });
            progress.children!++;
          } catch (error) {
            fail(`${relay.client.deviceId}: ${(error as Error).message}`);
          }
        }
        await relay.client.drained().catch(() => undefined);
        before.set(relay.client, relay.client.stats.acked);
      });
    } else
      for (const client of clients)
        speakers.push({ deviceId: client.deviceId, send: (values) => client.sendTelemetry(values), owner: client });

    progress.phase = 'publishing';
    const publishStart = Date.now();
    const interval = 1000 / options.rate;
    for (const speaker of speakers) {
      if (speaker.owner.failure) continue;
      let n = 0;
      const tick = () => {
        try {
          speaker.send({ seq: n++, temperature: Math.round((20 + Math.random() * 5) * 100) / 100 });
          progress.sent++;
        } catch (error) {
          if (error instanceof QueueFullError) fail(`${speaker.deviceId}: ${error.message}`);
          else throw error;
        }
      };
      // Spread the devices over the interval so they do not all publish in the same millisecond.
      timers.push(setTimeout(() => timers.push(setInterval(tick, interval)), Math.random() * interval));
    }
    await new Promise((resolve) => setTimeout(resolve, options.durationSeconds * 1000));
    const publishSeconds = (Date.now() - publishStart) / 1000;
    for (const timer of timers) clearInterval(timer);

    progress.phase = 'draining';
    const drainMs = (options.drainSeconds ?? 10) * 1000;
    const drained = await Promise.all(
      clients.map((c) =>
        c.failure
          ? Promise.resolve(true)
          : c.drained(drainMs).then(
              () => true,
              () => false,
            ),
      ),
    );
    drained.forEach((ok, i) => ok || fail(`${clients[i]!.deviceId}: ${clients[i]!.queue.size} messages not acknowledged`));
    const everConnected = clients.filter((c) => c.stats.connects > 0).length;
    if (everConnected < progress.devices) fail(`${progress.devices - everConnected} of ${progress.devices} devices never connected`);
    if (gateways > 0 && progress.children !== gateways * perGateway)
      fail(`${gateways * perGateway - progress.children!} of ${gateways * perGateway} children not registered`);

    progress.phase = 'done';
    report();
    return { ...progress, ok: progress.errors === 0, averageRate: Math.round(progress.acked / Math.max(publishSeconds, 0.001)), failures };
  } catch (error) {
    fail((error as Error).message);
    progress.phase = 'done';
    return { ...progress, ok: false, averageRate: 0, failures };
  } finally {
    clearInterval(ticker);
    for (const timer of timers) clearInterval(timer);
    await Promise.all(clients.map((c) => c.stop()));
    api.close();
  }
}

export interface SimIdentity {
  deviceId: string;
  key: string;
  cert: string;
}

/** Registers `count` devices and issues each one's certificate from a CSR made with its own new key. */
export async function provision(
  api: OperatorApi,
  productId: string,
  run: string,
  count: number,
  onEach: () => void,
): Promise<SimIdentity[]> {
  const registered: { deviceId: string; key: string }[] = [];
  await inBatches(
    Array.from({ length: count }, (_, i) => i),
    8,
    async (i) => {
      registered[i] = {
        deviceId: await api.registerDevice(`sim-${run}-${String(i).padStart(6, '0')}`, productId),
        key: generateDeviceKey(),
      };
    },
  );
  const identities: SimIdentity[] = [];
  for (let from = 0; from < registered.length; from += CERTIFICATE_BATCH) {
    const batch = registered.slice(from, from + CERTIFICATE_BATCH);
    const items = await Promise.all(batch.map(async (d) => ({ deviceId: d.deviceId, csr: pem(await createCsr(d.key, d.deviceId)) })));
    const issued = await api.issueCertificates(items);
    issued.forEach((cert, i) => {
      identities.push({ deviceId: cert.deviceId, key: batch[i]!.key, cert: cert.certificate });
      onEach();
    });
  }
  return identities;
}

function pem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}
