/**
 * Promise 6, tested the hard way: a real `bulwark serve` child process takes QoS 1 telemetry
 * over mutual TLS as fast as a device can send it and is killed with SIGKILL mid-stream. Every
 * message whose PUBACK the device received must be in the database afterwards.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { loadConfig } from '../ops/config.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { openPlatform } from '../platform.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../testing/devices.js';
import { ENGINES, type TestDatabase } from '../testing/engines.js';
import { startCli } from '../testing/cli.js';
import { UNLIMITED_DEVICE_RATES } from '../testing/mqtt.js';
import { LOG_GENERATION_ROWS } from './log-mover.js';

function serve(database: TestDatabase, extraEnv: NodeJS.ProcessEnv): { child: ChildProcess; mqttPort: Promise<number> } {
  // The per-device rate limits are lifted: the device must send as fast as it can, so that many
  // messages are in flight when the kill comes.
  const unlimited = Object.fromEntries(
    Object.entries(UNLIMITED_DEVICE_RATES).map(([key, value]) => [
      `BULWARK_MQTT_${key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`,
      String(value),
    ]),
  );
  const child = startCli(['serve', '--data-dir', database.dataDir], {
    BULWARK_DATABASE_URL: database.url,
    BULWARK_HTTP_PORT: '0',
    BULWARK_MQTT_PORT: '0',
    BULWARK_LOG_LEVEL: 'warn',
    ...unlimited,
    ...extraEnv,
  });
  let output = '';
  const mqttPort = new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /mqtts:\/\/[^:]+:(\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`serve exited (${code}) before listening:\n${output}`)));
  });
  return { child, mqttPort };
}

/** How batches are committed: by the SQLite writer thread (database.telemetryWriterThread, the default; PostgreSQL has none), or on the platform's connection. */
const WRITERS = [
  { name: 'batches by the writer thread (SQLite) or over the pool (PostgreSQL)', env: {}, sqliteOnly: false },
  { name: 'batches on the event loop', env: { BULWARK_DATABASE_TELEMETRY_WRITER_THREAD: 'false' }, sqliteOnly: true },
];

for (const engine of ENGINES) {
  describe(`acknowledged telemetry survives SIGKILL [${engine.engine}]`, { skip: engine.skip }, () => {
    let database: TestDatabase;
    /** A device per writer: each run counts its own device's rows. */
    const devices: TestDevice[] = [];
    let ca: string;

    before(async () => {
      database = await engine.create();
      const config = loadConfig({ dataDir: database.dataDir, env: {}, overrides: { database: { url: database.url, poolSize: 2 } } });
      const init = await initialize(config, DEFAULT_INIT, { database, env: {} });
      ca = readFileSync(init.caCertPath, 'utf8');
      const platform = await openPlatform(config, { database, env: {} });
      const org = await organizationIdOf(platform, init.organization.slug);
      const product = await testProduct(platform, org);
      for (const [i] of WRITERS.entries()) devices.push(await provisionTestDevice(platform, org, product, `KILL-${i + 1}`));
      await platform.close();
    });
    after(async () => {
      await database?.close();
    });

    for (const [i, writer] of WRITERS.entries()) {
      if (writer.sqliteOnly && engine.engine !== 'sqlite') continue;
      it(`loses no acknowledged QoS 1 message when the server is killed mid-stream (${writer.name})`, async () => {
        const device = devices[i]!;
        const { child, mqttPort } = serve(database, writer.env);
        try {
          const port = await mqttPort;
          const client = await mqtt.connectAsync(`mqtts://localhost:${port}`, {
            clientId: device.id,
            key: device.key,
            cert: device.cert,
            ca,
            protocolVersion: 4,
            reconnectPeriod: 0,
          });
          client.on('error', () => undefined);
          const acked: number[] = [];
          let sent = 0;
          let killed = false;
          const killAt = 400;
          // Keep 300 messages of 100 readings each in flight until the kill, so commits take long
          // enough that an acknowledgement sent before its commit would be caught by the kill.
          const readings = (seq: number) =>
            JSON.stringify({ batch: Array.from({ length: 100 }, (_, i) => ({ values: { seq, i, filler: 'x'.repeat(64) } })) });
          await new Promise<void>((resolve, reject) => {
            client.once('close', () =>
              killed ? undefined : reject(new Error(`the broker closed the connection before the kill (${acked.length} acknowledged)`)),
            );
            const pump = () => {
              while (!killed && sent - acked.length < 300) {
                const seq = sent++;
                client.publish(`d/${device.id}/telemetry`, readings(seq), { qos: 1 }, (error) => {
                  if (error || killed) return;
                  acked.push(seq);
                  if (acked.length >= killAt) {
                    killed = true;
                    child.kill('SIGKILL');
                    resolve();
                  } else pump();
                });
              }
            };
            pump();
          });
          client.end(true);
          await new Promise((resolve) =>
            child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve),
          );
          assert.equal(child.signalCode, 'SIGKILL');

          const rows = await database.db.selectFrom('telemetry_readings').select('data').where('device_id', '=', device.id).execute();
          const perSeq = new Map<number, number>();
          for (const r of rows) {
            const seq = (JSON.parse(r.data) as { seq: number }).seq;
            perSeq.set(seq, (perSeq.get(seq) ?? 0) + 1);
          }
          // A message is stored whole (its 100 readings in one transaction) or not at all.
          assert.ok(
            [...perSeq.values()].every((n) => n === 100),
            'no message half-stored',
          );
          const stored = new Set(perSeq.keys());
          const lost = acked.filter((seq) => !stored.has(seq));
          assert.deepEqual(lost, [], `${lost.length} of ${acked.length} acknowledged messages lost`);
          assert.ok(acked.length >= killAt);
          // Sent but unacknowledged messages may or may not be there; nothing else may be.
          assert.ok(perSeq.size <= sent, `${perSeq.size} messages stored, ${sent} sent`);
          if (engine.engine === 'sqlite') {
            // 40,000 readings and more: the log moved generations into the stored table while the node ran (log-mover.ts).
            const moved = await database.db
              .selectFrom('telemetry')
              .select((eb) => eb.fn.countAll<number>().as('n'))
              .where('device_id', '=', device.id)
              .executeTakeFirstOrThrow();
            assert.ok(Number(moved.n) >= LOG_GENERATION_ROWS, `${moved.n} readings moved out of the log before the kill`);
          }
        } finally {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }
      });
    }
  });
}
