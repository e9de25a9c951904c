/**
 * A hand-driven MQTT connection for tests that need exact control of the bytes: a TLS socket
 * (with the device's key and certificate, or none), packets built with mqtt-packet, each written
 * in its own write (so its own TLS record), and every packet the broker sends back, in order.
 * For reproducing what a library client would never send: packets pipelined behind a CONNECT,
 * QoS 2 retransmissions, a keep-alive of 0, SUBSCRIBEs with hundreds of filters.
 */
import { connect, type TLSSocket } from 'node:tls';
import mqttPacket, { type IConnectPacket, type Packet } from 'mqtt-packet';
import { eventually } from './mqtt.js';

export type { Packet };

export class RawMqtt {
  /** Every packet the broker sent, in order. */
  readonly received: Packet[] = [];
  /** Resolves when the connection is closed (by either side). */
  readonly closed: Promise<void>;
  private ended = false;

  private constructor(
    readonly socket: TLSSocket,
    readonly version: 4 | 5,
  ) {
    // As paho and most embedded clients: no Nagle, so packets written back to back leave as separate segments.
    socket.setNoDelay(true);
    const parser = mqttPacket.parser({ protocolVersion: version });
    parser.on('packet', (packet: Packet) => this.received.push(packet));
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        resolve();
      }),
    );
  }

  /** Opens the TLS connection (no MQTT yet). */
  static open(port: number, ca: string, credentials: { key: string; cert: string } | null, version: 4 | 5 = 4): Promise<RawMqtt> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...(credentials ?? {}) });
      socket.once('secureConnect', () => resolve(new RawMqtt(socket, version)));
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.ended;
  }

  /** Whether the connection closes within `ms` (a test of a refusal fails instead of hanging). */
  closedWithin(ms = 5000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      this.closed.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
    ]).finally(() => clearTimeout(timer));
  }

  /** A CONNECT for this client ID (clean session, keep-alive 60 unless `extra` says otherwise). */
  connectPacket(clientId: string, extra: Partial<IConnectPacket> = {}): IConnectPacket {
    return { cmd: 'connect', protocolId: 'MQTT', protocolVersion: this.version, clientId, clean: true, keepalive: 60, ...extra };
  }

  /** The packet's bytes in this connection's protocol version. */
  encode(packet: Packet): Buffer {
    return mqttPacket.generate(packet, { protocolVersion: this.version });
  }

  /** Writes each packet in a write of its own. */
  send(...packets: Packet[]): void {
    for (const packet of packets) this.socket.write(this.encode(packet));
  }

  /** The first packet of this kind the broker sent (waits for it; fails if the connection closes first). */
  async next<T extends Packet['cmd']>(cmd: T, ms = 5000): Promise<Extract<Packet, { cmd: T }>> {
    const find = () => this.received.find((p) => p.cmd === cmd) as Extract<Packet, { cmd: T }> | undefined;
    await eventually(() => find() !== undefined || this.ended, ms, `a ${cmd} from the broker`);
    const packet = find();
    if (!packet)
      throw new Error(`the connection closed without a ${cmd}; received: ${this.received.map((p) => p.cmd).join(', ') || 'nothing'}`);
    return packet;
  }

  /** The commands received so far, in order. */
  commands(): string[] {
    return this.received.map((p) => p.cmd);
  }

  close(): void {
    this.socket.destroy();
  }
}
