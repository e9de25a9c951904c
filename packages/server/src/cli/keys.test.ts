/**
 * `bulwark keys rotate-master` as an operator runs it: on a data directory made by `bulwark init`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMasterKey, masterKeyPath, previousMasterKeyPath } from '../keys/master-key.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

function bulwark(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('BULWARK_') && !key.startsWith('NODE_TEST')) env[key] = value;
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'packages/server/src/cli/main.ts', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('bulwark keys rotate-master', () => {
  it('replaces the master key, re-wraps the sealed keys under DIR/pki, and leaves no previous key behind', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'bulwark-cli-keys-')), 'data');
    try {
      const init = await bulwark(['init', '--data-dir', dataDir]);
      assert.equal(init.code, 0, init.stderr);
      const before = loadMasterKey(dataDir, {}).keyId;
      const rotated = await bulwark(['keys', 'rotate-master', '--data-dir', dataDir, '--json']);
      assert.equal(rotated.code, 0, rotated.stderr);
      const report = JSON.parse(rotated.stdout);
      assert.equal(report.previousKeyId, before);
      assert.equal(loadMasterKey(dataDir, {}).keyId, report.keyId);
      assert.notEqual(report.keyId, before);
      assert.equal(report.rewrapped['pki/server.key.sealed'], 1);
      assert.equal(statSync(masterKeyPath(dataDir)).mode & 0o777, 0o600);
      assert.equal(existsSync(previousMasterKeyPath(dataDir)), false);
      assert.match(readFileSync(join(dataDir, 'pki', 'ca.key.sealed'), 'utf8'), new RegExp(`^v2\\.${report.keyId}\\.`));
    } finally {
      rmSync(join(dataDir, '..'), { recursive: true, force: true });
    }
  });
});
