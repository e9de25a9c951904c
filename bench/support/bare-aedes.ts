/**
 * The Node floor for bench:ingest: a bare Aedes broker (the version the platform runs, with its
 * defaults: in-memory persistence, every client and every publish allowed; and the platform's
 * `concurrency` of 1,000) on a node:tls server with the platform's TLS policy
 * (transport/tls-policy.ts), requiring client certificates from the same CA. No login, no ACL, no
 * validation, no storage: what the platform's broker costs before it does anything of its own, on
 * the same runtime and MQTT stack.
 *
 * Job file (argv[2]): { cert, key, ca }. Prints one JSON line { port } once listening. Each line
 * "arm" on its standard input is answered with { armed: true }, then { firstMessageCpuSeconds } at
 * the next telemetry message: its CPU time (user + system) then, so the bench counts the CPU of a
 * run's messages apart from its connects'. A subscribed monitor, as for Mosquitto, would not do:
 * while its socket is busy, mqemitter queues the messages and then releases them recursively,
 * which overflows the stack. SIGTERM ends it.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createServer } from 'node:tls';
import { Aedes, type AedesPublishPacket } from 'aedes';
import { SERVER_TLS } from '../../packages/server/src/transport/tls-policy.js';

const { cert, key, ca } = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as { cert: string; key: string; ca: string };
const broker = await Aedes.createBroker({ concurrency: 1000 });
const server = createServer({ ...SERVER_TLS, cert, key, ca, requestCert: true, rejectUnauthorized: true }, (socket) =>
  broker.handle(socket),
);
server.maxConnections = 1_000_000;
const firstTelemetry = (packet: AedesPublishPacket): void => {
  if (!packet.topic.startsWith('d/')) return; // the broker's own $SYS messages
  broker.off('publish', firstTelemetry);
  const { user, system } = process.cpuUsage();
  process.stdout.write(JSON.stringify({ firstMessageCpuSeconds: (user + system) / 1e6 }) + '\n');
};
createInterface({ input: process.stdin }).on('line', () => {
  broker.off('publish', firstTelemetry);
  broker.on('publish', firstTelemetry);
  process.stdout.write(JSON.stringify({ armed: true }) + '\n');
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as { port: number }).port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
