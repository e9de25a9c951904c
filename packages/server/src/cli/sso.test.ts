/**
 * `bulwark sso configure | show | mfa-policy | report` and `bulwark admin deprovision` as child
 * processes on a temporary SQLite data directory (initialized in-process).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { bulwark, initializedDataDir } from '../testing/cli.js';
import { STRONG_PASSWORD } from '../testing/server.js';

describe('bulwark sso and admin deprovision (CLI, SQLite)', () => {
  let dir: string;
  let d: string[];
  before(async () => {
    ({ dir, args: d } = await initializedDataDir('sso-cli', async (platform, actor) => {
      await platform.accounts.service.createOperator(actor, {
        email: 'glass@example.com',
        name: 'Glass',
        role: 'owner',
        password: STRONG_PASSWORD,
      });
      await platform.accounts.service.createOperator(actor, {
        email: 'leaver@example.com',
        name: 'Leaver',
        role: 'operator',
        password: STRONG_PASSWORD,
      });
    }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('configures SSO with the secret from standard input, shows it without the secret, and reports the operators', async () => {
    const configured = await bulwark(
      [
        'sso',
        'configure',
        ...d,
        '--issuer',
        'https://idp.example.com',
        '--client-id',
        'bulwark',
        '--client-secret-stdin',
        '--map',
        'bulwark-admins=admin',
        '--map',
        'ops=operator',
        '--sso-only',
        '--break-glass',
        'glass@example.com',
        '--json',
      ],
      {},
      'the-client-secret\n',
    );
    assert.equal(configured.code, 0, configured.stderr);
    const view = JSON.parse(configured.stdout);
    assert.deepEqual(view.roleMapping, { 'bulwark-admins': 'admin', ops: 'operator' });
    assert.equal(view.ssoOnly, true);
    const shown = await bulwark(['sso', 'show', ...d]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /issuer: https:\/\/idp\.example\.com/);
    assert.doesNotMatch(shown.stdout, /the-client-secret/);

    const bad = await bulwark(['sso', 'configure', ...d, '--issuer', 'http://idp.example.com', '--client-id', 'x']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /https/);

    const policy = await bulwark(['sso', 'mfa-policy', ...d, '--roles', 'owner,admin,operator']);
    assert.equal(policy.code, 0, policy.stderr);
    const passkeys = await bulwark(['sso', 'passkey-policy', ...d, '--roles', 'owner']);
    assert.equal(passkeys.code, 0, passkeys.stderr);
    assert.match(passkeys.stdout, /Passkey required for: owner/);
    assert.equal((await bulwark(['sso', 'passkey-policy', ...d, '--roles', 'ghost'])).code === 0, false, 'an unknown role is refused');
    assert.equal((await bulwark(['sso', 'passkey-policy', ...d, '--roles', ''])).code, 0);
    const report = await bulwark(['sso', 'report', ...d]);
    assert.equal(report.code, 0, report.stderr);
    assert.match(report.stdout, /MFA required for: owner, admin, operator; SSO only/);
    assert.match(report.stdout, /glass@example\.com\towner\tactive\tpassword\tnever\tMFA MISSING\tbreak-glass/);
  });

  it('deprovisions an operator: disabled, sessions and API keys ended, audited', async () => {
    const res = await bulwark(['admin', 'deprovision', ...d, '--email', 'leaver@example.com', '--json']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(JSON.parse(res.stdout).status, 'disabled');
  });
});
