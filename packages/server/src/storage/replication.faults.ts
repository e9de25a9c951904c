/**
 * PostgreSQL replication, failover and point-in-time recovery (issue 17), with servers of the
 * test's own on this machine (docs/operations.md, "PostgreSQL replication and failover" and
 * "Point-in-time recovery" give the same commands):
 *
 * - a primary (WAL archived) and a streaming replica made by `pg_basebackup -R`, synchronous
 *   (`synchronous_standby_names`), on other ports and data directories;
 * - point-in-time recovery: a base backup plus the WAL archive brought back to a named restore
 *   point, before a mistake: what came before it is there, the mistake is not, and the platform
 *   runs on the recovered server;
 * - failover: the platform writes devices to the primary, the primary crashes (`pg_ctl stop -m
 *   immediate`, SIGQUIT) mid-stream, the replica is promoted (`pg_ctl promote`), and the platform, restarted
 *   against it, finds every write it was acknowledged and takes new ones.
 *
 * Skipped only when the PostgreSQL server binaries are not installed (/usr/lib/postgresql/<v>/bin).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliActor } from '../accounts/roles.js';
import { loadConfig } from '../ops/config.js';
import { openPlatform, type Platform } from '../platform.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { freePort, initServer, PgServer, pgTool, postgresOwnedDir, postgresServerSkip } from '../testing/pg-cluster.js';
import { hardwareProduct } from '../testing/rollout-fixtures.js';

const skip = postgresServerSkip();
const REPLICA_NAME = 'replica1';

describe('PostgreSQL streaming replication, failover and point-in-time recovery', { skip, concurrency: 1 }, () => {
  let root: string;
  let archive: string;
  let primary: PgServer;
  let replica: PgServer;
  let recovered: PgServer | undefined;
  let dataDir: string;
  const servers: PgServer[] = [];

  /** The platform (one node, in this process) on `server`'s database `bulwark`. */
  async function platformOn(server: PgServer): Promise<Platform> {
    const config = loadConfig({
      dataDir,
      env: {},
      overrides: { database: { url: server.url('bulwark'), poolSize: 4 }, log: { level: 'silent' } } as never,
    });
    return openPlatform(config, { env: {} });
  }

  /** The organization `bulwark init` made (the only one). */
  async function theOrganization(platform: Platform): Promise<string> {
    return (await platform.db.selectFrom('organizations').select('id').executeTakeFirstOrThrow()).id;
  }

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'bulwark-replication-'));
    postgresOwnedDir(root);
    archive = postgresOwnedDir(join(root, 'archive'));
    dataDir = join(root, 'bulwark');
    primary = initServer(join(root, 'primary'), await freePort(), {
      wal_level: 'replica',
      max_wal_senders: 4,
      archive_mode: 'on',
      archive_command: `test ! -f ${archive}/%f && cp %p ${archive}/%f`,
    });
    servers.push(primary);
    primary.start();
    primary.sql('create database bulwark');

    const replicaPort = await freePort();
    replica = new PgServer(join(root, 'replica'), replicaPort);
    // -R writes standby.signal and primary_conninfo; the replica names itself for synchronous_standby_names.
    pgTool('pg_basebackup', ['-d', primary.url(), '-D', replica.dir, '-R', '-X', 'stream', '-c', 'fast']);
    replica.configure({
      port: replicaPort,
      unix_socket_directories: replica.dir,
      cluster_name: REPLICA_NAME,
      // Once promoted it has no standby of its own: waiting for one would stop every commit.
      synchronous_standby_names: '',
    });
    servers.push(replica);
    replica.start();
    // A commit is acknowledged once the replica has its WAL on disk: a promoted replica loses nothing acknowledged.
    // (Set once the replica runs: before, every commit would wait for it.)
    primary.sql(`alter system set synchronous_standby_names = '${REPLICA_NAME}'`);
    primary.sql('select pg_reload_conf()');
    const deadline = Date.now() + 30_000;
    while (primary.sql(`select sync_state from pg_stat_replication where application_name = '${REPLICA_NAME}'`) !== 'sync') {
      assert.ok(Date.now() < deadline, 'the replica never streamed synchronously');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const config = loadConfig({
      dataDir,
      env: {},
      overrides: { database: { url: primary.url('bulwark'), poolSize: 4 }, log: { level: 'silent' } } as never,
    });
    await initialize(config, DEFAULT_INIT, { env: {} });
  });

  after(() => {
    for (const server of [...servers, ...(recovered ? [recovered] : [])]) {
      try {
        server.stop('immediate');
      } catch {
        // already stopped
      }
    }
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('recovers to a named restore point from a base backup and the WAL archive: the writes before it are there, the mistake after it is not', async () => {
    const base = join(root, 'base');
    pgTool('pg_basebackup', ['-d', primary.url(), '-D', base, '-X', 'none', '-c', 'fast']);

    const platform = await platformOn(primary);
    let kept: string[];
    let product: string;
    let segment: string;
    try {
      const org = await theOrganization(platform);
      const actor = cliActor(org, 'test');
      product = await hardwareProduct(platform, org, 'PITR sensor');
      kept = [];
      for (let i = 0; i < 5; i++)
        kept.push((await platform.devices.service.register(actor, { serial: `PITR-${i}`, productId: product })).id);
      segment = primary.sql(`select pg_walfile_name(pg_create_restore_point('before-mistake'))`);
      // The mistake: an operator deletes every device of the product.
      await platform.db.deleteFrom('devices').where('product_id', '=', product).execute();
    } finally {
      await platform.close();
    }
    // The segment holding the restore point goes to the archive (the archiver sends segments in order).
    primary.sql('select pg_switch_wal()');
    const deadline = Date.now() + 30_000;
    while (!existsSync(join(archive, segment))) {
      assert.ok(Date.now() < deadline, `WAL segment ${segment} never reached the archive`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    recovered = new PgServer(base, await freePort());
    recovered.configure({
      port: recovered.port,
      unix_socket_directories: base,
      restore_command: `cp ${archive}/%f %p`,
      recovery_target_name: 'before-mistake',
      recovery_target_action: 'promote',
      archive_mode: 'off',
      synchronous_standby_names: '',
    });
    writeFileSync(join(base, 'recovery.signal'), '');
    recovered.start();
    const promoted = Date.now() + 60_000;
    while (recovered.sql('select pg_is_in_recovery()') !== 'f') {
      assert.ok(Date.now() < promoted, 'the recovered server never left recovery');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const back = await platformOn(recovered);
    try {
      const devices = await back.db.selectFrom('devices').select('id').where('product_id', '=', product).orderBy('id').execute();
      assert.deepEqual(
        devices.map((d) => d.id),
        [...kept].sort(),
        'the devices made before the restore point are back',
      );
      const verified = await back.audit.verify();
      assert.equal(verified.ok, true, JSON.stringify(verified.problems));
    } finally {
      await back.close();
    }
  });

  it('a promoted streaming replica holds every write the platform was acknowledged before the primary crashed, and takes new ones', async () => {
    const platform = await platformOn(primary);
    const acknowledged: string[] = [];
    const org = await theOrganization(platform);
    let product = '';
    try {
      const actor = cliActor(org, 'test');
      product = await hardwareProduct(platform, org, 'Failover sensor');
      // Devices are registered one after another; the primary crashes under the stream.
      const writing = (async () => {
        for (let i = 0; ; i++) {
          try {
            acknowledged.push((await platform.devices.service.register(actor, { serial: `FAILOVER-${i}`, productId: product })).id);
          } catch {
            return i;
          }
        }
      })();
      while (acknowledged.length < 40) await new Promise((resolve) => setTimeout(resolve, 5));
      await primary.crash();
      const attempted = await writing;
      console.log(`primary crashed after ${acknowledged.length} acknowledged registrations (${attempted + 1} attempted)`);
    } finally {
      await platform.close().catch(() => undefined);
    }

    replica.promote();
    assert.equal(replica.sql('select pg_is_in_recovery()'), 'f', 'the replica is a primary now');

    // The node restarted with its database URL pointing at the promoted replica.
    const failedOver = await platformOn(replica);
    try {
      const stored = new Set(
        (await failedOver.db.selectFrom('devices').select('id').where('product_id', '=', product).execute()).map((d) => d.id),
      );
      assert.deepEqual(
        acknowledged.filter((id) => !stored.has(id)),
        [],
        'every acknowledged registration is on the promoted replica',
      );
      const actor = cliActor(org, 'test');
      const after = await failedOver.devices.service.register(actor, { serial: 'AFTER-FAILOVER', productId: product });
      assert.ok(await failedOver.db.selectFrom('devices').select('id').where('id', '=', after.id).executeTakeFirst());
      const verified = await failedOver.audit.verify();
      assert.equal(verified.ok, true, JSON.stringify(verified.problems));
    } finally {
      await failedOver.close();
    }
  });
});
