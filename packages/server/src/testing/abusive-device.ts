/**
 * One enrolled device doing its worst to the broker with its own valid certificate, over raw
 * sockets, round after round until a deadline:
 *   - subscriptions: SUBSCRIBEs of as many long filters under its own prefix as a packet may
 *     carry, written as fast as the socket takes them (what took a node to 4 GB and an OOM);
 *   - packets pipelined behind the CONNECT, and a 1 MB burst of control packets;
 *   - the largest will it may leave, at QoS 2, and abrupt disconnects to fire it;
 *   - QoS 2 publishes with DUP retransmissions;
 *   - telemetry batches over the limits (more readings than allowed; a packet over the size limit);
 *   - session takeovers (reconnecting on top of its own live session).
 * It reports what it achieved as the broker answered it.
 */
import { randomBytes } from 'node:crypto';
import type { TestDevice } from './devices.js';
import { settle } from './mqtt.js';
import { RawMqtt, type Packet } from './raw-mqtt.js';

export interface AbuseLimits {
  maxFiltersPerSubscribe: number;
  maxConnectBytes: number;
  maxPacketBytes: number;
}

export interface AbuseReport {
  rounds: number;
  connections: number;
  /** CONNECTs the broker refused (it reconnected too often). */
  refusedAtConnect: number;
  subscribePackets: number;
  /** Filters the broker granted, and the most one session held at once. */
  filtersGranted: number;
  filtersRefused: number;
  mostFiltersInOneSession: number;
  pingResponses: number;
  publishAcks: number;
  /** Reason codes of the DISCONNECTs it was sent (MQTT 5), by code. */
  disconnects: Record<string, number>;
  /** Connections the broker closed with no DISCONNECT. */
  closedSilently: number;
}

export class AbusiveDevice {
  readonly report: AbuseReport = {
    rounds: 0,
    connections: 0,
    refusedAtConnect: 0,
    subscribePackets: 0,
    filtersGranted: 0,
    filtersRefused: 0,
    mostFiltersInOneSession: 0,
    pingResponses: 0,
    publishAcks: 0,
    disconnects: {},
    closedSilently: 0,
  };
  private filterSerial = 0;
  private readonly live = new Set<RawMqtt>();

  constructor(
    private readonly port: number,
    private readonly ca: string,
    private readonly device: TestDevice,
    private readonly limits: AbuseLimits,
  ) {}

  async run(until: number): Promise<AbuseReport> {
    const steps = [
      () => this.subscriptions(until),
      () => this.pipelined(),
      () => this.qos2(),
      () => this.oversized(),
      () => this.takeovers(),
    ];
    while (Date.now() < until) {
      for (const step of steps) {
        if (Date.now() >= until) break;
        await step();
      }
      this.report.rounds++;
    }
    for (const raw of this.live) raw.close();
    return this.report;
  }

  /** Connects with the biggest will a CONNECT may carry (QoS 2), plus `behind` pipelined after it. */
  private async connect(version: 4 | 5, ...behind: Packet[]): Promise<RawMqtt | null> {
    const raw = await RawMqtt.open(this.port, this.ca, this.device, version).catch(() => null);
    if (!raw) return null;
    this.report.connections++;
    this.live.add(raw);
    void raw.closed.then(() => this.ended(raw));
    const will = {
      topic: `d/${this.device.id}/presence`,
      payload: randomBytes(this.limits.maxConnectBytes - 512),
      qos: 2 as const,
      retain: true,
    };
    raw.send(raw.connectPacket(this.device.id, { will, keepalive: 0 }), ...behind);
    return raw;
  }

  private ended(raw: RawMqtt): void {
    this.live.delete(raw);
    const connack = raw.received[0] as { cmd: string; returnCode?: number; reasonCode?: number } | undefined;
    if (connack?.cmd === 'connack' && (connack.returnCode ?? connack.reasonCode) !== 0) {
      this.report.refusedAtConnect++;
      return;
    }
    let granted = 0;
    for (const packet of raw.received) {
      if (packet.cmd === 'suback') {
        for (const code of packet.granted as number[]) {
          if (code < 0x80) granted++;
          else this.report.filtersRefused++;
        }
      } else if (packet.cmd === 'pingresp') this.report.pingResponses++;
      else if (packet.cmd === 'puback') this.report.publishAcks++;
    }
    this.report.filtersGranted += granted;
    this.report.mostFiltersInOneSession = Math.max(this.report.mostFiltersInOneSession, granted);
    const disconnect = raw.received.find((p) => p.cmd === 'disconnect') as { reasonCode?: number } | undefined;
    if (disconnect) {
      const code = `0x${(disconnect.reasonCode ?? 0).toString(16)}`;
      this.report.disconnects[code] = (this.report.disconnects[code] ?? 0) + 1;
    } else this.report.closedSilently++;
  }

  private subscribe(messageId: number): Packet {
    const subscriptions = Array.from({ length: this.limits.maxFiltersPerSubscribe }, () => ({
      topic: `d/${this.device.id}/commands/${randomBytes(100).toString('hex')}-${++this.filterSerial}`,
      qos: 1 as const,
    }));
    this.report.subscribePackets++;
    return { cmd: 'subscribe', messageId, subscriptions };
  }

