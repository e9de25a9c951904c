/**
 * The baseline for bench:connections: a bare node:tls server requiring client certificates from
 * the same CA, doing nothing with the connections but holding them. Prints its port.
 */
import { readFileSync } from 'node:fs';
import { createServer, type TLSSocket } from 'node:tls';

const { cert, key, ca } = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as { cert: string; key: string; ca: string };
const sockets = new Set<TLSSocket>();
const server = createServer({ cert, key, ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (socket) => {
  sockets.add(socket);
  socket.on('error', () => undefined);
  socket.on('close', () => sockets.delete(socket));
});
server.maxConnections = 1_000_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
