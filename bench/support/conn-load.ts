/**
 * Connection load generator, run as its own process (bench:connections starts several, each
 * holding fewer connections than the per-process file-descriptor limit): opens its share of the
 * mutual-TLS connections (MQTT CONNECTs as devices, or bare TLS handshakes) with a given
 * concurrency, prints one JSON line (ConnReport) when all are up, then holds them idle until it is
 * told to stop (SIGTERM).
 */
import { readFileSync } from 'node:fs';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export interface ConnJob {
  mode: 'mqtt' | 'tls';
  port: number;
  ca: string;
  /** The key every device of the job holds (PKCS#8 PEM). */
  key: string;
  devices: { id: string; cert: string }[];
  concurrency: number;
  /**
   * The loopback address the connections come from: one source address has only the ephemeral
   * port range (32768–60999: 28,232 ports) towards one server port, so each load generator gets
   * its own (127.0.0.2, 127.0.0.3…; all of 127/8 is loopback).
   */
  localAddress: string;
  /**
   * Seconds between keep-alives: the MQTT keep-alive the devices ask for (mqtt.js sends PINGREQ
   * after that long without sending), or, holding bare TLS connections, a 2-byte message each
   * sends that often and the bare server echoes (the same two TLS records a PINGREQ and its PINGRESP are).
   */
  keepalive: number;
}

export interface ConnReport {
  connected: number;
  failures: number;
  /** The first failure's message, if any. */
  firstError: string | null;
  /** When the first connection started and the last one was up (ms epoch). */
  startedAt: number;
  endedAt: number;
}

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as ConnJob;
const held: (MqttClient | TLSSocket)[] = [];
const PING = Buffer.from([0xc0, 0x00]);
let failures = 0;
let firstError: string | null = null;

function open(d: ConnJob['devices'][number]): Promise<void> {
  if (job.mode === 'mqtt') {
    return mqtt
      .connectAsync(`mqtts://127.0.0.1:${job.port}`, {
        clientId: d.id,
        key: job.key,
        cert: d.cert,
        ca: job.ca,
        protocolVersion: 4,
        reconnectPeriod: 0,
        keepalive: job.keepalive,
        connectTimeout: 60_000,
        localAddress: job.localAddress,
      } as IClientOptions)
      .then((c) => {
        c.on('error', () => undefined);
        held.push(c);
      });
  }
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      // localAddress reaches the socket's connect (node:tls passes its options on); its type leaves it out.
      { host: '127.0.0.1', port: job.port, localAddress: job.localAddress, ca: job.ca, key: job.key, cert: d.cert } as ConnectionOptions,
      () => {
        held.push(socket);
        resolve();
      },
    );
    socket.once('error', reject);
  });
}

const startedAt = Date.now();
let next = 0;
await Promise.all(
  Array.from({ length: job.concurrency }, async () => {
    while (next < job.devices.length) {
      const d = job.devices[next++]!;
      await open(d).catch((error: Error) => {
        failures++;
        firstError ??= error.message;
      });
    }
  }),
);
const report: ConnReport = { connected: held.length, failures, firstError, startedAt, endedAt: Date.now() };
process.stdout.write(JSON.stringify(report) + '\n');
process.on('SIGTERM', () => process.exit(0));
// Bare TLS: each connection sends its 2 bytes once per keep-alive period, spread over the period.
let tick = 0;
setInterval(() => {
  tick++;
  if (job.mode === 'tls') for (let i = tick % job.keepalive; i < held.length; i += job.keepalive) (held[i] as TLSSocket).write(PING);
}, 1000);
