/**
 * Several platform nodes serving one fleet: MQTT messages are routed between the nodes' brokers
 * through Redis (mqemitter-redis: every node sees every message and delivers to its own
 * subscribers), and sessions, subscriptions and retained messages live in Redis
 * (aedes-persistence-redis), so a device may reconnect to any node. State and telemetry are in
 * the shared PostgreSQL database; nothing else is shared.
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { Redis, type Command, type RedisOptions } from 'ioredis';

const require = createRequire(import.meta.url);

export interface RedisBackends {
  mq: unknown;
  persistence: unknown;
  /** Whether every Redis connection of this node is up (readiness). */
  reachable(): boolean;
  /** Closes every Redis connection of this node (Aedes closes its emitter, not its persistence). */
  close(): Promise<void>;
}

/** ioredis options from a redis:// or rediss:// URL (`/N` selects database N). */
export function redisOptions(url: string): RedisOptions {
  const parsed = new URL(url);
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new Error(`mqtt.redisUrl: "${parsed.pathname.slice(1)}" is not a Redis database number`);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    db,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
    // A node that loses Redis keeps retrying rather than crashing; messages wait meanwhile.
    maxRetriesPerRequest: null,
  };
}

/**
 * A connection for counts every node shares (HTTP rate limits): a command fails at once while Redis
 * is away (no offline queue, 250 ms at most) rather than wait, so a caller can go on without it.
 */
export function sharedCountsConnection(url: string, onError: (error: Error) => void): Redis {
  const connection = new Redis({ ...redisOptions(url), maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 250 });
  reportOncePerOutage([connection], onError);
  return connection;
}

/**
 * Resolves once the connection is ready, or after `ms` (a Redis that is away is waited for no
 * longer: meanwhile its users go on without it).
 */
export async function readyWithin(connection: Redis, ms: number): Promise<boolean> {
  if (connection.status === 'ready') return true;
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      connection.off('ready', onReady);
      resolve(ready);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    connection.once('ready', onReady);
  });
}

/**
 * Passes the connections' first error to `onError` and no other until one of them is ready again:
 * a lost Redis is reported once per outage. Returns the reporter, for other emitters of the same outage.
 */
function reportOncePerOutage(connections: Redis[], onError: (error: Error) => void): (error: Error) => void {
  let reported = false;
  const report = (error: Error) => {
    if (!reported) onError(error);
    reported = true;
  };
  for (const c of connections) {
    c.on('error', report);
    c.on('ready', () => (reported = false));
  }
  return report;
}

/**
 * A connection whose failed commands are never unhandled rejections. aedes-persistence-redis sends
 * some commands without awaiting them (the `lrem` of putWill and delWill): one cut off by a closing
 * or lost connection ("Connection is closed.") was a rejection nobody handled, and it ended the
 * process (a worker stopping with SIGTERM exited 1 in runner/workers.test.ts). Whoever awaits a
 * command still gets its error.
 */
class BackendConnection extends Redis {
  override sendCommand(command: Command, ...rest: unknown[]): unknown {
    command.promise.catch(() => undefined);
    return (super.sendCommand as (command: Command, ...rest: unknown[]) => unknown)(command, ...rest);
  }
}

/** How long closing waits for the replies to commands already sent (the sessions' last writes). */
const CLOSE_GRACE_MS = 2000;

/** The emitter's and the persistence's connections are made here, so this node can close them all. */
export function redisBackends(url: string, onError: (error: Error) => void = () => undefined): RedisBackends {
  const options = redisOptions(url);
  const connections = [new BackendConnection(options), new BackendConnection(options), new BackendConnection(options)];
  // A lost Redis is reported once per outage (and shows in readiness), never thrown: ioredis
  // reconnects by itself, and commands wait for it meanwhile.
  const report = reportOncePerOutage(connections, onError);
  const [subConn, pubConn, conn] = connections as [Redis, Redis, Redis];
  const mqemitterRedis = require('mqemitter-redis') as (opts: Record<string, unknown>) => { state: EventEmitter };
  const persistenceRedis = require('aedes-persistence-redis') as (opts: Record<string, unknown>) => unknown;
  const mq = mqemitterRedis({ subConn, pubConn });
  // mqemitter-redis passes each connection error on to its `state` emitter, and an 'error' event
  // nobody listens to ends the process: without this, losing Redis for a moment killed the node.
  mq.state.on('error', report);
  return {
    mq,
    persistence: persistenceRedis({ conn }),
    reachable: () => connections.every((c) => c.status === 'ready'),
    // QUIT is answered after every command sent before it, so the sessions' last writes land; a
    // connection that is down, or a QUIT unanswered in time, is cut.
    close: async () => {
      await Promise.all(
        connections.map(async (c) => {
          if (c.status !== 'ready') return c.disconnect();
          const timer = setTimeout(() => c.disconnect(), CLOSE_GRACE_MS);
          await c.quit().catch(() => c.disconnect());
          clearTimeout(timer);
        }),
      );
    },
  };
}
