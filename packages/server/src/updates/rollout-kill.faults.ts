/**
 * A node SIGKILLed during a rollout phase change (issue 17, failure scenarios). Two `bulwark serve`
 * processes share one PostgreSQL database; the one holding the `rollouts` job lease is caught in
 * the middle of the transaction that advances a phase (the test holds the audit chain's lock, so
 * the node's transaction stops after it moved the phase and before its audit record) and is
 * killed there. The phase change must vanish with it (no phase moved, no device of the next phase
 * offered), the surviving node must take the job once the lease lapses and carry the rollout to
 * its end, and in the end every device was offered exactly once and succeeded, each phase was
 * advanced once, and the audit chain verifies.
 *
 * Multi-node deployments run on PostgreSQL only; skipped with PostgreSQL unreachable (outside CI).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { cliActor } from '../accounts/roles.js';
import { ENGINES } from '../testing/engines.js';
import { eventually } from '../testing/index.js';
import {
  hardwareProduct,
  identityOf,
  insertRelease,
  registerDevices,
  ROLLOUTS_TICKED_BY_TEST,
  statusPayload,
} from '../testing/rollout-fixtures.js';
import { startServerProcess, type ServerProcess } from '../testing/server-process.js';
import { organizationIdOf } from '../testing/devices.js';
import { startTestPlatform, type TestPlatform } from '../testing/server.js';

const postgres = ENGINES.find((e) => e.engine === 'postgres')!;
/** The advisory lock every audit record takes on PostgreSQL (audit/service.ts). */
const AUDIT_LOCK = 7_462_001;
const DEVICES = 12;

