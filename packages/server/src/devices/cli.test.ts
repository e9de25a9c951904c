/**
 * `bulwark devices …` as a platform admin runs it: real child processes on a temporary SQLite
 * data directory (initialized in-process), checked by exit code and output. Each spawn costs about
 * two seconds of start-up, so independent commands run side by side.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliActor } from '../accounts/roles.js';
import { loadConfig } from '../ops/config.js';
import { DEFAULT_INIT, initialize } from '../ops/init.js';
import { openPlatform } from '../platform.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

function bulwark(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('BULWARK_') && !key.startsWith('NODE_TEST')) env[key] = value;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'packages/server/src/cli/main.ts', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('bulwark devices (CLI, SQLite)', () => {
  let dir: string;
  let d: string[];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bulwark-devices-cli-'));
    d = ['--data-dir', join(dir, 'data'), '--org', 'default'];
    // Set up in-process (as `bulwark init` and `devices add-product` would): two spawns fewer.
    const config = loadConfig({ dataDir: join(dir, 'data'), env: {} });
    const init = await initialize(config, DEFAULT_INIT, { env: {} });
    const platform = await openPlatform(config, { env: {} });
    try {
      const org = await platform.accounts.store.organizationBySlug(init.organization.slug);
      await platform.devices.service.createProduct(cliActor(org!.id, 'test'), { name: 'Sensor' });
    } finally {
      await platform.close();
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('imports nothing from a file with a bad line (exit 2, the line named), then all of a good CSV; retires by serial and refuses to bring it back (exit 5)', async () => {
    const bad = join(dir, 'bad.ndjson');
    writeFileSync(bad, ['S-1', 'S-2', 'S 3', 'S-4', 'S-5'].map((serial) => JSON.stringify({ serial, product: 'Sensor' })).join('\n'));
    const good = join(dir, 'good.csv');
    writeFileSync(good, ['serial,product,tags', ...['S-1', 'S-2', 'S-3', 'S-4', 'S-5'].map((s) => `${s},Sensor,cli`)].join('\n'));
    const [rejected, imported] = await Promise.all([bulwark(['devices', 'import', bad, ...d]), bulwark(['devices', 'import', good, ...d, '--json'])]);
    assert.equal(rejected.code, 2, rejected.stderr);
    assert.match(rejected.stderr, /line 3 \(S 3\): serial must be/);
    assert.match(rejected.stderr, /\[device\.import_rejected\]/);
    assert.equal(imported.code, 0, imported.stderr);
    assert.deepEqual(JSON.parse(imported.stdout), { imported: 5 });

    const [retired, unknown] = await Promise.all([bulwark(['devices', 'retire', 'S-2', ...d, '--reason', 'end of life']), bulwark(['devices', 'disable', 'NOPE', ...d])]);
    assert.equal(retired.code, 0, retired.stderr);
    assert.match(retired.stdout, /S-2 is now retired/);
    const [revived, listed] = await Promise.all([bulwark(['devices', 'activate', 'S-2', ...d]), bulwark(['devices', 'list', ...d, '--tag', 'cli', '--json'])]);
    assert.equal(revived.code, 5, revived.stderr);
    assert.match(revived.stderr, /device\.invalid_transition/);
    assert.equal(listed.code, 0, listed.stderr);
    const page = JSON.parse(listed.stdout) as { devices: { serial: string; status: string }[] };
    assert.deepEqual(page.devices.map((x) => `${x.serial}:${x.status}`), ['S-1:pending', 'S-2:retired', 'S-3:pending', 'S-4:pending', 'S-5:pending']);
    assert.equal(unknown.code, 4, unknown.stderr);
  });
});
