/**
 * Runs a platform node, on top of the composition root: the HTTPS API on the configured address
 * (transport/http with the routes of routes.ts), the MQTT broker with its counters in the node's
 * metrics (connected to the binding domain's live streams as their device event source), the SQLite WAL checkpointer, and the periodic jobs: server certificate renewal, session and outbox retention, audit checkpoint, telemetry quota
 * flush and retention, update repository refresh, rollout tick, blob store sweep and the scheduled audit checks (assessment). Shutdown is
 * orderly: it stops accepting, drains requests (for at most `http.shutdownGraceMs`, then ends
 * every connection left, idle TLS handshakes included) and closes storage.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { loadServerTls } from '../pki/ca.js';
import { ServerCertificateRenewal } from '../pki/server-renewal.js';
import type { Platform } from '../platform.js';
import { httpRoutes } from '../routes.js';
import { WalCheckpointer } from '../storage/wal-checkpointer.js';
import { SqliteBatchWorker } from '../telemetry/batch-worker.js';
import { buildHttpApp } from '../transport/http/app.js';
import { failureLimiters } from '../transport/http/failure-limiter.js';
import { MqttGateway } from '../transport/mqtt/broker.js';
import { readyWithin, sharedCountsConnection } from '../transport/mqtt/cluster.js';
import { BackupSchedule, scheduledKey } from '../ops/backup/schedule.js';
import { Metrics } from '../ops/metrics.js';
import { nodeMetricsThroughPrimary } from './workers.js';
import { Readiness } from '../ops/readiness.js';
import { BackgroundJobs } from './jobs.js';
import { JobLeaseStore } from '../ops/job-lease-store.js';
import { runRetention, type RetentionResult } from './retention.js';
import { SERVER_TLS } from '../transport/tls-policy.js';

/** How often the telemetry quota's counts are written to storage (what another node sees, what survives a crash). */
const QUOTA_FLUSH_MS = 5000;
const APP_KEY_TICK_MS = 10 * 60_000;
/** How long a starting node waits for the Redis of shared counts before counting in its own memory. */
const SHARED_COUNTS_WAIT_MS = 2000;

export interface RunningServer {
  app: FastifyInstance;
  /** What /metrics reads: the answers of the HTTPS port, the broker's counters. */
  metrics: Metrics;
  url: string;
  port: number;
  /** The MQTT broker, unless `mqtt.enabled` is false. */
  mqtt: MqttGateway | null;
  /** The server certificate's renewal (or reload from tlsCertFile/tlsKeyFile), checked every http.certificateCheckMinutes. */
  certificate: ServerCertificateRenewal;
  /** Runs the retention job now (after the one in flight, if any), as the daily timer does. */
  runRetention(): Promise<RetentionResult>;
  close(): Promise<void>;
}

export interface StartOptions {
  host?: string;
  port?: number;
  logger?: boolean;
  logStream?: NodeJS.WritableStream;
  /**
   * This process's number among the workers of the node (`serve --workers`, runner/workers.ts): on
   * every log line and in /metrics; only worker 1 renews the server certificate, the others follow it.
   */
  worker?: number;
}

