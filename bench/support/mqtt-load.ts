/**
 * The MQTT load generator, run as its own process so its CPU is not the broker's: N device
 * connections over mutual TLS publishing telemetry for `seconds`. Reads its job from the JSON
 * file named on the command line; prints one JSON line of results. Three modes:
 *   - window (default): each device keeps `window` QoS 1 messages in flight (closed loop: the
 *     offered rate is whatever the broker sustains), timing every publish to its PUBACK;
 *   - rate: QoS 1 at `rate` messages per second in total whatever the PUBACKs (open loop: the
 *     way to offer more than the broker sustains), then `grace` seconds for late PUBACKs;
 *   - flood: QoS 0 as fast as each socket takes it (the device with `tiny` payloads first).
 * Every payload carries a run-unique `seq`; with `ackFile` the acknowledged ones are written
 * there per device, so a test can check each of them is stored.
 *
 * It shares the cores with the broker it loads, so it is kept lean (LoadClient below): with
 * MQTT.js clients it spent 73 µs of CPU a message in the open loop, more than three times what
 * Mosquitto spent handling it, and topped out near 17,000–21,000 messages/s.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import mqttPacket, { type Packet } from 'mqtt-packet';

export interface LoadJob {
  port: number;
  ca: string;
  devices: { id: string; key: string; cert: string }[];
  window: number;
  seconds: number;
  /** Connections opened at once while connecting. */
  connectConcurrency: number;
  mode?: 'window' | 'rate' | 'flood';
  /** rate mode: QoS 1 messages per second offered across all devices. */
  rate?: number;
  /** rate mode: seconds to wait for outstanding PUBACKs after the run (default 10). */
  grace?: number;
  /** flood mode: the first device sends the smallest valid telemetry payload in a tight loop. */
  tiny?: boolean;
  /** The first seq is `seqBase + 1` (default 0), so runs against the same devices do not overlap. */
  seqBase?: number;
  /** Where to write `{ [deviceId]: acknowledged seq[] }`. */
  ackFile?: string;
  /**
   * Where to write every acknowledged publish as a line `sent latency` (ms; `sent` on the
   * machine's clock, performance.timeOrigin + now, so a broker in another process can line its
   * own events up with it).
   */
  timelineFile?: string;
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
  /** PUBACKs received while still sending (rate mode: what the broker sustained under the load). */
  ackedInRun: number;
  /** How long it sent for (a busy generator's stop timer fires late). */
  sendSeconds: number;
  /** Clients the broker disconnected during the run. */
  disconnected: number;
  /** CPU seconds (user + system) this load generator used from its first message to the end: its share of the cores. */
  cpuSeconds: number;
}

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as LoadJob;

/**
 * One device's MQTT 3.1.1 connection, as lean as a load generator needs: the packets are
 * mqtt-packet's (the broker's own codec), written with its `writeToStream` as MQTT.js writes them
 * (corked until the next tick, so the packets one tick publishes on a socket share a TLS record),
 * but none of a full client's bookkeeping (stores, packet-ID allocator, queues, reconnects), which
 * cost the generator about as much CPU a message as the broker under test spends.
 */
class LoadClient {
  connected = false;
  private readonly pending = new Map<number, (error?: Error) => void>();
  private lastId = 0;

  private constructor(
    readonly id: string,
    readonly socket: TLSSocket,
  ) {}

