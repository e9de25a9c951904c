/**
 * Connection load generator, run as its own process: opens N mutual-TLS connections (MQTT
 * CONNECTs as devices, or bare TLS handshakes) with a given concurrency, prints one JSON line
 * when all are up, then holds them idle until it is told to stop (SIGTERM).
 */
import { readFileSync } from 'node:fs';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import mqtt, { type MqttClient } from 'mqtt';

export interface ConnJob {
  mode: 'mqtt' | 'tls';
  port: number;
  ca: string;
  devices: { id: string; key: string; cert: string }[];
  concurrency: number;
}

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as ConnJob;
const held: (MqttClient | TLSSocket)[] = [];
let failures = 0;

function open(d: ConnJob['devices'][number]): Promise<void> {
  if (job.mode === 'mqtt') {
    return mqtt
      .connectAsync(`mqtts://localhost:${job.port}`, {
        clientId: d.id,
        key: d.key,
        cert: d.cert,
        ca: job.ca,
        protocolVersion: 4,
        reconnectPeriod: 0,
        keepalive: 600,
        connectTimeout: 60_000,
      })
      .then((c) => {
        c.on('error', () => undefined);
        held.push(c);
      });
  }
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: job.port, servername: 'localhost', ca: job.ca, key: d.key, cert: d.cert }, () => {
      held.push(socket);
      resolve();
    });
    socket.once('error', reject);
  });
}

const started = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: job.concurrency }, async () => {
    while (next < job.devices.length) {
      const d = job.devices[next++]!;
      await open(d).catch(() => failures++);
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
process.stdout.write(JSON.stringify({ connected: held.length, failures, seconds, perSecond: held.length / seconds }) + '\n');
process.on('SIGTERM', () => process.exit(0));
setInterval(() => undefined, 1 << 30);
