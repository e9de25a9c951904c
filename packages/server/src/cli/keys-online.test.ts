/**
 * `bulwark keys rotate-online` as an operator runs it on the server's data directory (one directory
 * for the whole file): it stages keys and writes unsigned next roots, refuses a second rotation and
 * an unknown role, cancels, and the roots it writes, signed offline by the root keys and uploaded,
 * switch the repository to the staged keys.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliActor } from '../accounts/roles.js';
import { loadConfig, type Config } from '../ops/config.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { openPlatform } from '../platform.js';
import { bulwark } from '../testing/cli.js';
import { signedBy, TestCeremony } from '../testing/tuf-ceremony.js';
import { readRoot } from '../updates/tuf/offline.js';

describe('bulwark keys rotate-online', () => {
  let dir: string;
  let config: Config;
  let slug: string;
  let orgId: string;
  let ceremony: TestCeremony;
  const at = (name: string) => join(dir, name);
  const rotate = (...args: string[]) => bulwark(['keys', 'rotate-online', '--data-dir', at('data'), '--org', slug, ...args]);
  const withPlatform = async <T>(fn: (platform: Awaited<ReturnType<typeof openPlatform>>) => Promise<T>): Promise<T> => {
    const platform = await openPlatform(config, { env: {} });
    try {
      return await fn(platform);
    } finally {
      await platform.close();
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bulwark-keys-online-'));
    config = loadConfig({ dataDir: at('data'), env: {} });
    slug = (await initialize(config, DEFAULT_INIT, { env: {} })).organization.slug;
    await withPlatform(async (platform) => {
      orgId = (await platform.accounts.store.organizationBySlug(slug))!.id;
      ceremony = new TestCeremony(await platform.updates.repository.onlineKeys(orgId), Date.now());
      await platform.updates.repository.acceptRoot(cliActor(orgId, 'test'), {
        root: signedBy(ceremony.root(), ...ceremony.rootKeys).toJSON(),
        directorRoot: ceremony.directorRoot().toJSON(),
      });
    });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses an unknown role, writing nothing', async () => {
    const unknown = await rotate('--out', at('bad'), '--roles', 'root');
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /roles must be one or more of snapshot, timestamp, director, not root/);
    assert.equal(existsSync(at('bad')), false);
  });

  it('stages keys and writes the unsigned roots; refuses a second rotation; cancels', async () => {
    const started = await rotate('--out', at('first'), '--json');
    assert.equal(started.code, 0, started.stderr);
    const plan = JSON.parse(started.stdout);
    assert.deepEqual(plan.roles, ['snapshot', 'timestamp', 'director']);
    const root = readRoot(at('first/root.json'));
    assert.equal(root.signed.version, 2);
    assert.deepEqual(root.signed.roles.snapshot!.keyIDs, [plan.pending.snapshot.keyid]);
    assert.deepEqual(readRoot(at('first/director-root.json')).signed.roles.targets!.keyIDs, [plan.pending.director.keyid]);

    const again = await rotate('--out', at('second'));
    assert.equal(again.code, 1);
    assert.match(again.stderr, /\[update\.online_rotation_pending\]/);

    const cancelled = await rotate('--cancel');
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.match(cancelled.stdout, /Cancelled the pending rotation of snapshot, timestamp, director/);
  });

  it('the roots it writes, signed offline and uploaded, switch the repository to the staged keys', async () => {
    const started = await rotate('--out', at('timestamp'), '--roles', 'timestamp', '--json');
    assert.equal(started.code, 0, started.stderr);
    const plan = JSON.parse(started.stdout);
    assert.equal(existsSync(at('timestamp/director-root.json')), false, 'the director key is not rotated');
    await withPlatform(async (platform) => {
      const before = await platform.updates.repository.onlineKeys(orgId);
      await platform.updates.repository.acceptRoot(cliActor(orgId, 'test'), {
        root: signedBy(readRoot(at('timestamp/root.json')), ...ceremony.rootKeys).toJSON(),
      });
      const after = await platform.updates.repository.onlineKeys(orgId);
      assert.equal(after.timestamp.keyID, plan.pending.timestamp.keyid);
      assert.equal(after.snapshot.keyID, before.snapshot.keyID);
      const audited = await platform.db.selectFrom('audit_log').select('action').where('action', 'like', 'update.online%').execute();
      assert.deepEqual(audited.map((a) => a.action).sort(), [
        'update.online_key_activated',
        'update.online_rotation_cancelled',
        'update.online_rotation_started',
        'update.online_rotation_started',
      ]);
    });
  });
});
