/**
 * Backup and restore, end to end on both engines: a node with devices, certificates, telemetry
 * and an audit trail is backed up while a device keeps publishing QoS 1 telemetry; the archive is
 * restored into a fresh data directory (and a fresh PostgreSQL database): every table's rows and
 * digest equal what the signed manifest recorded, the audit chain verifies, and an existing device
 * connects to the restored node with its existing certificate. Altered, truncated, foreign or
 * wrongly keyed archives are refused before anything is written.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { BulwarkError } from '../../errors.js';
import { createRootCa } from '../../pki/ca.js';
import { openPlatform } from '../../platform.js';
import { startServer } from '../../runner/server.js';
import { digestPostgres, digestSqlite } from '../../storage/snapshot.js';
import { createEmptyDatabase, dropDatabase, ENGINES } from '../../testing/engines.js';
import { organizationIdOf, provisionTestDevice, testProduct, type TestDevice } from '../../testing/devices.js';
import { connectDevice, UNLIMITED_DEVICE_RATES } from '../../testing/mqtt.js';
import { startTestPlatform, type TestPlatform } from '../../testing/server.js';
import { loadConfig } from '../config.js';
import { createBackup } from './create.js';
import { restoreDrill } from './drill.js';
import { createBackupKeyFile } from './envelope.js';
import { BackupSchedule } from './schedule.js';
import { verifyManifest } from './manifest.js';
import { deploymentOf, restoreBackup, verifyArchive } from './restore.js';

async function refusedWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof BulwarkError, String(error));
    assert.equal(error.code, code, error.message);
    return true;
  });
}

for (const engine of ENGINES) {
  describe(`backup and restore (${engine.engine})`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let scratch: string;
    let keyFile: string;
    let archive: string;
    let deployment: string;
    let devices: TestDevice[];
    const restoredDatabases: string[] = [];

    const freshDatabase = async (): Promise<string | undefined> => {
      if (engine.engine !== 'postgres') return undefined;
      const { name, url } = await createEmptyDatabase('bulwark_r');
      restoredDatabases.push(name);
      return url;
    };

    before(async () => {
      t = await startTestPlatform(engine, { mqtt: { port: 0, ...UNLIMITED_DEVICE_RATES } });
      scratch = mkdtempSync(join(tmpdir(), 'bulwark-backup-test-'));
      keyFile = join(scratch, 'backup.key');
      createBackupKeyFile(keyFile);
      const org = await organizationIdOf(t.platform, t.org);
      const product = await testProduct(t.platform, org);
      devices = [];
      for (let i = 0; i < 3; i++) devices.push(await provisionTestDevice(t.platform, org, product, `backup-${i}`));
      deployment = deploymentOf(t.config.dataDir);
    });
    after(async () => {
      rmSync(scratch, { recursive: true, force: true });
      for (const name of restoredDatabases) await dropDatabase(name).catch(() => undefined);
      await t?.close();
    });

    test('backs up while a device publishes QoS 1 telemetry; the archive verifies', async () => {
      const device = devices[0]!;
      const client: MqttClient = await connectDevice(t.server.mqtt!.port, t.ca, device, device.id);
      let publishing = true;
      let acknowledged = 0;
      const publisher = (async () => {
        while (publishing) {
          await client.publishAsync(`d/${device.id}/telemetry`, JSON.stringify({ values: { temperature: acknowledged } }), { qos: 1 });
          acknowledged++;
        }
      })();
      while (acknowledged < 50) await new Promise((resolve) => setTimeout(resolve, 20));
      archive = join(scratch, 'node.bwb');
      const result = await createBackup(
        { config: t.config, box: t.platform.box, token: null },
        { out: archive, key: { kind: 'key-file', path: keyFile } },
      );
      const acknowledgedAtEnd = acknowledged;
      publishing = false;
      await publisher;
      client.end(true);

      assert.equal(result.deployment, deployment);
      assert.equal(result.engine, engine.engine);
      const verified = await verifyArchive({ archive, key: { kind: 'key-file', path: keyFile }, deployment }, join(scratch, 'v'));
      const staged = (name: string): Buffer => readFileSync(join(verified.staging, name));
      const manifest = staged('manifest.json');
      const signature = staged('manifest.sig');
      const root = staged('data/pki/ca.pem').toString();
      // One byte of the manifest changed, or a signature checked against another deployment's root: refused.
      const altered = Buffer.from(manifest);
      altered[altered.indexOf(Buffer.from('"rows": ')) + 8]! ^= 0x01;
      assert.throws(
        () => verifyManifest(altered, signature, root),
        (e: BulwarkError) => e.code === 'backup.signature_invalid',
      );
      const otherRoot = (await createRootCa('CN=Another deployment', new Date())).cert.toString('pem');
      assert.throws(
        () => verifyManifest(manifest, signature, otherRoot),
        (e: BulwarkError) => e.code === 'backup.signature_invalid',
      );
      assert.doesNotThrow(() => verifyManifest(manifest, signature, root));
      rmSync(verified.staging, { recursive: true, force: true });
      // Readings are stored rows or still in the SQLite log (storage/migrations/034_telemetry_log.ts).
      const telemetryRows = (verified.manifest.tables.telemetry?.rows ?? 0) + (verified.manifest.tables.telemetry_log?.rows ?? 0);
      // A consistent moment during ingest: some of the readings, never more than were acknowledged by the end.
      assert.ok(telemetryRows >= 1 && telemetryRows <= acknowledgedAtEnd, `telemetry rows ${telemetryRows} of ${acknowledgedAtEnd}`);
      assert.equal(verified.manifest.tables.devices?.rows, 3);
      assert.ok((verified.manifest.tables.audit_log?.rows ?? 0) > 0);
      assert.ok(!readFileSync(archive).includes(Buffer.from('BEGIN CERTIFICATE')), 'the archive is encrypted');
    });

    test('restores into a fresh data directory: same rows and digests, audit verifies, devices reconnect', async () => {
      const dataDir = join(scratch, 'restored');
      const databaseUrl = await freshDatabase();
      const result = await restoreBackup({
        archive,
        key: { kind: 'key-file', path: keyFile },
        deployment,
        dataDir,
        ...(databaseUrl ? { databaseUrl } : {}),
        masterKeyFile: join(t.config.dataDir, 'keys', 'master.key'),
      });
      const digests = databaseUrl ? await digestPostgres(databaseUrl) : digestSqlite(join(dataDir, 'bulwark.db'));
      assert.deepEqual(digests, result.digests);
      await runsRestored(dataDir, databaseUrl);
    });

    /** The restored node starts on `databaseUrl`, its audit chain verifies and an existing device publishes to it with its certificate. */
    const runsRestored = async (dataDir: string, databaseUrl: string | undefined) => {
      const config = loadConfig({
        dataDir,
        env: {},
        overrides: { http: { port: 0 }, mqtt: { port: 0 }, log: { level: 'silent' } } as never,
      });
      assert.equal(config.database.url, databaseUrl ?? 'sqlite');
      const platform = await openPlatform(config, { env: {} });
      const server = await startServer(platform, { port: 0, host: '127.0.0.1', logger: false });
      try {
        const audit = await platform.audit.verify();
        assert.ok(audit.ok, JSON.stringify(audit.problems));
        const device = devices[1]!;
        const client = await connectDevice(server.mqtt!.port, readFileSync(join(dataDir, 'pki', 'ca.pem'), 'utf8'), device, device.id);
        await client.publishAsync(`d/${device.id}/telemetry`, JSON.stringify({ values: { restored: 1 } }), { qos: 1 });
        client.end(true);
        assert.equal(await platform.telemetry.store.count(device.id), 1);
      } finally {
        await server.close();
        await platform.close();
      }
    };

    const postgres = ENGINES.find((e) => e.engine === 'postgres')!;
    if (engine.engine === 'sqlite') {
      test(
        'moves a SQLite backup into a fresh PostgreSQL database: every table read back and matched, the node runs on it',
        { skip: postgres.skip },
        async () => {
          const { name, url } = await createEmptyDatabase('bulwark_m');
          try {
            const dataDir = join(scratch, 'moved');
            const result = await restoreBackup({
              archive,
              key: { kind: 'key-file', path: keyFile },
              deployment,
              dataDir,
              databaseUrl: url,
              masterKeyFile: join(t.config.dataDir, 'keys', 'master.key'),
            });
            assert.equal(result.engine, 'postgres');
            assert.equal(result.copiedFrom, 'sqlite');
            assert.equal(existsSync(join(dataDir, 'bulwark.db')), false, 'no SQLite file in the moved data directory');
            // Every table the backup holds, with the manifest's row counts (the copy itself compared digests).
            // SQLite's telemetry log (rows not moved yet) goes into PostgreSQL's one telemetry table.
            const readings = (result.digests.telemetry?.rows ?? 0) + (result.digests.telemetry_log?.rows ?? 0);
            assert.ok(readings > 0);
            for (const [table, digest] of Object.entries(result.digests)) {
              if (table.startsWith('kysely_') || table === 'telemetry_log') continue;
              assert.equal(result.copied!.tables[table]?.rows, table === 'telemetry' ? readings : digest.rows, table);
            }
            assert.equal(result.copied!.tables.telemetry_log, undefined);
            const counted = await digestPostgres(url);
            assert.equal(counted.devices?.rows, 3);
            assert.equal(counted.telemetry?.rows, readings);
            await runsRestored(dataDir, url);
          } finally {
            await dropDatabase(name).catch(() => undefined);
          }
        },
      );
    }

    test('the drill restores into scratch space and compares with the manifest', async () => {
      const report = await restoreDrill(
        t.config,
        { archive, key: { kind: 'key-file', path: keyFile }, deployment, scratch },
        async (restored) => {
          const config = loadConfig({ dataDir: restored.dataDir, env: {}, overrides: { log: { level: 'silent' } } as never });
          const platform = await openPlatform(config, { env: {}, migrate: false });
          try {
            const audit = await platform.audit.verify();
            return { ok: audit.ok, entries: audit.entries, problems: audit.problems.length };
          } finally {
            await platform.close();
          }
        },
      );
      assert.equal(report.ok, true, JSON.stringify(report.mismatches));
      assert.ok(report.rows > 0 && report.audit.entries > 0);
    });

    test('refuses an altered, truncated, foreign or wrongly keyed archive before writing anything', async () => {
      const original = readFileSync(archive);
      const target = join(scratch, 'never');
      const key = { kind: 'key-file', path: keyFile } as const;
      const attempt = (file: string, extra: Record<string, unknown> = {}) =>
        restoreBackup({ archive: file, key, deployment, dataDir: target, ...extra });

      const flipped = Buffer.from(original);
      flipped[Math.floor(original.length / 2)]! ^= 0x01;
      writeFileSync(join(scratch, 'flipped.bwb'), flipped);
      await refusedWith(attempt(join(scratch, 'flipped.bwb')), 'backup.tampered');

      writeFileSync(join(scratch, 'truncated.bwb'), original.subarray(0, original.length - 70_000));
      await refusedWith(attempt(join(scratch, 'truncated.bwb')), 'backup.tampered');

      // The header is authenticated by every segment: claiming another deployment in it breaks them all.
      const headerEnd = original.indexOf(0x0a);
      const header = JSON.parse(original.subarray(0, headerEnd).toString()) as { deployment: string };
      const other = 'f'.repeat(64);
      const relabelled = Buffer.concat([Buffer.from(JSON.stringify({ ...header, deployment: other })), original.subarray(headerEnd)]);
      writeFileSync(join(scratch, 'relabelled.bwb'), relabelled);
      await refusedWith(
        restoreBackup({ archive: join(scratch, 'relabelled.bwb'), key, deployment: other, dataDir: target }),
        'backup.tampered',
      );

      await refusedWith(restoreBackup({ archive, key, deployment: other, dataDir: target }), 'backup.wrong_deployment');
      await refusedWith(restoreBackup({ archive, key, dataDir: target }), 'backup.wrong_deployment');

      const otherKey = join(scratch, 'other.key');
      createBackupKeyFile(otherKey);
      await refusedWith(
        restoreBackup({ archive, key: { kind: 'key-file', path: otherKey }, deployment, dataDir: target }),
        'backup.key_invalid',
      );

      assert.equal(existsSync(target), false, 'nothing was written');
      assert.deepEqual(
        (await import('node:fs')).readdirSync(scratch).filter((name) => name.startsWith('.bulwark-restore-')),
        [],
        'no staging left behind',
      );
    });

    test('scheduled backups keep the newest backup.keep archives and are audited', async () => {
      const directory = join(scratch, 'scheduled');
      (await import('node:fs')).mkdirSync(directory);
      writeFileSync(join(directory, 'not-ours.bwb'), 'kept');
      const config = { ...t.config, backup: { intervalHours: 1, directory, keep: 2 } };
      let hour = 0;
      const schedule = new BackupSchedule(
        { config, box: t.platform.box, token: null },
        { kind: 'key-file', path: keyFile },
        t.platform.audit,
        () => new Date(Date.UTC(2026, 11, 5, ++hour)),
      );
      const deleted: string[] = [];
      for (let i = 0; i < 3; i++) deleted.push(...(await schedule.run()).deleted);
      const { readdirSync } = await import('node:fs');
      assert.deepEqual(readdirSync(directory).sort(), [
        'bulwark-backup-20261205T020000Z.bwb',
        'bulwark-backup-20261205T030000Z.bwb',
        'not-ours.bwb',
      ]);
      assert.deepEqual(deleted, ['bulwark-backup-20261205T010000Z.bwb']);
      const entries = [];
      for await (const line of t.platform.audit.export()) if (line.includes('"backup.created"')) entries.push(line);
      assert.equal(entries.length, 3);
      assert.throws(
        () =>
          new BackupSchedule(
            {
              config: { ...config, backup: { ...config.backup, directory: join(t.config.dataDir, 'b') } },
              box: t.platform.box,
              token: null,
            },
            { kind: 'key-file', path: keyFile },
            t.platform.audit,
          ),
        /outside the data directory/,
      );
    });

    test('refuses to restore over data', async () => {
      const occupied = join(scratch, 'occupied');
      (await import('node:fs')).mkdirSync(occupied);
      writeFileSync(join(occupied, 'keep.txt'), 'mine');
      await refusedWith(
        restoreBackup({ archive, key: { kind: 'key-file', path: keyFile }, deployment, dataDir: occupied }),
        'backup.target_not_empty',
      );
      assert.equal(readFileSync(join(occupied, 'keep.txt'), 'utf8'), 'mine');
      if (engine.engine === 'postgres') {
        // The source database holds tables: restoring into it is refused, and it keeps them.
        await refusedWith(
          restoreBackup({
            archive,
            key: { kind: 'key-file', path: keyFile },
            deployment,
            dataDir: join(scratch, 'pg-target'),
            databaseUrl: t.database.url,
          }),
          'backup.target_not_empty',
        );
        assert.equal(existsSync(join(scratch, 'pg-target')), false);
      }
    });
  });
}