describe('a node SIGKILLed while it advances a rollout phase', { skip: postgres.skip }, () => {
  let t: TestPlatform;
  let nodes: ServerProcess[] = [];
  let probe: pg.Client;

  before(async () => {
    // The harness's node (no broker) provisions and reads; its rollout ticker never fires in the test.
    t = await startTestPlatform(postgres, { ...ROLLOUTS_TICKED_BY_TEST, mqtt: { enabled: false } });
    probe = new pg.Client({ connectionString: t.database.url });
    await probe.connect();
    const env = {
      BULWARK_DATABASE_URL: t.database.url,
      BULWARK_DATABASE_POOL_SIZE: '4',
      BULWARK_UPDATES_ROLLOUT_TICK_SECONDS: '1',
      BULWARK_LOG_LEVEL: 'warn',
    };
    nodes = await Promise.all([
      startServerProcess(t.database.dataDir, t.ca, env, 180_000),
      startServerProcess(t.database.dataDir, t.ca, env, 180_000),
    ]);
  });

  after(async () => {
    await probe?.end().catch(() => undefined);
    await Promise.all(nodes.map((n) => n.stop()));
    await t?.close();
  });

  it('the phase change dies with the node, the survivor finishes the rollout, and no device is offered twice or lost', async () => {
    const org = await organizationIdOf(t.platform, t.org);
    const actor = cliActor(org, 'test');
    const product = await hardwareProduct(t.platform, org, 'Kill sensor');
    const release = await insertRelease(t.platform, org, product, '3.0.0');
    const deviceIds = await registerDevices(t.platform, org, product, 'KILL', DEVICES);
    const rollouts = t.platform.updates.rollouts;
    const rollout = await rollouts.create(actor, {
      releaseId: release.id,
      selector: { deviceIds },
      phases: [
        { percent: 25, soakSeconds: 0 },
        { percent: 50, soakSeconds: 0 },
        { percent: 100, soakSeconds: 0 },
      ],
      successThreshold: 1,
      maxConcurrentDownloads: DEVICES,
    });
    const devices = async () => (await rollouts.devicesOf(actor, rollout.id, { limit: 500 })).devices;
    const phaseOf = async () => (await rollouts.get(actor, rollout.id)).currentPhase;
    /** Every offered device reports success, as its agent would after installing. */
    const succeedOffered = async () => {
      for (const d of await devices())
        if (d.offeredAt !== null && d.state !== 'succeeded')
          await rollouts.deviceMessage(
            identityOf(org, d.deviceId, product),
            'status',
            statusPayload(rollout.id, 'succeeded', release.targetName),
          );
    };

    // A node takes the job and offers phase 0 (a quarter of the devices).
    await eventually(async () => (await devices()).filter((d) => d.offeredAt !== null).length === 3, 30_000, 'phase 0 offered');
    const lease = await probe.query<{ holder: string }>(`select holder from job_leases where job = 'rollouts'`);
    const holderPid = Number(lease.rows[0]!.holder.split('/')[1]);
    const victim = nodes.find((n) => n.child.pid === holderPid)!;
    const survivor = nodes.find((n) => n !== victim)!;
    assert.ok(victim, `the lease holder ${lease.rows[0]!.holder} is one of the two nodes`);

    // The audit chain's lock held: the node's next phase change stops inside its transaction.
    await probe.query('select pg_advisory_lock($1)', [AUDIT_LOCK]);
    await succeedOffered();
    const stuck = async () =>
      (
        await probe.query(
          `select a.pid from pg_stat_activity a
            where a.wait_event_type = 'Lock' and a.wait_event = 'advisory'
              and exists (select 1 from pg_locks l where l.pid = a.pid and l.relation = 'rollouts'::regclass and l.mode = 'RowExclusiveLock')`,
        )
      ).rows.length === 1;
    await eventually(stuck, 15_000, 'the lease holder blocked mid phase change, its rollout row updated');
    victim.child.kill('SIGKILL');
    await new Promise((resolve) => victim.child.once('exit', resolve));
    await probe.query('select pg_advisory_unlock($1)', [AUDIT_LOCK]);

    // Its transaction never commits: the database rolls it back once the connection is found gone.
    const open = async () =>
      (await probe.query(`select 1 from pg_locks where relation = 'rollouts'::regclass and mode = 'RowExclusiveLock'`)).rows.length === 0;
    await eventually(open, 15_000, 'the killed node’s transaction rolled back');
    assert.equal(await phaseOf(), 0, 'the phase change died with the node');
    assert.equal((await devices()).filter((d) => d.offeredAt !== null).length, 3, 'no device of the next phase offered');

    // Its lease would lapse after a minute; the test lets it lapse now. The survivor takes the job.
    await probe.query(`update job_leases set expires_at = 0 where job = 'rollouts'`);
    await eventually(
      async () => {
        await succeedOffered();
        return (await rollouts.get(actor, rollout.id)).status === 'completed';
      },
      30_000,
      'the survivor carries the rollout to its end',
    );
    const holder = (await probe.query<{ holder: string }>(`select holder from job_leases where job = 'rollouts'`)).rows[0]?.holder ?? '';
    assert.equal(Number(holder.split('/')[1]), survivor.child.pid, 'the surviving node runs the job');

    const final = await devices();
    assert.equal(final.length, DEVICES, 'no device lost from the rollout');
    assert.deepEqual(
      final.filter((d) => d.state !== 'succeeded' || d.attempts !== 1).map((d) => [d.deviceId, d.state, d.attempts]),
      [],
      'every device offered exactly once and succeeded',
    );
    assert.deepEqual(
      [0, 1, 2].map((phase) => final.filter((d) => d.phase === phase).length),
      [3, 3, 6],
      'the phases hold the devices they were planned with',
    );
    const audited = await t.platform.db
      .selectFrom('audit_log')
      .select(['action', 'details'])
      .where('target_id', '=', rollout.id)
      .where('action', 'in', ['update.rollout_phase_advanced', 'update.rollout_completed'])
      .orderBy('seq')
      .execute();
    assert.deepEqual(
      audited.map((a) => [a.action, (JSON.parse(a.details) as { phase: number }).phase]),
      [
        ['update.rollout_phase_advanced', 0],
        ['update.rollout_phase_advanced', 1],
        ['update.rollout_completed', 2],
      ],
      'each phase advanced once',
    );
    const verified = await t.platform.audit.verify();
    assert.equal(verified.ok, true, JSON.stringify(verified.problems));
  });
});
