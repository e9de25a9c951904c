/**
 * The baseline for bench:connections: a bare node:tls server requiring client certificates from
 * the same CA, doing nothing with the connections but holding them (and echoing what a client
 * sends: the load generator's keep-alive stand-in), in `workers` processes sharing
 * one port through node:cluster as `bulwark serve --workers N` does (1: the process itself serves).
 * Its TLS settings are the platform's (`policy`: transport/tls-policy.ts, passed in the job file as
 * this script runs compiled on its own): the same versions and suites, and no session tickets, which
 * would cost a bare server some 15 KB of memory a connection (bench:connections, 4,000 devices:
 * 53.7 KB a connection with Node's default tickets).
 * Prints one JSON line once listening: the port and the pids of the processes holding connections.
 * Then each line "count" on its standard input is answered with a JSON line: the connections each
 * of those processes holds, in the same order.
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { createServer, type TLSSocket, type TlsOptions } from 'node:tls';
import { createInterface } from 'node:readline';

const { cert, key, ca, workers, policy } = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as {
  policy: TlsOptions;
  cert: string;
  key: string;
  ca: string;
  workers: number;
};

/** Holds connections; calls `listening` with the port. */
function serve(listening: (port: number) => void): Set<TLSSocket> {
  const sockets = new Set<TLSSocket>();
  const server = createServer({ ...policy, cert, key, ca, requestCert: true, rejectUnauthorized: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('data', (bytes: Buffer) => socket.write(bytes));
    socket.on('close', () => sockets.delete(socket));
  });
  server.maxConnections = 1_000_000;
  server.listen(0, '127.0.0.1', () => listening((server.address() as { port: number }).port));
  return sockets;
}

if (workers === 1) {
  const sockets = serve((port) => process.stdout.write(JSON.stringify({ port, pids: [process.pid] }) + '\n'));
  createInterface({ input: process.stdin }).on('line', () => process.stdout.write(JSON.stringify([sockets.size]) + '\n'));
} else if (cluster.isPrimary) {
  const forked = Array.from({ length: workers }, () => cluster.fork());
  const counts = new Map<number, number>();
  let listening = 0;
  let port = 0;
  for (const worker of forked) {
    worker.on('message', (message: { port?: number; count?: number }) => {
      if (message.port !== undefined) {
        port = message.port;
        if (++listening === workers) process.stdout.write(JSON.stringify({ port, pids: forked.map((w) => w.process.pid) }) + '\n');
      }
      if (message.count !== undefined) {
        counts.set(worker.id, message.count);
        if (counts.size === workers) {
          process.stdout.write(JSON.stringify(forked.map((w) => counts.get(w.id))) + '\n');
          counts.clear();
        }
      }
    });
  }
  createInterface({ input: process.stdin }).on('line', () => {
    for (const worker of forked) worker.send('count');
  });
  process.on('SIGTERM', () => {
    for (const worker of forked) worker.process.kill('SIGKILL');
    process.exit(0);
  });
} else {
  const sockets = serve((port) => process.send!({ port }));
  process.on('message', () => process.send!({ count: sockets.size }));
}
