/**
 * The MQTT load generator, run as its own process so its CPU is not the broker's: N device
 * connections over mutual TLS, each keeping `window` QoS 1 telemetry messages in flight for
 * `seconds`, timing every publish to its PUBACK. Reads its job from the JSON file named on the
 * command line; prints one JSON line of results.
 */
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';

export interface LoadJob {
  port: number;
  ca: string;
  devices: { id: string; key: string; cert: string }[];
  window: number;
  seconds: number;
  /** Connections opened at once while connecting. */
  connectConcurrency: number;
}

export interface LoadReport {
  connected: number;
  connectSeconds: number;
  sent: number;
  acked: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
}

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as LoadJob;

async function connectAll(): Promise<{ client: MqttClient; id: string }[]> {
  const clients: { client: MqttClient; id: string }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < job.devices.length) {
      const d = job.devices[next++]!;
      const client = await mqtt.connectAsync(`mqtts://localhost:${job.port}`, { clientId: d.id, key: d.key, cert: d.cert, ca: job.ca, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 30_000 });
      client.on('error', () => undefined);
      clients.push({ client, id: d.id });
    }
  };
  await Promise.all(Array.from({ length: job.connectConcurrency }, worker));
  return clients;
}

process.on('uncaughtException', (error) => {
  process.stderr.write(`load generator: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
const started = Date.now();
const clients = await connectAll();
const connectSeconds = (Date.now() - started) / 1000;

const latencies: number[] = [];
let sent = 0;
let acked = 0;
let errors = 0;
let running = true;
const t0 = performance.now();

await new Promise<void>((resolve) => {
  let active = clients.length;
  clients.forEach(({ client, id }) => {
    const topic = `d/${id}/telemetry`;
    let inflight = 0;
    const pump = () => {
      while (running && inflight < job.window) {
        inflight++;
        sent++;
        const at = performance.now();
        client.publish(topic, `{"values":{"seq":${sent},"temperature":21.5}}`, { qos: 1 }, (error) => {
          inflight--;
          if (error) errors++;
          else {
            acked++;
            latencies.push(performance.now() - at);
          }
          if (running) pump();
          else if (inflight === 0 && --active === 0) resolve();
        });
      }
    };
    pump();
  });
  setTimeout(() => {
    running = false;
  }, job.seconds * 1000);
  // Messages whose PUBACK never comes (a dropped connection) must not hang the run.
  setTimeout(resolve, (job.seconds + 15) * 1000).unref();
});
const seconds = (performance.now() - t0) / 1000;
if (process.env.LOAD_DEBUG) process.stderr.write(`disconnected clients: ${clients.filter(({ client }) => !client.connected).length}\n`);
for (const { client } of clients) client.end(true);

latencies.sort((a, b) => a - b);
const pick = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
const report: LoadReport = { connected: clients.length, connectSeconds, sent, acked, errors: errors + (sent - acked - errors), seconds, p50: pick(0.5), p99: pick(0.99) };
process.stdout.write(JSON.stringify(report) + '\n');
process.exit(0);