  static open(d: { id: string; key: string; cert: string }): Promise<LoadClient> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: 'localhost', port: job.port, key: d.key, cert: d.cert, ca: job.ca });
      socket.setNoDelay(true);
      const client = new LoadClient(d.id, socket);
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      const timer = setTimeout(() => fail(new Error(`${d.id}: no CONNACK within 30 s`)), 30_000);
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      parser.on('packet', (packet: Packet) => {
        if (packet.cmd === 'puback') client.acked(packet.messageId!);
        else if (packet.cmd === 'connack') {
          clearTimeout(timer);
          if (packet.returnCode !== 0) return fail(new Error(`${d.id}: CONNACK return code ${packet.returnCode}`));
          client.connected = true;
          resolve(client);
        }
      });
      parser.on('error', (error: Error) => socket.destroy(error));
      socket.on('data', (chunk: Buffer) => parser.parse(chunk));
      socket.on('error', (error) => (client.connected ? undefined : fail(error)));
      socket.on('close', () => client.closed());
      socket.once('secureConnect', () => {
        mqttPacket.writeToStream(
          { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: d.id, clean: true, keepalive: 60 },
          socket,
        );
      });
    });
  }

  /** QoS 1 when `then` is given (called on the PUBACK, or with an error once the connection is gone), else QoS 0. */
  publish(topic: string, payload: string, then?: (error?: Error) => void): void {
    if (!then) {
      mqttPacket.writeToStream({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false }, this.socket);
      return;
    }
    let messageId = this.lastId;
    do messageId = (messageId % 65535) + 1;
    while (this.pending.has(messageId));
    this.lastId = messageId;
    this.pending.set(messageId, then);
    mqttPacket.writeToStream({ cmd: 'publish', topic, payload, qos: 1, messageId, retain: false, dup: false }, this.socket);
  }

  ping(): void {
    if (this.connected) mqttPacket.writeToStream({ cmd: 'pingreq' }, this.socket);
  }

  end(): void {
    this.socket.destroy();
  }

  private acked(messageId: number): void {
    const then = this.pending.get(messageId);
    if (!then) return;
    this.pending.delete(messageId);
    then();
  }

  private closed(): void {
    this.connected = false;
    const gone = new Error(`${this.id}: connection closed`);
    for (const then of this.pending.values()) then(gone);
    this.pending.clear();
  }
}

async function connectAll(): Promise<LoadClient[]> {
  const clients: LoadClient[] = [];
  let next = 0;
  const worker = async () => {
    while (next < job.devices.length) clients.push(await LoadClient.open(job.devices[next++]!));
  };
  await Promise.all(Array.from({ length: job.connectConcurrency }, worker));
  // Keep the job's device order (the tiny-payload device is the first).
  const order = new Map(job.devices.map((d, i) => [d.id, i]));
  return clients.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
}

