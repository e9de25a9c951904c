/**
 * `bulwark assessment run` and `bulwark assessment findings` as child processes on a temporary
 * SQLite data directory: a fresh install has an owner without MFA and no backup, so the run
 * exits 3 and lists them; the run is recorded and audited as the CLI's. `bulwark assessment report`
 * writes the compliance page.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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

  it('writes the ETSI EN 303 645 report as a page, exits 3 while a mandatory provision needs attention, and never overwrites', async () => {
    const page = join(dir, 'etsi.html');
    const made = await bulwark(['assessment', 'report', ...d, '--html', page]);
    assert.equal(made.code, 3, made.stderr); // the owner has no MFA yet: 5.1-3 needs attention
    assert.match(made.stdout, /Mandatory: {3}32 provisions, \d+ met by the platform, [1-9]\d* need attention/);
    assert.match(made.stdout, /M 5\.1-3 needs attention: .*operator-without-mfa/);
    assert.match(readFileSync(page, 'utf8'), /<h2>Mandatory provisions<\/h2>/);
    const again = await bulwark(['assessment', 'report', ...d, '--html', page]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exists; the report never overwrites a file/);
  });
});
