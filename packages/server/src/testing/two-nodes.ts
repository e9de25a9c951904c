/**
 * Two platform nodes of one deployment in one test process: node 1 a test platform on PostgreSQL
 * (startTestPlatform), node 2 a second platform on the same database, clock and config, serving
 * HTTPS (and MQTT, unless disabled) on ports of its own. Both route MQTT and count rate limits and
 * failed authentications through the machine's Redis (mqtt.redisUrl). For what nodes share:
 * cluster.test, shared-rate-limit.test, symmetric-keys-across-nodes.test.
 */
import { openPlatform, type Platform } from '../platform.js';
import { startServer, type RunningServer } from '../runner/server.js';
import { ENGINES } from './engines.js';
import { HttpClient } from './http.js';
import { redisProblem, REDIS_URL } from './redis.js';
import { startTestPlatform, type TestPlatform } from './server.js';

export const POSTGRES = ENGINES.find((e) => e.engine === 'postgres')!;

/** Why two nodes cannot run here (PostgreSQL or Redis unreachable), or false. Outside CI an unreachable Redis says so loudly. */
export async function twoNodesSkip(): Promise<string | false> {
  const problem = await redisProblem();
  return POSTGRES.skip || (problem ? `Redis unreachable: ${problem}` : false);
}

export interface SecondNode {
  platform: Platform;
  server: RunningServer;
  /** A client of node 2's HTTPS port (the deployment's CA). */
  api: HttpClient;
  close(): Promise<void>;
}

/** Node 1 with `config` (its `mqtt` on port 0 with the test Redis, unless `config.mqtt` says otherwise), and node 2 beside it. */
export async function startTwoNodes(config: Record<string, unknown> = {}): Promise<{ t: TestPlatform; node2: SecondNode }> {
  const mqtt = { port: 0, redisUrl: REDIS_URL, ...(config.mqtt as Record<string, unknown> | undefined) };
  const t = await startTestPlatform(POSTGRES, { ...config, mqtt });
  try {
    const platform = await openPlatform(t.config, { database: t.database, clock: t.clock, env: {} });
    const server = await startServer(platform, { port: 0, host: '127.0.0.1', logger: false });
    const api = new HttpClient(`https://localhost:${server.port}`, t.ca);
    const close = async () => {
      api.close();
      await server.close();
    };
    return { t, node2: { platform, server, api, close } };
  } catch (error) {
    await t.close();
    throw error;
  }
}