process.on('uncaughtException', (error) => {
  process.stderr.write(`load generator: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
const started = Date.now();
const clients = await connectAll();
// MQTT keepalive (60 s in CONNECT) for runs longer than a minute.
setInterval(() => clients.forEach((client) => client.ping()), 30_000).unref();
const connectSeconds = (Date.now() - started) / 1000;

const latencies: number[] = [];
/** With `timelineFile`: each acknowledged publish's send time (machine clock, ms) and latency, in pairs. */
const timeline: number[] | null = job.timelineFile ? [] : null;
const ackedSeqs = new Map<string, number[]>(clients.map(({ id }) => [id, []]));
let sent = 0;
let acked = 0;
let errors = 0;
let running = true;
let ackedInRun = 0;
let sendSeconds = 0;
const t0 = performance.now();
const cpuAtStart = process.cpuUsage();

/** Publishes one QoS 1 message with the next seq; `then` runs on its PUBACK or failure. */
function publishQos1(client: LoadClient, then: () => void): void {
  const seq = (job.seqBase ?? 0) + ++sent;
  const at = performance.now();
  client.publish(`d/${client.id}/telemetry`, `{"values":{"seq":${seq},"temperature":21.5}}`, (error) => {
    if (error) errors++;
    else {
      acked++;
      const latency = performance.now() - at;
      latencies.push(latency);
      timeline?.push(performance.timeOrigin + at, latency);
      ackedSeqs.get(client.id)!.push(seq);
    }
    then();
  });
}

/** Closed loop: `window` in flight per device. */
function runWindow(): Promise<void> {
  return new Promise<void>((resolve) => {
    let active = clients.length;
    for (const client of clients) {
      let inflight = 0;
      const pump = () => {
        while (running && inflight < job.window) {
          inflight++;
          publishQos1(client, () => {
            inflight--;
            if (running) pump();
            else if (inflight === 0 && --active === 0) resolve();
          });
        }
      };
      pump();
    }
    setTimeout(() => (running = false), job.seconds * 1000);
    // Messages whose PUBACK never comes (a dropped connection) must not hang the run.
    setTimeout(resolve, (job.seconds + 15) * 1000).unref();
  });
}

/** Open loop: `rate` messages per second in total, round robin over the devices, PUBACK or not. */
function runRate(): Promise<void> {
  const rate = job.rate ?? 1000;
  return new Promise<void>((resolve) => {
    let outstanding = 0;
    let next = 0;
    let finished = false;
    const done = () => {
      outstanding--;
      if (!running && outstanding === 0 && !finished) {
        finished = true;
        resolve();
      }
    };
    const tick = setInterval(() => {
      const due = Math.floor((rate * (performance.now() - t0)) / 1000);
      let skipped = 0;
      while (running && sent < due && skipped < clients.length) {
        const client = clients[next++ % clients.length]!;
        if (!client.connected) {
          skipped++;
          continue;
        }
        skipped = 0;
        outstanding++;
        publishQos1(client, done);
      }
    }, 2);
    setTimeout(() => {
      running = false;
      ackedInRun = acked;
      sendSeconds = (performance.now() - t0) / 1000;
      clearInterval(tick);
      if (outstanding === 0) resolve();
      setTimeout(resolve, (job.grace ?? 10) * 1000).unref();
    }, job.seconds * 1000);
  });
}

/** QoS 0 as fast as each socket takes it: write until the socket is full, wait for it to drain. */
function runFlood(): Promise<void> {
  return new Promise<void>((resolve) => {
    clients.forEach((client, i) => {
      const topic = `d/${client.id}/telemetry`;
      const tiny = job.tiny === true && i === 0;
      const pump = () => {
        if (!running || !client.connected) return;
        for (let n = 0; n < 200 && !client.socket.writableNeedDrain; n++) {
          const seq = (job.seqBase ?? 0) + ++sent;
          client.publish(topic, tiny ? '{"values":{"a":1}}' : `{"values":{"seq":${seq},"temperature":21.5}}`);
        }
        if (client.socket.writableNeedDrain) client.socket.once('drain', pump);
        else setImmediate(pump);
      };
      pump();
    });
    setTimeout(() => {
      running = false;
      resolve();
    }, job.seconds * 1000);
  });
}

const mode = job.mode ?? 'window';
await (mode === 'rate' ? runRate() : mode === 'flood' ? runFlood() : runWindow());
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpuAtStart);
const disconnected = clients.filter((client) => !client.connected).length;
for (const client of clients) client.end();
if (job.ackFile) writeFileSync(job.ackFile, JSON.stringify(Object.fromEntries(ackedSeqs)));
if (job.timelineFile && timeline) {
  const lines: string[] = [];
  for (let i = 0; i < timeline.length; i += 2) lines.push(`${timeline[i]!.toFixed(1)} ${timeline[i + 1]!.toFixed(2)}`);
  writeFileSync(job.timelineFile, lines.join('\n'));
}

latencies.sort((a, b) => a - b);
const pick = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
const report: LoadReport = {
  connected: clients.length,
  connectSeconds,
  sent,
  acked,
  errors: mode === 'flood' ? errors : errors + (sent - acked - errors),
  seconds,
  p50: pick(0.5),
  p99: pick(0.99),
  ackedInRun: mode === 'rate' ? ackedInRun : acked,
  sendSeconds: mode === 'rate' ? sendSeconds : seconds,
  disconnected,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
};
process.stdout.write(JSON.stringify(report) + '\n');
process.exit(0);