  /** Long filters as fast as the socket takes them for up to ten seconds, then an abrupt end (the will fires). */
  private async subscriptions(until: number): Promise<void> {
    const raw = await this.connect(5, ...Array.from({ length: 20 }, (_, i) => this.subscribe(i + 1)));
    if (!raw) return;
    const stop = Math.min(until, Date.now() + 10_000);
    let id = 100;
    while (!raw.isClosed && Date.now() < stop) {
      const full = !raw.socket.write(raw.encode(this.subscribe((id = (id % 60_000) + 1))));
      if (full)
        await Promise.race([
          new Promise((resolve) => raw.socket.once('drain', resolve)),
          raw.closed,
          settle(Math.max(0, stop - Date.now())),
        ]);
    }
    raw.close();
    await raw.closed;
  }

  /** A megabyte of PINGREQs and QoS 0 publishes written in one go right behind the CONNECT. */
  private async pipelined(): Promise<void> {
    const raw = await this.connect(4);
    if (!raw) return;
    const publish = raw.encode({
      cmd: 'publish',
      topic: `d/${this.device.id}/telemetry`,
      payload: Buffer.from('{"values":{"x":1}}'),
      qos: 0,
      retain: false,
      dup: false,
    });
    const unit = Buffer.concat([Buffer.from([0xc0, 0x00]), publish]);
    raw.socket.write(Buffer.concat(Array.from({ length: Math.ceil((1024 * 1024) / unit.length) }, () => unit)));
    await Promise.race([raw.closed, settle(15_000)]);
    raw.close();
  }

  /** A QoS 2 publish, its DUP retransmissions and a PUBREL. */
  private async qos2(): Promise<void> {
    const publish = (dup: boolean): Packet => ({
      cmd: 'publish',
      topic: `d/${this.device.id}/telemetry`,
      payload: Buffer.from('{"values":{"q":2}}'),
      qos: 2,
      messageId: 7,
      dup,
      retain: false,
    });
    const raw = await this.connect(5, publish(false), publish(true), publish(true), { cmd: 'pubrel', messageId: 7 });
    if (!raw) return;
    await Promise.race([raw.closed, settle(5000)]);
    raw.close();
  }

  /** Telemetry batches over the reading limit, then a packet over the size limit. */
  private async oversized(): Promise<void> {
    const batch = JSON.stringify({ batch: Array.from({ length: 1001 }, (_, i) => ({ values: { t: i } })) });
    const publishes = Array.from({ length: 20 }, (_, i): Packet => ({
      cmd: 'publish',
      topic: `d/${this.device.id}/telemetry`,
      payload: Buffer.from(batch),
      qos: 1,
      messageId: i + 1,
      retain: false,
      dup: false,
    }));
    const raw = await this.connect(4, ...publishes);
    if (!raw) return;
    await raw.next('puback', 5000).catch(() => null);
    raw.send({
      cmd: 'publish',
      topic: `d/${this.device.id}/telemetry`,
      payload: Buffer.alloc(this.limits.maxPacketBytes + 1, 0x20),
      qos: 1,
      messageId: 99,
      retain: false,
      dup: false,
    });
    await Promise.race([raw.closed, settle(5000)]);
    raw.close();
  }

  /** Ten connections on top of each other: each takes over the session of the one before. */
  private async takeovers(): Promise<void> {
    const raws: RawMqtt[] = [];
    for (let i = 0; i < 10; i++) {
      const raw = await this.connect(5);
      if (raw) raws.push(raw);
    }
    await settle(500);
    for (const raw of raws) raw.close();
    await Promise.all(raws.map((raw) => raw.closed));
  }
}

export interface StallReport {
  /** QoS 0 readings it published (each routed back to its own subscription). */
  published: number;
  /** When the node closed the connection, in ms after the device stopped reading (null: still open at the deadline). */
  closedAfterMs: number | null;
}

/**
 * The slow consumer: a device that subscribes to everything under its own prefix, then never reads
 * its socket again while it publishes QoS 0 readings of about 1 KB, within its rates, which the
 * broker routes back to it. What the node writes to it backs up in the kernel's buffers and then in
 * the node's, unless the node stops reading it and drops the session.
 */
export async function stalledSubscriber(
  port: number,
  ca: string,
  device: TestDevice,
  until: number,
  publishesPerSecond: number,
): Promise<StallReport> {
  const raw = await RawMqtt.open(port, ca, device);
  raw.send(raw.connectPacket(device.id));
  await raw.next('connack');
  raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `d/${device.id}/#`, qos: 0 }] });
  await raw.next('suback');
  raw.socket.pause();
  const stalledAt = Date.now();
  let closedAt: number | null = null;
  void raw.closed.then(() => (closedAt = Date.now()));
  const payload = Buffer.from(JSON.stringify({ values: { note: 'x'.repeat(1000) } }));
  const topic = `d/${device.id}/telemetry`;
  const report: StallReport = { published: 0, closedAfterMs: null };
  // Ten writes a second, each of a tenth of the rate: QoS 0 needs no answer, and the socket's own buffer holds what the node no longer reads.
  while (Date.now() < until && closedAt === null) {
    for (let i = 0; i < publishesPerSecond / 10; i++) {
      raw.send({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false });
      report.published++;
    }
    await settle(100);
  }
  report.closedAfterMs = closedAt === null ? null : closedAt - stalledAt;
  raw.close();
  return report;
}
