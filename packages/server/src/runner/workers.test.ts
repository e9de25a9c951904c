/**
 * `bulwark serve --workers 2` as a real process on PostgreSQL and Redis: one HTTPS and one MQTT
 * port shared by two worker processes. Which worker holds a device's connection is read from the
 * database (`device_presence.node_id` is the broker's id, `bulwark-<worker pid>-…`); which worker
 * answered an API request, from its log line (each carries `worker`). SQLite and bad values of
 * `--workers` are refused before anything starts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { DIRECTOR_TARGETS_PATH, ErrorCodes } from '@bulwark/protocol';
import { newScrapeToken } from '../ops/scrape-token.js';
import { ENGINES } from '../testing/engines.js';
import { bulwark } from '../testing/cli.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../testing/devices.js';
import { HttpClient } from '../testing/http.js';
import { connectDevice, eventually, settle } from '../testing/mqtt.js';
import { redisProblem, REDIS_URL } from '../testing/redis.js';
import { firstSignIn, startTestPlatform, type TestPlatform } from '../testing/server.js';
import { startServerProcess, type ServerProcess } from '../testing/server-process.js';

const postgres = ENGINES.find((e) => e.engine === 'postgres')!;
const scrape = newScrapeToken();
/** `auth.loginRateLimitPerMinute`: also the failed device authentications an address may make a minute on each device door. */
const LOGIN_LIMIT = 6;
const problem = await redisProblem();

interface LogLine {
  msg?: string;
  worker?: number | string;
  pid?: number;
  workerPid?: number;
  reqId?: string;
  req?: { method?: string; url?: string };
}

