/**
 * A TCP relay in front of a server on 127.0.0.1 (a broker, PostgreSQL, Redis) that can cut the
 * network: `cut()` drops every connection and refuses new ones (the port stays bound,
 * connections are reset at once), `restore()` relays again. TLS runs end to end through it.
 * Fault tests put it between a node and its database or Redis: the shared servers other test
 * files use are never stopped.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

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
