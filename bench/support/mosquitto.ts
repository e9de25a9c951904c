/**
 * Mosquitto as the benches' baseline broker: mutual TLS on a free loopback port with the platform's
 * server certificate, trusting the same CA for device certificates, so one device fleet can load
 * both brokers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts Mosquitto with the files the caller wrote to `work` (ca.pem, server.pem, server.key);
 * stop it with `child.kill('SIGTERM')`.
 */
export async function startMosquitto(work: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  writeFileSync(
    join(work, 'mosquitto.conf'),
    [
      `listener ${port} 127.0.0.1`,
      `cafile ${join(work, 'ca.pem')}`,
      `certfile ${join(work, 'server.pem')}`,
      `keyfile ${join(work, 'server.key')}`,
      'require_certificate true',
      'use_identity_as_username true',
      'allow_anonymous false',
      'persistence false',
      'max_inflight_messages 100',
      'log_type error',
      ...(userInfo().uid === 0 ? ['user root'] : []),
    ].join('\n') + '\n',
  );
  const child = spawn('mosquitto', ['-c', join(work, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  // Read its log all along: a pipe nobody reads fills up (1,000 clients dropping at the end of a
  // run write more than 64 KB of errors) and Mosquitto then blocks, even on SIGTERM.
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    if (log.length < 4096) log += chunk.toString();
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  if (child.exitCode !== null) throw new Error(`mosquitto did not start: ${log.trim()}`);
  return { port, child };
}
