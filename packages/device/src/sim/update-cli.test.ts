import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { firstOwner, stepUp, ownerSession, hardwareProduct } from '@bulwark/server/testing';
import { setUpFleetRepository, type FleetRepository } from '../testing/fleet-update.js';
import { eventually, startDevicePlatform, tempDir, type DevicePlatform } from '../testing/platform.js';
import { main } from './cli.js';

/** Runs `bulwark-sim` in this process; returns its exit code and everything it printed. */
async function sim(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: '', err: '' };
  out.on('data', (c: Buffer) => (chunks.out += c.toString()));
  err.on('data', (c: Buffer) => (chunks.err += c.toString()));
  const code = await main(args, out as unknown as NodeJS.WriteStream, err as unknown as NodeJS.WriteStream);
  return { code, ...chunks };
}

describe('bulwark-sim --updates against a real platform', () => {
  let p: DevicePlatform;
  let apiKey: string;
  let product: string;
  let repo: FleetRepository;
  const files = { ca: '', root: '', directorRoot: '' };
  const temp = tempDir('sim-updates');

  before(async () => {
    p = await startDevicePlatform();
    product = await hardwareProduct(p.t.platform, p.org, 'Sim updates', 'hw-sim');
    const client = p.t.client();
    const session = await ownerSession(p.t, client);
    await stepUp(p.t, await firstOwner(p.t, session), session.token, client);
    const created = await client.post(
      '/api/v1/me/api-keys',
      { name: 'simulator', scopes: ['devices:read', 'devices:write'], expiresInDays: 1 },
      { token: session.token },
    );
    assert.equal(created.status, 201, created.text);
    apiKey = created.body.secret;
    // Signing in moved the platform's clock past the TOTP steps; certificates issued now must be valid for TLS's real clock.
    p.t.clock.set(Date.now());
    repo = await setUpFleetRepository(p.t.platform, p.org, product, 'hw-sim');
    files.ca = join(temp.dir, 'ca.pem');
    files.root = join(temp.dir, 'root.json');
    files.directorRoot = join(temp.dir, 'director-root.json');
    writeFileSync(files.ca, p.t.ca);
    writeFileSync(files.root, repo.factory.repositoryRoot);
    writeFileSync(files.directorRoot, repo.factory.directorRoot);
  });
  after(async () => {
    await p?.close();
    temp.remove();
  });

  const args = (devices: number, extra: string[]) => [
    '--updates',
    ...[
      '--api',
      p.apiUrl,
      '--ca',
      files.ca,
      '--mqtt',
      p.brokerUrl,
      '--api-key',
      apiKey,
      '--devices',
      String(devices),
      '--product',
      product,
    ],
    ...['--org', p.org, '--hardware-id', 'hw-sim', '--root', files.root, '--director-root', files.directorRoot],
    ...extra,
  ];

  it('takes its devices through a rollout: the one made to fail its health check rolls back by itself, the rest commit, and the summary matches the platform', async () => {
    const release = await repo.publish('2.0.0', 1);
    const running = sim(args(5, ['--duration', '90', '--fail-health', '0.2', '--json']));
    // The devices are online once each sent the version report of its first boot.
    let ids: string[] = [];
    await eventually(
      async () => {
        ids = (await p.t.platform.db.selectFrom('devices').select('id').where('product_id', '=', product).execute()).map((d) => d.id);
        const reports = ids.length
          ? await p.t.platform.db.selectFrom('device_version_reports').select('device_id').where('device_id', 'in', ids).execute()
          : [];
        return ids.length === 5 && reports.length === 5;
      },
      60_000,
      'five simulated devices online',
    );
    const rolloutId = await repo.rollout({
      releaseId: release.id,
      selector: { deviceIds: ids },
      phases: [{ percent: 100, soakSeconds: 0 }],
      successThreshold: 0.8,
      failureThreshold: 0.5,
    });
    let finished = false;
    void running.finally(() => (finished = true));
    while (!finished) {
      await p.t.platform.updates.rollouts.tick();
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const run = await running;
    assert.equal(run.code, 0, run.out + run.err);
    const summary = JSON.parse(run.out.trim().split('\n').at(-1)!) as {
      ok: boolean;
      connected: number;
      states: Record<string, number>;
      errors: number;
    };
    assert.equal(summary.connected, 5);
    assert.equal(summary.states.succeeded, 4);
    assert.equal(summary.states.rolled_back, 1);
    await eventually(
      async () => {
        const counts = (await p.t.platform.updates.rollouts.get(repo.actor, rolloutId)).counts;
        return counts.succeeded === 4 && counts.rolled_back === 1;
      },
      10_000,
      'the platform counts 4 succeeded and 1 rolled back',
    );
  });

  it('exits 2 with the usage when update mode lacks the roots or gets a bad fraction', async () => {
    const missing = await sim(args(1, ['--duration', '1']).filter((a, i, all) => a !== '--root' && all[i - 1] !== '--root'));
    assert.equal(missing.code, 2);
    assert.match(missing.err, /--root is required with --updates/);
    const bad = await sim(args(1, ['--duration', '1', '--fail-health', '1.5']));
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--fail-health must be a fraction from 0 to 1/);
  });
});
