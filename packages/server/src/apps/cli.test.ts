/**
 * `bulwark apps keys list|rotate|retire` as an operator runs it on a data directory made by
 * `bulwark init` (initializedDataDir), and master-key rotation re-wrapping the sealed app signing keys.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { bulwark, initializedDataDir } from '../testing/cli.js';

describe('bulwark apps keys', () => {
  it('rotates with overlap, retires on demand, refuses an unknown key, and master-key rotation re-wraps the keys', async () => {
    const { dir, dataDir } = await initializedDataDir('cli-apps', async () => undefined);
    const run = async (args: string[]) => {
      const result = await bulwark([...args, '--data-dir', dataDir, '--json']);
      return { ...result, json: result.code === 0 ? JSON.parse(result.stdout) : null };
    };
    try {
      const first = await run(['apps', 'keys', 'rotate', '--org', 'default']);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.json.status, 'active');
      const second = await run(['apps', 'keys', 'rotate', '--org', 'default']);
      assert.equal(second.code, 0, second.stderr);
      let listed = await run(['apps', 'keys', 'list', '--org', 'default']);
      assert.deepEqual(
        listed.json.keys.map((k: { kid: string; status: string }) => [k.kid, k.status]),
        [
          [second.json.kid, 'active'],
          [first.json.kid, 'verifying'],
        ],
      );

      const retired = await run(['apps', 'keys', 'retire', first.json.kid, '--org', 'default']);
      assert.equal(retired.code, 0, retired.stderr);
      assert.equal(retired.json.status, 'retired');
      const again = await run(['apps', 'keys', 'retire', first.json.kid, '--org', 'default']);
      assert.equal(again.code, 5, 'a retired key cannot be retired twice (conflict)');
      const unknown = await run(['apps', 'keys', 'retire', 'no-such-kid', '--org', 'default']);
      assert.equal(unknown.code, 4, unknown.stderr);
      assert.match(unknown.stderr, /resource\.not_found/);
      const otherOrg = await run(['apps', 'keys', 'list', '--org', 'nobody']);
      assert.equal(otherOrg.code, 4);

      const rotatedMaster = await run(['keys', 'rotate-master']);
      assert.equal(rotatedMaster.code, 0, rotatedMaster.stderr);
      assert.equal(rotatedMaster.json.rewrapped['app_signing_keys.private_key'], 2);
      listed = await run(['apps', 'keys', 'list', '--org', 'default']);
      assert.equal(listed.json.keys.length, 2);
      // The active key still opens under the new master key: rotating makes a new one beside it.
      assert.equal((await run(['apps', 'keys', 'retire', second.json.kid, '--org', 'default'])).code, 0);
      listed = await run(['apps', 'keys', 'list', '--org', 'default']);
      assert.deepEqual(listed.json.keys.map((k: { status: string }) => k.status).sort(), ['active', 'retired', 'retired']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