export async function startServer(platform: Platform, options: StartOptions = {}): Promise<RunningServer> {
  const { config } = platform;
  const files = config.http.tlsCertFile && config.http.tlsKeyFile ? { cert: config.http.tlsCertFile, key: config.http.tlsKeyFile } : null;
  const tls = files
    ? { cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8') }
    : loadServerTls(config.dataDir, platform.box);
  const metrics = new Metrics();
  const readiness = new Readiness();
  // With Redis, every node and worker of the deployment counts a client's requests and the device
  // doors' failed authentications together (the deployment's CA chain names the keys, so
  // deployments sharing a Redis do not mix).
  const sharedCounts = config.mqtt.redisUrl
    ? sharedCountsConnection(config.mqtt.redisUrl, (error) =>
        // Reported once per outage, after the app exists (ioredis reports asynchronously).
        app.log.warn(
          { err: error },
          'HTTP rate limits: Redis unreachable; until it answers, requests are let through uncounted and failed device authentications are counted per process',
        ),
      )
    : null;
  // The first requests are counted with the other nodes' too, unless Redis is away (then in this process until it answers).
  if (sharedCounts) await readyWithin(sharedCounts, SHARED_COUNTS_WAIT_MS);
  const deployment = createHash('sha256')
    .update(await platform.pki.caChain())
    .digest('hex')
    .slice(0, 16);
  const limiters = failureLimiters(sharedCounts ? { redis: sharedCounts, prefix: `bulwark:${deployment}:device-auth-failures:` } : null);
  const app = await buildHttpApp({
    tls,
    http: config.http,
    logLevel: config.log.level,
    metrics,
    routes: httpRoutes(platform, metrics, readiness, limiters),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.logStream ? { logStream: options.logStream } : {}),
    ...(options.worker ? { logBindings: { worker: options.worker } } : {}),
    ...(sharedCounts ? { rateLimitStore: { redis: sharedCounts, nameSpace: `bulwark:${deployment}:http-rate:` } } : {}),
  });
  if (sharedCounts) app.addHook('onClose', async () => void (await sharedCounts.quit().catch(() => sharedCounts.disconnect())));
  metrics.gauge(
    'worker',
    'The worker that answered this scrape (serve --workers; in /metrics?scope=worker only): 1…N; 0 for a node of one process',
    () => options.worker ?? 0,
    'omit',
  );
  metrics.gauge(
    'processes',
    'The processes whose metrics this scrape sums (the workers of the node; 1 for a node of one process)',
    () => 1,
  );
  if (options.worker) metrics.aggregateThrough(nodeMetricsThroughPrimary(metrics.registry));
  const host = options.host ?? config.http.host;
  // Every TCP connection, from its accept: one that never finishes its TLS handshake would hold shutdown for Node's 120 s.
  const connections = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  try {
    await app.listen({ host, port: options.port ?? config.http.port });
  } catch (error) {
    await app.close(); // the shared-counts connection too: a node that cannot listen must still end
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? config.http.port);
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;

  const hsm = platform.hsm;
  const certificate = new ServerCertificateRenewal(
    {
      dataDir: config.dataDir,
      box: platform.box,
      token: hsm ? () => hsm.get() : null,
      clock: platform.clock,
      audit: platform.audit,
      files,
      renewDays: config.http.certificateRenewDays,
      renews: (options.worker ?? 1) === 1,
      serverNames: config.http.serverNames,
      log: app.log.child({ component: 'tls' }),
    },
    { cert: tls.cert, key: tls.key },
  );
  // A new certificate only changes what new handshakes see: open connections keep going.
  const httpsServer = app.server as unknown as TlsServer;
  certificate.onChange((next) => httpsServer.setSecureContext({ ...SERVER_TLS, cert: next.cert, key: next.key }));

  let mqtt: MqttGateway | null = null;
  if (config.mqtt.enabled) {
    mqtt = new MqttGateway(
      platform,
      config.mqtt,
      app.log.child({ component: 'mqtt' }),
      limiters('mqtt-token', config.auth.loginRateLimitPerMinute),
    );
    try {
      await mqtt.start({ cert: tls.cert, key: tls.key, clientCa: await platform.pki.caChain() });
      const gateway = mqtt;
      certificate.onChange((next) => gateway.setServerCertificate(next));
      readiness.add('broker', () => gateway.health().broker);
      if (gateway.health().redis !== null) readiness.add('redis', () => gateway.health().redis === true);
      // Live streams of companion apps follow devices through the broker's emitter (every node's, with Redis).
      platform.binding.live.connect(mqtt.deviceEvents(), (error) => app.log.error({ err: error }, 'live stream delivery failed'));
      const { stats } = mqtt;
      metrics.gauge(
        'mqtt_sessions',
        "Device sessions (authenticated MQTT connections) held: the node's sum; with ?scope=worker, the answering worker's",
        () => gateway.sessionCount,
      );
      metrics.countersOf(
        'mqtt_events_total',
        'MQTT gateway events since the node started: refused connections, authentication failures, ACL denials, drops…',
        () => stats,
      );
    } catch (error) {
      await mqtt.close();
      await app.close();
      throw error;
    }
  }

  // keys/master.key.previous (the journal of `keys rotate-master`) present: a rotation runs now or was
  // interrupted. Values open under either key meanwhile; an interrupted one is finished by running it again.
  if (platform.box.keyIds().length > 1)
    app.log.warn(
      { keyIds: platform.box.keyIds() },
      'master-key rotation unfinished: values open under both keys; run `bulwark keys rotate-master` to finish it unless one is running now',
    );

  // SQLite: WAL checkpoints off the event loop (the PUBACK latency of telemetry depends on it).
  const { database } = platform;
  const walCheckpointer =
    database.engine === 'sqlite' && database.file
      ? await WalCheckpointer.start(database.file, app.log.child({ component: 'sqlite' }), {
          main: database.db,
          // The WAL starts over between two telemetry batches: the PUBACKs wait a moment, the event loop does not.
          quiesce: (work) => (mqtt ? mqtt.writer.between(work) : work()),
        })
      : null;
  // SQLite with database.telemetryWriterThread (the default): telemetry batches are committed by a
  // worker thread with its own connection, off the event loop (docs/operations.md: on two cores, at
  // the same CPU a message, it halved the open loop's event-loop delay). This is the one place that
  // decides: otherwise, and without a running server (CLI commands), they are written on the
  // platform's connection. A worker that cannot start leaves them there, reported.
  const batchWorker =
    platform.config.database.telemetryWriterThread && database.engine === 'sqlite' && database.file
      ? await SqliteBatchWorker.start(database.file, app.log.child({ component: 'sqlite' }), database.writeTurns ?? null).catch(
          (error: unknown) => {
            app.log.error({ err: error }, 'telemetry writer thread not started: batches are written on the event loop');
            return null;
          },
        )
      : null;
  if (batchWorker) {
    platform.telemetry.store.writeBatchesWith(batchWorker);
    // Its kernel thread ID: the line to read in `top -H -p <pid>` for the writer's CPU.
    app.log.info({ thread: batchWorker.osThreadId }, 'telemetry writer thread started');
  }
  platform.telemetry.store.reportLogMovesTo(app.log.child({ component: 'sqlite' }));
  const logMover = platform.telemetry.store.logMover;
  if (logMover) {
    metrics.gauge(
      'telemetry_log_rows',
      "SQLite: readings waiting in the telemetry log to be moved into the stored table, a generation at a time; a number that keeps rising means moves are failing (see the log's errors), and every query by device scans them",
      () => logMover.rowsWaiting,
    );
    metrics.countersOf(
      'telemetry_log_moves_total',
      'SQLite: the telemetry log moved into the stored table since the node started: rows, generations, slices, and slices that failed (their rows stay in the log)',
      () => ({
        movedRows: logMover.stats.movedRows,
        generations: logMover.stats.generations,
        slices: logMover.stats.slices,
        failures: logMover.stats.failures,
      }),
    );
    metrics.gauge(
      'telemetry_log_longest_slice_seconds',
      'SQLite: the longest a slice of the log held the write lock since the node started (batches of readings wait behind it)',
      () => logMover.stats.longestSliceMs / 1000,
      'max',
    );
  }

  // Deployment-wide jobs run on one node at a time (runner/jobs.ts); this node's name in their leases.
  const jobs = new BackgroundJobs(app.log, {
    store: new JobLeaseStore(platform.db),
    holder: `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`,
    clock: platform.clock,
  });
  jobs.every(config.audit.checkpointIntervalSeconds * 1000, 'audit checkpoint failed', () => platform.audit.checkpoint());
  // What devices were admitted under their daily telemetry quota is written every few seconds.
  jobs.every(QUOTA_FLUSH_MS, 'telemetry quota usage not written', () => platform.telemetry.quota.flush());
  // Anomaly detection (docs/assessment.md): the broker's behaviour counts are written in batches,
  // scored on a timer, and kept anomaly.retentionDays.
  const anomaly = platform.assessment.anomaly;
  if (config.anomaly.enabled) {
    jobs.every(config.anomaly.flushSeconds * 1000, 'device behaviour not written', () => anomaly.recorder.flush());
    jobs.deploymentWide('anomaly-detector', config.anomaly.evaluateSeconds * 1000, 'anomaly detector tick failed', () =>
      anomaly.detector.tick().then((result) => {
        if (result.opened + result.resolved + result.quarantined.length > 0)
          app.log.warn(
            { opened: result.opened, resolved: result.resolved, quarantined: result.quarantined },
            'anomaly detector: findings changed',
          );
      }),
    );
    jobs.deploymentWide('anomaly-retention', 3_600_000, 'behaviour retention failed', () => anomaly.service.prune());
    metrics.countersOf(
      'device_behaviour_total',
      'Device behaviour this node counted for anomaly detection: messages, bytes, connects, authentication failures, ACL denials…',
      () => anomaly.recorder.totals,
    );
    metrics.countersOf(
      'anomaly_detector_total',
      'Anomaly detector ticks, devices scored, violations, findings, quarantines',
      () => anomaly.detector.stats,
    );
    metrics.gauge(
      'device_behaviour_tracked_devices',
      'Devices whose behaviour this node counts in memory now',
      () => anomaly.recorder.trackedDevices,
    );
  }
  jobs.deploymentWide('telemetry-retention', config.telemetry.pruneIntervalMinutes * 60_000, 'telemetry retention failed', () =>
    platform.telemetry.retention.run(),
  );
  // Online TUF metadata is re-signed before it expires; rollouts advance or halt by themselves.
  jobs.every(config.updates.refreshIntervalSeconds * 1000, 'update repository refresh failed', () => platform.updates.repository.refresh());
  jobs.deploymentWide('rollouts', config.updates.rolloutTickSeconds * 1000, 'rollout tick failed', () =>
    platform.updates.rollouts.tick().then((result) => {
      if (result.withdrawn > 0 || result.silent > 0) app.log.info(result, 'rollout tick: offers timed out');
    }),
  );
  // Images no release names (past their grace period) and temporary files of uploads cut off by a
  // crash leave the blob store at start and hourly.
  // Access-token signing keys rotate after apps.keyLifetimeDays and retire after apps.keyOverlapHours;
  // ended app grants, spent refresh tokens and old codes are deleted.
  jobs.deploymentWide('app-signing-keys', APP_KEY_TICK_MS, 'app signing key schedule failed', () =>
    platform.apps.keys.tick().then((result) => {
      if (result.rotated + result.retired > 0) app.log.info(result, 'app signing keys rotated or retired on schedule');
    }),
  );
  jobs.deploymentWide('app-grant-pruning', APP_KEY_TICK_MS, 'app grant pruning failed', () => platform.apps.grants.prune());
  const sweepUploads = () =>
    platform.updates.uploads.sweep().then((removed) => {
      if (removed.orphans + removed.files + removed.temporary > 0) app.log.info(removed, 'blob store swept');
    });
  void sweepUploads().catch((error: unknown) => app.log.error({ err: error }, 'blob store sweep failed'));
  jobs.every(3_600_000, 'blob store sweep failed', sweepUploads);
  // Daily: ended sessions and old outbox mail are deleted (retention.*); the audit log is never pruned.
  let retentionRun: Promise<unknown> = Promise.resolve();
  const retain = (): Promise<RetentionResult> => {
    const run = retentionRun.then(() => runRetention(platform));
    retentionRun = run.then(
      (result) => {
        if (result.sessions + result.outboxMails > 0) app.log.info(result, 'retention: ended sessions and old outbox mail deleted');
      },
      (error: unknown) => app.log.error({ err: error }, 'retention job failed'),
    );
    return run;
  };
  void retain().catch(() => undefined);
  // retain() logs its own failure.
  jobs.deploymentWide('retention', 24 * 3_600_000, 'retention job failed', () => retain().catch(() => undefined));
  // The server certificate renews itself before expiry (or follows tlsCertFile/tlsKeyFile on disk), without a restart.
  void certificate.check();
  jobs.every(config.http.certificateCheckMinutes * 60_000, 'server certificate check failed', () => certificate.check());
  // Scheduled backups (backup.intervalHours): a misconfigured schedule stops the start, not the first backup hours later.
  const schedule =
    config.backup.intervalHours > 0
      ? new BackupSchedule(
          { config, box: platform.box, token: hsm ? () => hsm.get() : null },
          scheduledKey(config, process.env),
          platform.audit,
        )
      : null;
  if (schedule)
    jobs.deploymentWide('backup', config.backup.intervalHours * 3_600_000, 'scheduled backup failed', () =>
      schedule
        .run()
        .then(({ backup, deleted }) =>
          app.log.info({ file: backup.file, bytes: backup.bytes, deleted: deleted.length }, 'scheduled backup written'),
        ),
    );
  // Audit checks over every organization (assessment.intervalMinutes; 0: on demand only).
  if (config.assessment.intervalMinutes > 0)
    jobs.deploymentWide('assessment', config.assessment.intervalMinutes * 60_000, 'scheduled assessment run failed', () =>
      platform.assessment.service.runAll().then((runs) => {
        const opened = runs.reduce((n, r) => n + r.opened, 0);
        const resolved = runs.reduce((n, r) => n + r.resolved, 0);
        if (opened + resolved > 0) app.log.info({ organizations: runs.length, opened, resolved }, 'assessment run: findings changed');
      }),
    );

  return {
    app,
    metrics,
    url: config.http.publicUrl ?? `https://${shownHost}:${port}`,
    port,
    mqtt,
    certificate,
    runRetention: retain,
    close: async () => {
      await jobs.stop();
      await retentionRun;
      await certificate.settled();
      await platform.telemetry.retention.stop();
      // Open live streams would hold the HTTP server's close: they end first (apps reconnect elsewhere).
      platform.binding.live.closeAll();
      await mqtt?.close();
      if (config.anomaly.enabled)
        await anomaly.recorder.flush().catch((error: unknown) => app.log.error({ err: error }, 'device behaviour not written'));
      await platform.telemetry.quota.flush().catch((error: unknown) => app.log.error({ err: error }, 'telemetry quota usage not written'));
      const grace = setTimeout(() => {
        for (const socket of connections) socket.destroy();
      }, config.http.shutdownGraceMs);
      await app.close();
      clearTimeout(grace);
      // Password reset requests do their work after answering: let it finish before storage closes.
      await platform.accounts.recovery.drain();
      await platform.audit.checkpoint().catch(() => undefined);
      // Batches still sent to the worker commit before it ends; any later one is written on the platform's connection.
      await platform.telemetry.store.stopMovingLog();
      platform.telemetry.store.writeBatchesWith(null);
      await batchWorker?.stop();
      await walCheckpointer?.stop();
      await platform.close();
    },
  };
}
