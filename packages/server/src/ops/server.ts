/**
 * Runs a platform node: the HTTPS API on the configured address, the periodic audit checkpoint
 * and telemetry retention,
 * and an orderly shutdown that stops accepting, drains requests (for at most
 * `http.shutdownGraceMs`, then ends every connection left, idle TLS handshakes included) and
 * closes storage.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { loadServerTls } from '../pki/ca.js';
import type { Platform } from '../platform.js';
import { WalCheckpointer } from '../storage/wal-checkpointer.js';
import { buildHttpApp } from '../transport/http/app.js';
import { MqttGateway } from '../transport/mqtt/broker.js';

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  port: number;
  /** The MQTT broker, unless `mqtt.enabled` is false. */
  mqtt: MqttGateway | null;
  close(): Promise<void>;
}

export interface StartOptions {
  host?: string;
  port?: number;
  logger?: boolean;
  logStream?: NodeJS.WritableStream;
}

export async function startServer(platform: Platform, options: StartOptions = {}): Promise<RunningServer> {
  const { config } = platform;
  const tls =
    config.http.tlsCertFile && config.http.tlsKeyFile
      ? { cert: readFileSync(config.http.tlsCertFile, 'utf8'), key: readFileSync(config.http.tlsKeyFile, 'utf8') }
      : loadServerTls(config.dataDir, platform.box);
  const app = await buildHttpApp(platform, { tls, ...(options.logger === undefined ? {} : { logger: options.logger }), ...(options.logStream ? { logStream: options.logStream } : {}) });
  const host = options.host ?? config.http.host;
  // Every TCP connection, from its accept: one that never finishes its TLS handshake would hold shutdown for Node's 120 s.
  const connections = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  await app.listen({ host, port: options.port ?? config.http.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? config.http.port);
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;

  let mqtt: MqttGateway | null = null;
  if (config.mqtt.enabled) {
    mqtt = new MqttGateway(platform, config.mqtt, app.log.child({ component: 'mqtt' }));
    try {
      await mqtt.start({ cert: tls.cert, key: tls.key, clientCa: await platform.pki.caChain() });
    } catch (error) {
      await mqtt.close();
      await app.close();
      throw error;
    }
  }

  // SQLite: WAL checkpoints off the event loop (the PUBACK latency of telemetry depends on it).
  const { database } = platform;
  const walCheckpointer = database.engine === 'sqlite' && database.file ? await WalCheckpointer.start(database.file, app.log.child({ component: 'sqlite' })) : null;

  const checkpoints = setInterval(() => {
    platform.audit.checkpoint().catch((error: unknown) => app.log.error({ err: error }, 'audit checkpoint failed'));
  }, config.audit.checkpointIntervalSeconds * 1000);
  checkpoints.unref();
  const pruning = setInterval(() => {
    platform.telemetry.retention.run().catch((error: unknown) => app.log.error({ err: error }, 'telemetry retention failed'));
  }, config.telemetry.pruneIntervalMinutes * 60_000);
  pruning.unref();
  // Online TUF metadata is re-signed before it expires; rollouts advance or halt by themselves.
  const refreshing = setInterval(() => {
    platform.updates.repository.refresh().catch((error: unknown) => app.log.error({ err: error }, 'update repository refresh failed'));
  }, config.updates.refreshIntervalSeconds * 1000);
  refreshing.unref();
  const rolling = setInterval(() => {
    platform.updates.rollouts
      .tick()
      .then((result) => {
        if (result.withdrawn > 0 || result.silent > 0) app.log.info(result, 'rollout tick: offers timed out');
      })
      .catch((error: unknown) => app.log.error({ err: error }, 'rollout tick failed'));
  }, config.updates.rolloutTickSeconds * 1000);
  rolling.unref();
  // Uploads cut off by a crash leave temporary files in the blob store: swept at start and hourly.
  const sweepUploads = () => platform.updates.blobs.sweep().catch((error: unknown) => app.log.error({ err: error }, 'blob upload sweep failed'));
  void sweepUploads();
  const sweeping = setInterval(sweepUploads, 3_600_000);
  sweeping.unref();

  return {
    app,
    url: config.http.publicUrl ?? `https://${shownHost}:${port}`,
    port,
    mqtt,
    close: async () => {
      clearInterval(checkpoints);
      clearInterval(pruning);
      clearInterval(refreshing);
      clearInterval(rolling);
      clearInterval(sweeping);
      await platform.telemetry.retention.stop();
      await mqtt?.close();
      const grace = setTimeout(() => {
        for (const socket of connections) socket.destroy();
      }, config.http.shutdownGraceMs);
      await app.close();
      clearTimeout(grace);
      await platform.audit.checkpoint().catch(() => undefined);
      await walCheckpointer?.stop();
      await platform.close();
    },
  };
}
