/**
 * `bulwark assessment run` and `bulwark assessment findings` as child processes on a temporary
 * SQLite data directory: a fresh install has an owner without MFA and no backup, so the run
 * exits 3 and lists them; the run is recorded and audited as the CLI's.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../ops/config.js';
import { DEFAULT_INIT, initialize } from '../runner/init.js';
import { bulwark } from '../testing/cli.js';

describe('bulwark assessment (CLI, SQLite)', () => {
  let dir: string;
  let d: string[];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bulwark-assessment-cli-'));
    const dataDir = join(dir, 'data');
    d = ['--data-dir', dataDir, '--org', 'default'];
    await initialize(loadConfig({ dataDir, env: {} }), DEFAULT_INIT, { env: {} });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every check, exits 3 on high findings, and lists them', async () => {
    const ran = await bulwark(['assessment', 'run', ...d, '--json']);
    assert.equal(ran.code, 3, ran.stderr);
    const { run, open } = JSON.parse(ran.stdout) as {
      run: { opened: number; checks: string[] };
      open: { check: string; severity: string }[];
    };
    assert.ok(run.checks.length >= 10);
    assert.ok(open.some((f) => f.check === 'operator-without-mfa' && f.severity === 'high'));
    assert.ok(open.some((f) => f.check === 'backup-stale'));

    const listed = await bulwark(['assessment', 'findings', ...d, '--severity', 'high']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /\[high\] open operator-without-mfa/);
    const bad = await bulwark(['assessment', 'findings', ...d, '--state', 'closed']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--state must be one of open, resolved, suppressed/);
  });
});
