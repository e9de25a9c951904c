/** OSV range evaluation (SEMVER, ECOSYSTEM, GIT; introduced, fixed, last_affected, limit), severities, and SBOM matching by purl. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AdvisoryIndex, componentsOf, packageOfAffected } from './match.js';
import { cvss3BaseScore, parseOsv, type OsvAffected, type OsvRange } from './osv.js';
import { compareGeneric, compareSemver, inRange, versionAffected } from './ranges.js';

const semverRange = (...events: OsvRange['events']): OsvRange => ({ type: 'SEMVER', events });
const affectedOf = (ecosystem: string, name: string, ranges: OsvRange[], versions: string[] = []): OsvAffected => ({
  package: { ecosystem, name },
  ranges,
  versions,
});

describe('OSV range evaluation', () => {
  it('SEMVER: introduced is inclusive, fixed exclusive, "0" means from the start', () => {
    const range = semverRange({ introduced: '1.2.0' }, { fixed: '1.4.1' });
    const at = (v: string) => inRange(range, v, compareSemver);
    assert.deepEqual(['1.1.9', '1.2.0', '1.3.5', '1.4.0', '1.4.1', '2.0.0'].map(at), [false, true, true, true, false, false]);
    const fromStart = semverRange({ introduced: '0' }, { fixed: '0.9.0' });
    assert.equal(inRange(fromStart, '0.0.1', compareSemver), true);
    assert.equal(inRange(fromStart, '0.9.0', compareSemver), false);
    assert.equal(inRange(fromStart, 'v0.8.0', compareSemver), true, 'a leading v is dropped');
    assert.equal(inRange(fromStart, '0.8.0-rc.1', compareSemver), true);
    assert.equal(
      inRange(semverRange({ introduced: '1.0.0' }, { fixed: '1.0.1' }), '1.0.1-rc.1', compareSemver),
      true,
      'a pre-release precedes its release',
    );
  });

  it('SEMVER: last_affected is inclusive; several intervals; events in any order', () => {
    const range = semverRange({ fixed: '2.1.0' }, { last_affected: '1.5.2' }, { introduced: '2.0.0' }, { introduced: '1.0.0' });
    const at = (v: string) => inRange(range, v, compareSemver);
    assert.deepEqual(['0.9.0', '1.0.0', '1.5.2', '1.5.3', '1.9.9', '2.0.0', '2.0.9', '2.1.0'].map(at), [
      false,
      true,
      true,
      false,
      false,
      true,
      true,
      false,
    ]);
    assert.equal(inRange(semverRange({ introduced: '1.0.0' }), '99.0.0', compareSemver), true, 'no end: every later version');
  });

  it('limit: a version at or past every limit is not affected', () => {
    const range = semverRange({ introduced: '1.0.0' }, { limit: '1.8.0' });
    assert.equal(inRange(range, '1.7.9', compareSemver), true);
    assert.equal(inRange(range, '1.8.0', compareSemver), false);
    assert.equal(inRange(range, '3.0.0', compareSemver), false);
    assert.equal(inRange(semverRange({ introduced: '1.0.0' }, { limit: '*' }), '3.0.0', compareSemver), true, '"*" limits nothing');
  });

  it('an unreadable version is not matched in a SEMVER range', () => {
    assert.equal(inRange(semverRange({ introduced: '0' }), 'not-a-version', compareSemver), false);
  });

  it('ECOSYSTEM: npm compares as SemVer, PyPI and Debian by the generic order', () => {
    const npm = affectedOf('npm', 'lodash', [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '4.17.21' }] }]);
    assert.equal(versionAffected(npm, '4.17.20'), true);
    assert.equal(versionAffected(npm, '4.17.21'), false);
    const pypi = affectedOf('PyPI', 'Django', [{ type: 'ECOSYSTEM', events: [{ introduced: '4.2' }, { fixed: '4.2.11' }] }]);
    assert.deepEqual(
      ['4.1.13', '4.2', '4.2.10', '4.2.11', '4.2.11rc1', '5.0'].map((v) => versionAffected(pypi, v)),
      [false, true, true, false, true, false],
    );
    const deb = affectedOf('Debian:12', 'openssl', [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '3.0.11-1~deb12u2' }] }]);
    assert.equal(versionAffected(deb, '3.0.11-1~deb12u1'), true);
    assert.equal(versionAffected(deb, '3.0.13-1~deb12u1'), false);
    assert.equal(compareGeneric('1.0', '1.0rc1')! > 0, true);
    assert.equal(compareGeneric('1.10', '1.9')! > 0, true);
    assert.equal(compareGeneric('1.0.0', '1.0.0'), 0);
  });

  it('GIT: a commit named introduced or last_affected is affected, fixed or limit is not, others only through versions', () => {
    const introduced = 'a'.repeat(40);
    const fixed = 'b'.repeat(40);
    const listed = 'c'.repeat(40);
    const git = affectedOf(
      'GIT',
      'https://example.com/lib.git',
      [{ type: 'GIT', repo: 'https://example.com/lib.git', events: [{ introduced }, { fixed }, { limit: 'd'.repeat(40) }] }],
      [listed],
    );
    assert.equal(versionAffected(git, introduced), true);
    assert.equal(versionAffected(git, introduced.slice(0, 12)), true, 'an abbreviated commit (at least 7 characters) is the same commit');
    assert.equal(versionAffected(git, fixed), false);
    assert.equal(versionAffected(git, 'd'.repeat(40)), false);
    assert.equal(versionAffected(git, listed), true);
    assert.equal(versionAffected(git, 'e'.repeat(40)), false, 'an unknown commit is not decidable without the history');
    const lastAffected = affectedOf('GIT', 'x', [
      { type: 'GIT', repo: 'x', events: [{ introduced: '0' }, { last_affected: 'f'.repeat(40) }] },
    ]);
    assert.equal(versionAffected(lastAffected, 'f'.repeat(40)), true);
  });

  it('an explicit versions list matches exactly (with or without a leading v)', () => {
    const listed = affectedOf('Go', 'github.com/x/y', [], ['v1.2.3', '1.3.0']);
    assert.equal(versionAffected(listed, '1.2.3'), true);
    assert.equal(versionAffected(listed, 'v1.3.0'), true);
    assert.equal(versionAffected(listed, '1.2.4'), false);
  });
});

describe('OSV records', () => {
  it('computes CVSS v3 base scores as FIRST does', () => {
    assert.equal(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'), 9.8);
    assert.equal(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H'), 10);
    assert.equal(cvss3BaseScore('CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N'), 3.1);
    assert.equal(cvss3BaseScore('CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N'), 5.5);
    assert.equal(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N'), 0);
    assert.equal(cvss3BaseScore('CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N'), null);
  });

  it('takes the worse of the CVSS v3 rating and database_specific.severity; none → medium', () => {
    const base = { id: 'GHSA-aaaa-bbbb-cccc', modified: '2026-01-01T00:00:00Z', affected: [] };
    assert.deepEqual(pick(parseOsv({ ...base, severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }] })), [
      'critical',
      'CVSS_V3 9.8',
    ]);
    assert.deepEqual(pick(parseOsv({ ...base, database_specific: { severity: 'MODERATE' } })), ['medium', 'database_specific']);
    assert.deepEqual(
      pick(
        parseOsv({
          ...base,
          severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N' }],
          database_specific: { severity: 'HIGH' },
        }),
      ),
      ['high', 'database_specific'],
    );
    assert.deepEqual(pick(parseOsv(base)), ['medium', 'default']);
  });

  it('refuses malformed records with the path of the first problem', () => {
    assert.throws(() => parseOsv({ id: 'x y', modified: '2026-01-01T00:00:00Z' }), /record.id must be an OSV ID/);
    assert.throws(() => parseOsv({ id: 'OSV-1', modified: 'yesterday' }), /record.modified must be an RFC 3339 time/);
    assert.throws(
      () =>
        parseOsv({
          id: 'OSV-1',
          modified: '2026-01-01T00:00:00Z',
          affected: [{ package: { ecosystem: 'npm', name: 'a' }, ranges: [{ type: 'SEMVER', events: [{ fixed: '1.0.0' }] }] }],
        }),
      /record.affected\[0\].ranges\[0\].events must have at least one introduced event/,
    );
    assert.throws(
      () =>
        parseOsv({
          id: 'OSV-1',
          modified: '2026-01-01T00:00:00Z',
          affected: [{ package: { ecosystem: 'npm', name: 'a' }, ranges: [{ type: 'RANGE', events: [] }] }],
        }),
      /ranges\[0\].type must be SEMVER, ECOSYSTEM or GIT/,
    );
    assert.throws(
      () =>
        parseOsv({
          id: 'OSV-1',
          modified: '2026-01-01T00:00:00Z',
          affected: [{ package: { ecosystem: 'npm', name: 'a' }, ranges: [{ type: 'GIT', events: [{ introduced: '0' }] }] }],
        }),
      /repo is required for a GIT range/,
    );
  });
});

const pick = (r: { severity: string; severitySource: string }) => [r.severity, r.severitySource];

describe('matching SBOM components by package URL', () => {
  it('names packages alike from a purl and from ecosystem and name (npm scopes, Maven groups, Go modules, PyPI names)', () => {
    const key = (ecosystem: string, name: string) => packageOfAffected(affectedOf(ecosystem, name, []));
    assert.equal(key('npm', '@scope/pkg'), 'npm/@scope/pkg');
    assert.equal(key('Maven', 'org.apache.logging.log4j:log4j-core'), 'maven/org.apache.logging.log4j/log4j-core');
    assert.equal(key('Go', 'golang.org/x/net'), 'golang/golang.org/x/net');
    assert.equal(key('PyPI', 'Foo_Bar'), 'pypi//foo-bar');
    assert.equal(key('Debian:12', 'openssl'), 'deb/debian/openssl');
  });

  it('matches the components of an SBOM (nested ones too) whose version is affected, and no other', () => {
    const sbom = {
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      version: 1,
      components: [
        { type: 'library', name: 'pkg', version: '1.2.0', purl: 'pkg:npm/%40scope/pkg@1.2.0' },
        { type: 'library', name: 'log4j-core', version: '2.17.1', purl: 'pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1' },
        {
          type: 'firmware',
          name: 'rootfs',
          version: '1',
          purl: 'pkg:generic/rootfs@1',
          components: [
            { type: 'library', name: 'openssl', version: '3.0.11-1~deb12u1', purl: 'pkg:deb/debian/openssl@3.0.11-1~deb12u1?arch=arm64' },
          ],
        },
        { type: 'library', name: 'no-purl', version: '1.0.0' },
      ],
    };
    const record = (id: string, ecosystem: string, name: string, fixed: string) => ({
      id,
      affected: [affectedOf(ecosystem, name, [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed }] }])],
    });
    const index = new AdvisoryIndex([
      record('A-1', 'npm', '@scope/pkg', '1.3.0'),
      record('A-2', 'Maven', 'org.apache.logging.log4j:log4j-core', '2.17.1'),
      record('A-3', 'Debian:12', 'openssl', '3.0.11-1~deb12u2'),
      record('A-4', 'npm', 'pkg', '9.0.0'),
    ]);
    const matches = index.match(componentsOf(sbom));
    assert.deepEqual(
      matches.map((m) => [m.advisoryId, m.name, m.version]),
      [
        ['A-1', 'pkg', '1.2.0'],
        ['A-3', 'openssl', '3.0.11-1~deb12u1'],
      ],
      'log4j 2.17.1 is the fixed version; the unscoped npm "pkg" is another package',
    );
  });
});
