/**
 * `bulwark advisories` as child processes: check-sbom on the platform's own dependency SBOM (what
 * .ci/run does) fails on a critical advisory against a runtime dependency and passes on the
 * committed directory, a low one, or a dependency that does not ship; import and list on a
 * temporary SQLite data directory.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../ops/config.js';
import { DEFAULT_INIT, initialize } from '../../runner/init.js';
import { bulwark, ROOT } from '../../testing/cli.js';

const advisory = (id: string, name: string, severity: string) => ({
  id,
  modified: '2026-12-01T00:00:00Z',
  summary: `test advisory on ${name}`,
  database_specific: { severity },
  affected: [{ package: { ecosystem: 'npm', name }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '9999.0.0' }] }] }],
});

describe('bulwark advisories (CLI)', () => {
  let dir: string;
  let sbom: string;
  const directory = (name: string, records: unknown[]): string => {
    const path = join(dir, name);
    mkdirSync(path);
    records.forEach((r, i) => writeFileSync(join(path, `${i}.json`), JSON.stringify(r)));
    return path;
  };
  const check = (advisories: string, file = sbom) =>
    bulwark(['advisories', 'check-sbom', '--sbom', file, '--advisories', advisories, '--json']);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bulwark-advisories-cli-'));
    // What `npm run sbom` writes in .ci/run (the runtime dependencies only): that file itself when it
    // is newer than the lock file and every package.json (.ci/run wrote it before the tests), else
    // written here by the same command (about 2 s of npm's CPU).
    const written = join(ROOT, 'sbom.cdx.json');
    const inputs = [
      'package-lock.json',
      'package.json',
      ...readdirSync(join(ROOT, 'packages')).map((p) => join('packages', p, 'package.json')),
    ];
    const modified = (file: string) => statSync(file, { throwIfNoEntry: false })?.mtimeMs;
    const made = modified(written);
    if (made !== undefined && inputs.every((file) => (modified(join(ROOT, file)) ?? 0) <= made)) {
      sbom = written;
      return;
    }
    sbom = join(dir, 'sbom.cdx.json');
    const npm = spawnSync('npm', ['sbom', '--sbom-format', 'cyclonedx', '--omit', 'dev'], {
      cwd: ROOT,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    assert.equal(npm.status, 0, npm.stderr);
    writeFileSync(sbom, npm.stdout);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('passes on the committed security/advisories directory', async () => {
    const run = await check(join(ROOT, 'security/advisories'));
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const result = JSON.parse(run.stdout) as { advisories: number; components: number; failing: unknown[] };
    assert.ok(result.advisories >= 1);
    assert.ok(result.components > 50, `${result.components} components`);
    assert.deepEqual(result.failing, []);
  });

  it('fails (exit 3) on a critical advisory against a runtime dependency, naming it', async () => {
    const run = await check(directory('critical', [advisory('GHSA-crit-0000-0001', 'kysely', 'CRITICAL')]));
    assert.equal(run.code, 3, run.stdout + run.stderr);
    const result = JSON.parse(run.stdout) as { failing: { advisoryId: string; component: string; runtime: boolean }[] };
    assert.deepEqual(
      result.failing.map((f) => [f.advisoryId, f.component, f.runtime]),
      [['GHSA-crit-0000-0001', 'kysely', true]],
    );
    const human = await bulwark(['advisories', 'check-sbom', '--sbom', sbom, '--advisories', join(dir, 'critical')]);
    assert.equal(human.code, 3);
    assert.match(human.stdout, /\[critical\] GHSA-crit-0000-0001 kysely@/);
    assert.match(human.stdout, /FAIL: 1 runtime components/);
  });

  it('passes on a low advisory, a critical one on a development dependency, and a component that does not ship', async () => {
    const low = await check(directory('low', [advisory('GHSA-low0-0000-0001', 'kysely', 'LOW')]));
    assert.equal(low.code, 0, low.stdout + low.stderr);
    assert.equal((JSON.parse(low.stdout) as { found: unknown[] }).found.length, 1, 'reported, but below the floor');
    const dev = await check(directory('dev', [advisory('GHSA-dev0-0000-0001', 'typescript', 'CRITICAL')]));
    assert.equal(dev.code, 0, 'typescript is a development dependency: npm sbom --omit dev leaves it out');
    const excludedSbom = join(dir, 'excluded.cdx.json');
    writeFileSync(
      excludedSbom,
      JSON.stringify({
        bomFormat: 'CycloneDX',
        specVersion: '1.5',
        version: 1,
        components: [{ type: 'library', name: 'kysely', version: '0.28.0', purl: 'pkg:npm/kysely@0.28.0', scope: 'excluded' }],
      }),
    );
    const excluded = await check(join(dir, 'critical'), excludedSbom);
    assert.equal(excluded.code, 0, excluded.stdout);
    const bad = await bulwark(['advisories', 'check-sbom', '--sbom', sbom, '--advisories', join(dir, 'low'), '--fail-on', 'severe']);
    assert.equal(bad.code, 2);
  });

  it('imports a directory into an organization and lists it', async () => {
    const dataDir = join(dir, 'data');
    await initialize(loadConfig({ dataDir, env: {} }), DEFAULT_INIT, { env: {} });
    const d = ['--data-dir', dataDir, '--org', 'default'];
    const imported = await bulwark(['advisories', 'import', ...d, join(ROOT, 'security/advisories'), join(dir, 'critical')]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /2 added, 0 updated, 0 unchanged/);
    const listed = await bulwark(['advisories', 'list', ...d]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /\[critical\] GHSA-crit-0000-0001 .*no release affected/);
    const missing = await bulwark(['advisories', 'remediate', ...d, '--advisory', 'GHSA-none', '--release', 'r1']);
    assert.equal(missing.code, 4, missing.stderr);
  });

  it('records the issuing CA as revoked (bulwark pki revoke-ca), once, and the next run finds it still issuing', async () => {
    const dataDir = join(dir, 'data');
    const ca = join(dataDir, 'pki', 'device-ca.pem'); // the device issuing CA init made
    const revoke = (file: string) =>
      bulwark(['pki', 'revoke-ca', '--data-dir', dataDir, '--certificate', file, '--reason', 'cACompromise', '--json']);
    const done = await revoke(ca);
    assert.equal(done.code, 0, done.stderr);
    const record = JSON.parse(done.stdout) as { organizationId: string | null; reason: string; fingerprintSha256: string };
    assert.deepEqual([record.organizationId, record.reason], [null, 'cACompromise']);
    assert.match(record.fingerprintSha256, /^[0-9a-f]{64}$/);
    const twice = await revoke(ca);
    assert.equal(twice.code, 5, twice.stderr);
    const badReason = await bulwark(['pki', 'revoke-ca', '--data-dir', dataDir, '--certificate', ca, '--reason', 'lost']);
    assert.equal(badReason.code, 2);
    const ran = await bulwark(['assessment', 'run', '--data-dir', dataDir, '--org', 'default', '--json']);
    const { open } = JSON.parse(ran.stdout) as {
      open: { check: string; severity: string; evidence: { cas: { kind: string; use: string }[] } }[];
    };
    const still = open.find((f) => f.check === 'revoked-ca-still-active');
    assert.ok(still, ran.stdout);
    assert.deepEqual(
      still.evidence.cas.map((c) => [c.kind, c.use]),
      [['platform', 'issues device certificates']],
    );
  });
});