describe('serve --workers 2 on PostgreSQL and Redis', { skip: postgres.skip || problem || false, timeout: 400_000 }, () => {
  let t: TestPlatform;
  let node: ServerProcess;
  let api: HttpClient;
  let token: string;
  const logs: LogLine[] = [];
  /** What the node wrote to standard error that is not a log line (an error a process died of). */
  const other: string[] = [];
  const devices: TestDevice[] = [];
  const clients = new Map<string, MqttClient>();

  /** The pid of each worker now running, by worker number (from the primary's 'worker started' lines). */
  const workerPids = () => {
    const pids = new Map<number, number>();
    for (const line of logs) if (line.msg === 'worker started' && typeof line.worker === 'number') pids.set(line.worker, line.workerPid!);
    return pids;
  };
  /** The pid of the worker holding each device's MQTT session now. */
  async function holders(): Promise<Map<string, number>> {
    const rows = await t.database.db.selectFrom('device_presence').select(['device_id', 'node_id', 'connected_since']).execute();
    return new Map(
      rows.filter((r) => r.connected_since !== null).map((r) => [r.device_id, Number(/^bulwark-(\d+)-/.exec(r.node_id ?? '')?.[1])]),
    );
  }

  before(async () => {
    t = await startTestPlatform(postgres, { mqtt: { enabled: false } });
    const org = await organizationIdOf(t.platform, t.org);
    const product = await testProduct(t.platform, org);
    for (let i = 0; i < 6; i++) devices.push(await provisionTestDevice(t.platform, org, product, `WORKERS-${i}`));
    const env = {
      BULWARK_DATABASE_URL: t.database.url,
      BULWARK_DATABASE_POOL_SIZE: '4',
      BULWARK_MQTT_REDIS_URL: REDIS_URL,
      BULWARK_MQTT_WATCH_INTERVAL_MS: '100',
      BULWARK_LOG_LEVEL: 'info',
      BULWARK_METRICS_TOKEN_HASH: scrape.tokenHash,
      BULWARK_AUTH_LOGIN_RATE_LIMIT_PER_MINUTE: String(LOGIN_LIMIT),
    };
    node = await startServerProcess(t.database.dataDir, t.ca, env, 180_000, ['--workers', '2']);
    let pending = '';
    const read = (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('{')) logs.push(JSON.parse(line) as LogLine);
        else if (line.trim()) other.push(line);
      }
    };
    read(Buffer.from(node.startOutput));
    node.child.stderr!.on('data', read);
    api = new HttpClient(`https://localhost:${node.httpsPort}`, t.ca);
    ({ token } = await firstSignIn(api, t.org, t.owner, () => Date.now()));
  });

  after(async () => {
    for (const client of clients.values()) client.end(true);
    api?.close();
    if (node?.child.exitCode === null) node.child.kill('SIGKILL');
    await t?.close();
  });

  const connect = async (d: TestDevice) => {
    const client = await connectDevice(node.mqttPort, t.ca, d, d.id, { reconnectPeriod: 200 });
    await client.subscribeAsync(`d/${d.id}/commands/+`, { qos: 1 });
    client.on('message', (topic) => {
      if (topic.startsWith(`d/${d.id}/commands/`) && !topic.endsWith('/result'))
        void client.publishAsync(`${topic}/result`, JSON.stringify({ status: 'ok', result: { device: d.serial } }), { qos: 1 });
    });
    clients.set(d.id, client);
  };

  it('starts two workers behind one HTTPS port and one MQTT port, and says so once', async () => {
    await eventually(() => workerPids().size === 2, 5000, 'two workers started');
    const ready = await api.get('/readyz');
    assert.equal(ready.status, 200, ready.text);
    assert.deepEqual(ready.body.checks, { database: true, broker: true, redis: true });
    const pids = [...workerPids().values()];
    assert.equal(new Set(pids).size, 2);
    assert.ok(!pids.includes(node.child.pid!), 'the primary serves nothing itself');
    assert.equal(node.startOutput.match(/Bulwark API listening on/g)?.length, 1);
    assert.match(node.startOutput, /Serving with 2 worker processes\./);
  });

  it('devices connecting land on both workers (the broker id in device_presence names the worker pid)', async () => {
    for (const d of devices) await connect(d);
    await eventually(async () => (await holders()).size === devices.length, 5000, 'every device present');
    const held = await holders();
    const pids = new Set(workerPids().values());
    for (const pid of held.values()) assert.ok(pids.has(pid), `a device is held by ${pid}, not a worker (${[...pids].join(', ')})`);
    assert.equal(new Set(held.values()).size, 2, `devices on ${[...new Set(held.values())].join(', ')}`);
  });

  it('a command sent over HTTPS reaches devices on both workers, crossing from the worker that took the request', async () => {
    const held = await holders();
    const byPid = new Map([...workerPids()].map(([worker, pid]) => [pid, worker]));
    let crossed = 0;
    for (const d of devices) {
      const sent = await api.post(`/api/v1/devices/${d.id}/commands`, { name: 'identify' }, { token });
      assert.equal(sent.status, 202, sent.text);
      const done = await api.get(`/api/v1/devices/${d.id}/commands/${sent.body.id}?waitMs=5000`, { token });
      assert.equal(done.body.status, 'succeeded', done.text);
      assert.deepEqual(done.body.result, { device: d.serial });
      await eventually(
        () => logs.some((l) => l.req?.method === 'POST' && l.req.url === `/api/v1/devices/${d.id}/commands`),
        2000,
        'log line',
      );
      const served = logs.find((l) => l.req?.method === 'POST' && l.req.url === `/api/v1/devices/${d.id}/commands`)!.worker;
      if (served !== byPid.get(held.get(d.id)!)) crossed++;
    }
    assert.ok(crossed > 0, 'at least one command was taken by the worker not holding its device');
  });

  it('/metrics sums every worker, whichever takes the connection; ?scope=worker is the one that answered (bulwark_worker)', async () => {
    /** Over a new connection: the primary hands each to the next worker. */
    const scrapeOnce = async (path: string) => {
      const probe = new HttpClient(`https://localhost:${node.httpsPort}`, t.ca);
      try {
        const res = await probe.get(path, { headers: { authorization: `Bearer ${scrape.token}` } });
        assert.equal(res.status, 200, res.text);
        return res.text;
      } finally {
        probe.close();
      }
    };
    const healthzAnswers = (text: string) =>
      Number(/^bulwark_http_request_duration_seconds_count\{method="GET",route="\/healthz",status="200"\} (\d+)$/m.exec(text)?.[1] ?? 0);

    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(/^bulwark_worker (\d+)$/m.exec(await scrapeOnce('/metrics?scope=worker'))![1]!);
    assert.deepEqual([...seen].sort(), ['1', '2'], 'new connections reach both workers');

    const before = healthzAnswers(await scrapeOnce('/metrics'));
    // Each over a new connection, so both workers answer some of them.
    for (let i = 0; i < 6; i++) {
      const probe = new HttpClient(`https://localhost:${node.httpsPort}`, t.ca);
      try {
        assert.equal((await probe.get('/healthz')).status, 200);
      } finally {
        probe.close();
      }
    }
    for (let i = 0; i < 4; i++) {
      const text = await scrapeOnce('/metrics');
      assert.equal(healthzAnswers(text), before + 6, "every worker's answers, summed, whichever worker took the scrape");
      assert.match(text, /^bulwark_processes 2$/m);
      assert.doesNotMatch(text, /^bulwark_worker /m, 'the node has no one worker number');
    }
    const own = await scrapeOnce('/metrics?scope=worker');
    assert.ok(healthzAnswers(own) < before + 6, `one worker's own count is part of the sum (${healthzAnswers(own)})`);
    assert.match(own, /^bulwark_processes 1$/m);
  });

  it('telemetry from devices on both workers is stored', async () => {
    for (const d of devices)
      for (let i = 0; i < 10; i++)
        await clients.get(d.id)!.publishAsync(`d/${d.id}/telemetry`, JSON.stringify({ values: { i } }), { qos: 1 });
    for (const d of devices) assert.equal(await t.platform.telemetry.store.count(d.id), 10, d.serial);
  });

  it('counts failed device authentications on both workers together: the attempt past the limit is refused on either', async () => {
    /** Over a new connection (the primary hands each to the next worker), without a client certificate. */
    const attempt = async () => {
      const probe = new HttpClient(`https://localhost:${node.httpsPort}`, t.ca);
      try {
        return await probe.get(DIRECTOR_TARGETS_PATH);
      } finally {
        probe.close();
      }
    };
    const statuses: number[] = [];
    for (let i = 0; i < LOGIN_LIMIT; i++) statuses.push((await attempt()).status);
    assert.deepEqual(statuses, Array<number>(LOGIN_LIMIT).fill(401));
    const answeredBy = () => new Set(logs.filter((l) => l.req?.url === DIRECTOR_TARGETS_PATH).map((l) => l.worker));
    await eventually(() => answeredBy().size === 2, 5000, 'the failures landed on both workers');
    for (let i = 0; i < 2; i++) {
      const refused = await attempt();
      assert.equal(refused.status, 429, refused.text);
      assert.equal(refused.body.error.code, ErrorCodes.rateLimited);
    }
  });

  it('a worker killed with SIGKILL is restarted by the primary, and its devices reconnect', async () => {
    const before = workerPids();
    const [victimWorker, victim] = [...before][0]!;
    const held = await holders();
    const moved = devices.filter((d) => held.get(d.id) === victim);
    assert.ok(moved.length > 0);
    process.kill(victim, 'SIGKILL');
    await eventually(() => workerPids().get(victimWorker) !== victim, 10_000, 'the worker forked again');
    assert.ok(logs.some((l) => l.msg === `worker ${victimWorker} exited: restarting it` && l.workerPid === victim));
    const replacement = workerPids().get(victimWorker)!;
    const survivors = new Set([...workerPids().values()]);
    assert.ok(survivors.has(replacement));
    await eventually(
      async () => {
        const now = await holders();
        return moved.every((d) => survivors.has(now.get(d.id)!));
      },
      15_000,
      'the devices of the killed worker reconnected',
    );
    for (const d of moved) {
      await clients.get(d.id)!.publishAsync(`d/${d.id}/telemetry`, JSON.stringify({ values: { i: 10 } }), { qos: 1 });
      assert.equal(await t.platform.telemetry.store.count(d.id), 11, d.serial);
    }
    // The restarted worker serves too: new connections reach both (the primary deals them in turn).
    await eventually(
      async () => {
        const probe = new HttpClient(`https://localhost:${node.httpsPort}`, t.ca);
        try {
          await Promise.all(Array.from({ length: 4 }, () => probe.get('/healthz', { headers: { connection: 'close' } })));
        } finally {
          probe.close();
        }
        await settle(100);
        return logs.some((l) => l.worker === victimWorker && l.pid === replacement && l.req?.url === '/healthz');
      },
      // Starting a worker (loading the platform, opening storage) takes seconds on a busy machine.
      60_000,
      'the restarted worker answers',
    );
  });

  it('SIGTERM stops every worker and the primary exits 0', async () => {
    const pids = [...workerPids().values()];
    for (const client of clients.values()) client.end(true);
    const code = await node.stop(60_000);
    const said = logs.filter((l) => /worker|stop/.test(l.msg ?? '') || (l as { level?: number }).level! >= 50);
    assert.equal(code, 0, `the primary's exit code; what the node said:\n${[...said.map((l) => JSON.stringify(l)), ...other].join('\n')}`);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} still runs`);
    assert.ok(logs.some((l) => l.msg === 'stop requested: the workers drain and stop'));
    assert.equal(logs.filter((l) => l.msg === 'worker stopped').length, 2);
  });

  it('the workers of a primary killed with SIGKILL stop by themselves', async () => {
    const orphaned = await startServerProcess(
      t.database.dataDir,
      t.ca,
      { BULWARK_DATABASE_URL: t.database.url, BULWARK_DATABASE_POOL_SIZE: '2', BULWARK_MQTT_REDIS_URL: REDIS_URL },
      180_000,
      ['--workers', '2'],
    );
    const pids = orphaned.startOutput
      .split('\n')
      .filter((line) => line.includes('"msg":"worker started"'))
      .map((line) => (JSON.parse(line) as LogLine).workerPid!);
    assert.equal(pids.length, 2);
    orphaned.child.kill('SIGKILL');
    const running = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await eventually(() => !pids.some(running), 60_000, 'both workers exited');
  });

  it('a worker that keeps failing before it listens (its port taken) stops the node with exit 1', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = String((taken.address() as AddressInfo).port);
      const result = await bulwark(['serve', '--data-dir', t.database.dataDir, '--workers', '2', '--port', port], {
        BULWARK_DATABASE_URL: t.database.url,
        BULWARK_DATABASE_POOL_SIZE: '2',
        BULWARK_MQTT_REDIS_URL: REDIS_URL,
        BULWARK_MQTT_PORT: '0',
      });
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /EADDRINUSE/);
      assert.match(result.stderr, /worker \d exited before listening 3 times in a row: the node stops/);
      assert.match(result.stderr, /exited: restarting it/);
    } finally {
      taken.close();
    }
  });
});

describe('serve --workers: what is refused before anything starts', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bulwark-workers-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('refuses two workers on SQLite, with what to do and a stable code', async () => {
    const result = await bulwark(['serve', '--data-dir', dataDir, '--workers', '2']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /node\.workers \(BULWARK_NODE_WORKERS\) is 2/);
    assert.match(result.stderr, /database\.url \(BULWARK_DATABASE_URL\): SQLite \(the embedded database\) takes one process/);
    assert.match(result.stderr, /\[config\.workers_need_shared_state\]/);
  });

  it('refuses several workers on PostgreSQL without Redis for the broker', async () => {
    const result = await bulwark(['serve', '--data-dir', dataDir, '--workers', 'auto'], {
      BULWARK_DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
    });
    assert.equal(result.code, 2, result.stderr);
    assert.doesNotMatch(result.stderr, /database\.url/);
    assert.match(result.stderr, /mqtt\.redisUrl \(BULWARK_MQTT_REDIS_URL\)/);
    assert.match(result.stderr, /\[config\.workers_need_shared_state\]/);
  });

  for (const bad of ['0', 'abc', '2.5', '-1', '257'])
    it(`refuses --workers ${bad}`, async () => {
      const result = await bulwark(['serve', '--data-dir', dataDir, '--workers', bad]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /node\.workers \(BULWARK_NODE_WORKERS\): must be a whole number from 1 to 256, or auto/);
      assert.match(result.stderr, /\[config\.invalid\]/);
    });
});
