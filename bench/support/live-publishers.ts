/**
 * The publishing half of bench/app-live.ts, run as its own process so that neither its CPU nor
 * its event loop is the server's or the consumers': N devices over mutual TLS, each publishing
 * QoS 1 telemetry at `rate` messages per second (spread evenly across the devices and the
 * second), every message carrying its send time and a run-unique sequence number:
 * `{"values":{"sentAt":<ms since the epoch, µs precision>,"seq":<n>}}`.
 *
 * Reads its job from the JSON file named on the command line. Prints `{"ready":…}` once every
 * device is connected, starts publishing when a line arrives on standard input, and prints its
 * report (one JSON line) once every PUBACK is in or `grace` seconds after the last publish.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import mqtt, { type MqttClient } from 'mqtt';

export interface PublisherJob {
  port: number;
  ca: string;
  devices: { id: string; key: string; cert: string }[];
  /** Messages per second per device. */
  rate: number;
  seconds: number;
  /** Seconds to wait for outstanding PUBACKs after the last publish. */
  grace: number;
  /** Connections opened at once while connecting. */
  connectConcurrency: number;
}

export interface PublisherReport {
  connected: number;
  connectSeconds: number;
  sent: number;
  /** The sequence numbers whose PUBACK came. */
  ackedSeqs: number[];
  errors: number;
  /** How long it published for (a busy process's timers fire late). */
  sendSeconds: number;
  /** This process's CPU seconds from the start signal to the report. */
  cpuSeconds: number;
  /** Clients disconnected by the broker during the run. */
  disconnected: number;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes of this machine. */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as PublisherJob;
process.on('uncaughtException', (error) => {
  process.stderr.write(`publishers: ${error.stack ?? error.message}\n`);
  process.exit(1);
});

const connectStarted = Date.now();
const clients: { client: MqttClient; topic: string }[] = new Array(job.devices.length);
let next = 0;
await Promise.all(
  Array.from({ length: job.connectConcurrency }, async () => {
    while (next < job.devices.length) {
      const i = next++;
      const d = job.devices[i]!;
      const client = await mqtt.connectAsync(`mqtts://localhost:${job.port}`, {
        clientId: d.id,
        key: d.key,
        cert: d.cert,
        ca: job.ca,
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 60_000,
      });
      client.on('error', () => undefined);
      clients[i] = { client, topic: `d/${d.id}/telemetry` };
    }
  }),
);
const connectSeconds = (Date.now() - connectStarted) / 1000;
process.stdout.write(JSON.stringify({ ready: true, connectSeconds }) + '\n');

// Wait for the start signal.
const lines = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => lines.once('line', () => resolve()));
lines.close();

const cpuStart = process.cpuUsage();
const ackedSeqs: number[] = [];
let sent = 0;
let errors = 0;
let outstanding = 0;
let sendSeconds = 0;
const total = job.rate * job.devices.length;
const t0 = performance.now();
await new Promise<void>((resolve) => {
  let running = true;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    resolve();
  };
  // Round robin over the devices: each sends `rate` per second, the devices evenly staggered.
  const tick = setInterval(() => {
    // Message k (from 0) is due at k / total seconds: the first at once, the last just before the end.
    const due = Math.min(total * job.seconds, Math.floor((total * (performance.now() - t0)) / 1000) + 1);
    while (running && sent < due) {
      const { client, topic } = clients[sent % clients.length]!;
      const seq = ++sent;
      if (!client.connected) {
        errors++;
        continue;
      }
      outstanding++;
      client.publish(topic, `{"values":{"sentAt":${nowMs().toFixed(3)},"seq":${seq}}}`, { qos: 1 }, (error) => {
        outstanding--;
        if (error) errors++;
        else ackedSeqs.push(seq);
        if (!running && outstanding === 0) finish();
      });
    }
    if (sent === total * job.seconds) stop();
  }, 2);
  // The last message is due just before `seconds`; a process too busy to send them all by a
  // second later stops there (and sent tells how many went out).
  const late = setTimeout(() => stop(), (job.seconds + 1) * 1000);
  function stop() {
    if (!running) return;
    running = false;
    sendSeconds = (performance.now() - t0) / 1000;
    clearInterval(tick);
    clearTimeout(late);
    if (outstanding === 0) finish();
    setTimeout(finish, job.grace * 1000).unref();
  }
});
const cpu = process.cpuUsage(cpuStart);
const disconnected = clients.filter(({ client }) => !client.connected).length;
const report: PublisherReport = {
  connected: clients.length,
  connectSeconds,
  sent,
  ackedSeqs,
  errors: errors + outstanding,
  sendSeconds,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  disconnected,
};
for (const { client } of clients) client.end(true);
process.stdout.write(JSON.stringify(report) + '\n');
process.exit(0);
