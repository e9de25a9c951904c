/**
 * The offline root ceremony as operators run it: every step is the `bulwark` CLI as a child
 * process, on temporary directories (an "offline" root directory and a data directory), checked
 * with openssl. Each refused import leaves every file of DIR/pki as it was.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../ops/config.js';
import { pkiPaths } from '../pki/ca.js';
import { initOfflineRoot, openOfflineRoot, signIssuingCsr } from '../pki/offline-root.js';
import { signIssuingCa } from '../pki/ca.js';
import * as x509 from '@peculiar/x509';
import { openPlatform } from '../platform.js';
import { Openssl, P256 } from '../testing/openssl.js';
import { bulwark, initializedDataDir, type CliRun as Run } from '../testing/cli.js';

const PASSPHRASE = 'offline root passphrase 42';

function ok(run: Run): Run {
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stdout}\n${run.stderr}`);
  return run;
}

/** Every file of DIR/pki with a hash of its content: what a refused import must leave unchanged. */
function snapshot(dataDir: string): Record<string, string> {
  const dir = pkiPaths(dataDir).dir;
  return Object.fromEntries(
    readdirSync(dir)
      .sort()
      .map((f) => [
        f,
        createHash('sha256')
          .update(readFileSync(join(dir, f)))
          .digest('hex'),
      ]),
  );
}

describe('bulwark pki: the offline root ceremony', { concurrency: 1 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'bulwark-pki-cli-'));
  const offline = join(base, 'offline-root');
  const dataDir = join(base, 'data');
  const passFile = join(base, 'passphrase');
  const ssl = new Openssl();
  const pki = (name: string) => join(dataDir, 'pki', name);

  before(async () => {
    writeFileSync(passFile, PASSPHRASE + '\n', { mode: 0o600 });
    const [root, init] = await Promise.all([
      bulwark(['pki', 'init-root', '--dir', offline, '--name', 'CN=Acme Offline Root, O=Acme', '--passphrase-file', passFile, '--json']),
      bulwark(['init', '--data-dir', dataDir]),
    ]);
    ok(root);
    ok(init);
    assert.match(init.stdout, /bulwark pki export-root --out/);
  });
  const extraDirs: string[] = [];
  after(() => {
    ssl.close();
    for (const dir of [base, ...extraDirs]) rmSync(dir, { recursive: true, force: true });
  });

  it('init-root makes a P-256 root (pathlen 1, 20 years) in a 0700 directory with a 0600 passphrase-encrypted key openssl reads', async () => {
    assert.equal(statSync(offline).mode & 0o777, 0o700);
    assert.equal(statSync(join(offline, 'root.key.p8')).mode & 0o777, 0o600);
    const key = readFileSync(join(offline, 'root.key.p8'), 'utf8');
    assert.match(key, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    const text = await ssl.must(['x509', '-in', join(offline, 'root.pem'), '-noout', '-text']);
    assert.match(text, /CA:TRUE, pathlen:1/);
    assert.match(text, /Certificate Sign, CRL Sign/);
    assert.match(text, /ASN1 OID: prime256v1/);
    assert.match(await ssl.must(['verify', '-CAfile', join(offline, 'root.pem'), join(offline, 'root.pem')]), /OK/);
    const pub = await ssl.must(['pkey', '-in', join(offline, 'root.key.p8'), '-passin', `file:${passFile}`, '-pubout']);
    assert.equal(pub, await ssl.must(['x509', '-in', join(offline, 'root.pem'), '-noout', '-pubkey']));
    assert.equal((await ssl.run(['pkey', '-in', join(offline, 'root.key.p8'), '-passin', 'pass:not the passphrase', '-noout'])).ok, false);
  });

  it('init-root refuses a short or missing passphrase and an occupied directory, creating nothing', async () => {
    const short = join(base, 'short-root');
    writeFileSync(join(base, 'short'), 'tooshort');
    const [weak, none, again] = await Promise.all([
      bulwark(['pki', 'init-root', '--dir', short, '--passphrase-file', join(base, 'short')]),
      bulwark(['pki', 'init-root', '--dir', short]),
      bulwark(['pki', 'init-root', '--dir', offline], { BULWARK_ROOT_PASSPHRASE: PASSPHRASE }),
    ]);
    assert.equal(weak.code, 2);
    assert.match(weak.stderr, /keys\.passphrase_weak/);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /keys\.passphrase_missing/);
    assert.equal(existsSync(short), false);
    assert.equal(again.code, 5);
    assert.match(again.stderr, /pki\.root_exists/);
  });

  it('request-issuing → sign-issuing → import-issuing under the new root; devices certificates then verify against it', async () => {
    const request = JSON.parse(ok(await bulwark(['pki', 'request-issuing', '--kind', 'device', '--data-dir', dataDir, '--json'])).stdout);
    assert.equal(request.keyLocation, 'data-dir');
    assert.match((await ssl.run(['req', '-in', request.csrPath, '-verify', '-noout'])).output, /verify OK/i);
    assert.equal(existsSync(pki('device-ca-pending.key.sealed')), true);

    const signedPath = join(base, 'device-ca.pem');
    ok(
      await bulwark(['pki', 'sign-issuing', '--dir', offline, '--csr', request.csrPath, '--out', signedPath, '--days', '1825'], {
        BULWARK_ROOT_PASSPHRASE: PASSPHRASE,
      }),
    );
    const text = await ssl.must(['x509', '-in', signedPath, '-noout', '-text']);
    assert.match(text, /CA:TRUE, pathlen:0/);
    assert.match(text, /Certificate Sign, CRL Sign/);
    assert.match(text, /X509v3 Authority Key Identifier/);
    assert.match(text, /X509v3 Subject Key Identifier/);
    assert.match(await ssl.must(['verify', '-CAfile', join(offline, 'root.pem'), signedPath]), /OK/);

    // --- attacks: each refused, nothing in DIR/pki changed ---
    const before = snapshot(dataDir);
    // One CLI process at a time (they share the SQLite audit log), while the next forgery is made.
    let attempts = Promise.resolve();
    const refused = (args: string[], code: string) => {
      attempts = attempts.then(async () => {
        const run = await bulwark(['pki', 'import-issuing', '--kind', 'device', '--data-dir', dataDir, ...args]);
        assert.equal(run.code, 2, `${code}: ${run.stdout}${run.stderr}`);
        assert.match(run.stderr, new RegExp(code.replace('.', '\\.')), run.stderr);
      });
    };
    // Signed by another root, for the right key.
    const otherRoot = join(base, 'other-root');
    await initOfflineRoot(otherRoot, 'CN=Mallory Root', { passphrase: PASSPHRASE });
    const mallory = await openOfflineRoot(otherRoot, { passphrase: PASSPHRASE });
    const forged = join(base, 'forged.pem');
    writeFileSync(forged, (await signIssuingCsr(mallory, otherRoot, readFileSync(request.csrPath, 'utf8'))).toString('pem'));
    refused(['--cert', forged, '--root', join(offline, 'root.pem')], 'pki.chain_invalid');
    refused(['--cert', forged], 'pki.chain_invalid');
    // Signed by the right root, for another key.
    const root = await openOfflineRoot(offline, { passphrase: PASSPHRASE });
    const otherKey = join(base, 'other-key.pem');
    writeFileSync(otherKey, (await signIssuingCsr(root, offline, await ssl.csr('other-ca', '/CN=Other CA', P256))).toString('pem'));
    refused(['--cert', otherKey, '--root', join(offline, 'root.pem')], 'pki.key_mismatch');
    // Not a CA: the right key and root, but CA:FALSE (made by openssl with the root key).
    ssl.write('leaf.ext', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n');
    const leaf = join(ssl.dir, 'leaf.pem');
    await ssl.must([
      'x509',
      '-req',
      '-in',
      request.csrPath,
      '-CA',
      join(offline, 'root.pem'),
      '-CAkey',
      join(offline, 'root.key.p8'),
      '-passin',
      `file:${passFile}`,
      '-days',
      '30',
      '-extfile',
      'leaf.ext',
      '-out',
      leaf,
    ]);
    refused(['--cert', leaf, '--root', join(offline, 'root.pem')], 'pki.not_a_ca');
    // Expired: the right key and root, valid for 30 days three years ago.
    const csr = new x509.Pkcs10CertificateRequest(readFileSync(request.csrPath, 'utf8'));
    const expired = join(base, 'expired.pem');
    writeFileSync(
      expired,
      (await signIssuingCa(root, csr.subjectName, csr.publicKey, new Date(Date.now() - 3 * 365 * 86_400_000), 30)).toString('pem'),
    );
    refused(['--cert', expired, '--root', join(offline, 'root.pem')], 'pki.certificate_not_current');
    await attempts;
    assert.deepEqual(snapshot(dataDir), before, 'a refused import changed DIR/pki');

    // --- the real import ---
    const imported = JSON.parse(
      ok(
        await bulwark([
          'pki',
          'import-issuing',
          '--kind',
          'device',
          '--cert',
          signedPath,
          '--root',
          join(offline, 'root.pem'),
          '--data-dir',
          dataDir,
          '--json',
        ]),
      ).stdout,
    );
    assert.equal(imported.rootReplaced, true);
    assert.equal(readFileSync(pki('device-ca.pem'), 'utf8').trim(), readFileSync(signedPath, 'utf8').trim());
    assert.equal(existsSync(pki('device-ca-pending.key.sealed')), false);
    assert.equal(existsSync(pki('ca.key.sealed')), false, "the replaced root's key left the data directory");
    // ca.pem: the new root first, and the old root while the server CA still chains to it.
    assert.equal((readFileSync(pki('ca.pem'), 'utf8').match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
    assert.match(await ssl.must(['verify', '-CAfile', pki('ca.pem'), '-untrusted', pki('server-ca.pem'), pki('server.pem')]), /OK/);

    const platform = await openPlatform(loadConfig({ dataDir, env: {} }), { env: {} });
    try {
      const org = (await platform.accounts.store.listOrganizations())[0]!.id;
      const cert = await platform.pki.issueDeviceCertificate(
        { organizationId: org, deviceId: 'ceremony-1', csrPem: await ssl.csr('dev', '/CN=ceremony-1', P256) },
        { type: 'cli', id: 'test' },
      );
      ssl.write('dev.pem', cert.pem);
      ssl.write('crl.pem', await platform.pki.crlFor());
    } finally {
      await platform.close();
    }
    const verified = await ssl.run([
      'verify',
      '-crl_check',
      '-CRLfile',
      'crl.pem',
      '-CAfile',
      join(offline, 'root.pem'),
      '-untrusted',
      pki('device-ca.pem'),
      'dev.pem',
    ]);
    assert.equal(verified.ok, true, verified.output);
    const audit = ok(await bulwark(['audit', 'export', '--data-dir', dataDir])).stdout;
    assert.match(audit, /"action":"pki\.issuing_ca_imported"[^\n]*"outcome":"success"/);
    assert.match(audit, /"action":"pki\.issuing_ca_imported"[^\n]*"outcome":"denied"[^\n]*pki\.key_mismatch/);
  });

  it('moves the server CA under the new root too: the HTTPS certificate is reissued and ca.pem holds only the new root', async () => {
    const request = JSON.parse(ok(await bulwark(['pki', 'request-issuing', '--kind', 'server', '--data-dir', dataDir, '--json'])).stdout);
    const signed = join(base, 'server-ca.pem');
    ok(await bulwark(['pki', 'sign-issuing', '--dir', offline, '--csr', request.csrPath, '--out', signed, '--passphrase-file', passFile]));
    const oldServer = readFileSync(pki('server.pem'), 'utf8');
    ok(await bulwark(['pki', 'import-issuing', '--kind', 'server', '--cert', signed, '--data-dir', dataDir]));
    assert.notEqual(readFileSync(pki('server.pem'), 'utf8'), oldServer);
    assert.equal(readFileSync(pki('ca.pem'), 'utf8').trim(), readFileSync(join(offline, 'root.pem'), 'utf8').trim());
    assert.match(
      await ssl.must([
        'verify',
        '-CAfile',
        join(offline, 'root.pem'),
        '-untrusted',
        pki('server-ca.pem'),
        '-purpose',
        'sslserver',
        pki('server.pem'),
      ]),
      /OK/,
    );
    const status = JSON.parse(ok(await bulwark(['pki', 'status', '--data-dir', dataDir, '--json'])).stdout);
    assert.equal(status.root.keyLocation, 'offline');
    assert.match(status.root.subject, /Acme Offline Root/);
    assert.equal(status.issuing.device.keyLocation, 'data-dir');
    assert.equal(status.issuing.server.keyLocation, 'data-dir');
    assert.equal(status.issuing.server.pendingRequest, false);
  });

  it('sign-issuing refuses a CSR with a bad signature and a CSR with a weak key', async () => {
    const good = await ssl.csr('ca-good', '/CN=Some CA', P256);
    const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5]! ^= 0x01;
    const tampered = ssl.write(
      'tampered.csr',
      `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`,
    );
    await ssl.csr('ca-weak', '/CN=Weak CA', ['-newkey', 'rsa:2048']);
    const env = { BULWARK_ROOT_PASSPHRASE: PASSPHRASE };
    const [bad, weak] = await Promise.all([
      bulwark(['pki', 'sign-issuing', '--dir', offline, '--csr', tampered, '--out', join(base, 'bad.pem')], env),
      bulwark(['pki', 'sign-issuing', '--dir', offline, '--csr', join(ssl.dir, 'ca-weak.csr'), '--out', join(base, 'weak.pem')], env),
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /pki\.csr_invalid/);
    assert.equal(weak.code, 2);
    assert.match(weak.stderr, /pki\.weak_key/);
    assert.equal(existsSync(join(base, 'bad.pem')) || existsSync(join(base, 'weak.pem')), false);
  });

  it('export-root moves the embedded root key offline; status then says so and issuance keeps working', async () => {
    // A second data directory made by init (in this process: init's own output is checked in before()).
    const { dir: dir2, dataDir: data2 } = await initializedDataDir('pki-cli-export', async () => undefined);
    extraDirs.push(dir2);
    const out = join(base, 'exported-root');
    const short = await bulwark(['pki', 'export-root', '--out', out, '--data-dir', data2], { BULWARK_ROOT_PASSPHRASE: 'short' });
    assert.equal(short.code, 2);
    assert.equal(existsSync(join(data2, 'pki', 'ca.key.sealed')), true);
    ok(await bulwark(['pki', 'export-root', '--out', out, '--data-dir', data2, '--passphrase-file', passFile]));
    assert.equal(existsSync(join(data2, 'pki', 'ca.key.sealed')), false);
    assert.equal(statSync(out).mode & 0o777, 0o700);
    assert.equal(statSync(join(out, 'root.key.p8')).mode & 0o777, 0o600);
    const pub = await ssl.must(['pkey', '-in', join(out, 'root.key.p8'), '-passin', `file:${passFile}`, '-pubout']);
    assert.equal(pub, await ssl.must(['x509', '-in', join(data2, 'pki', 'ca.pem'), '-noout', '-pubkey']));
    const status = ok(await bulwark(['pki', 'status', '--data-dir', data2]));
    assert.match(status.stdout, /Root CA: [^\n]+\n[^\n]+\n {2}key: offline/);
    const again = await bulwark(['pki', 'export-root', '--out', join(base, 'again'), '--data-dir', data2, '--passphrase-file', passFile]);
    assert.equal(again.code, 5);
    assert.match(again.stderr, /pki\.root_offline/);

    const platform = await openPlatform(loadConfig({ dataDir: data2, env: {} }), { env: {} });
    try {
      const org = (await platform.accounts.store.listOrganizations())[0]!.id;
      const cert = await platform.pki.issueDeviceCertificate(
        { organizationId: org, deviceId: 'after-export', csrPem: await ssl.csr('after', '/CN=after-export', P256) },
        { type: 'cli', id: 'test' },
      );
      await platform.pki.revoke({ organizationId: org, serial: cert.serial, reason: 'superseded' }, { type: 'cli', id: 'test' });
      ssl.write('after.pem', cert.pem);
      ssl.write('after-crl.pem', await platform.pki.crlFor());
    } finally {
      await platform.close();
    }
    const result = await ssl.run([
      'verify',
      '-crl_check',
      '-CRLfile',
      'after-crl.pem',
      '-CAfile',
      join(out, 'root.pem'),
      '-untrusted',
      join(data2, 'pki', 'device-ca.pem'),
      'after.pem',
    ]);
    assert.match(result.output, /certificate revoked/);
  });

  it('sign-issuing warns of a root key file below the policy; rekey-root re-encrypts it under a new passphrase, which then signs', async () => {
    const legacy = join(base, 'legacy-root');
    await initOfflineRoot(legacy, 'CN=Legacy Root', { passphrase: PASSPHRASE });
    const key = join(legacy, 'root.key.p8');
    // The same key as node's own export writes it: PBKDF2 at OpenSSL's default 2,048 iterations.
    writeFileSync(
      key,
      createPrivateKey({ key: readFileSync(key, 'utf8'), passphrase: PASSPHRASE }).export({
        type: 'pkcs8',
        format: 'pem',
        cipher: 'aes-256-cbc',
        passphrase: PASSPHRASE,
      }),
    );
    const csr = ssl.write('legacy-ca.csr', await ssl.csr('legacy-ca', '/CN=Legacy Issuing CA', P256));
    const env = { BULWARK_ROOT_PASSPHRASE: PASSPHRASE };
    const warned = ok(await bulwark(['pki', 'sign-issuing', '--dir', legacy, '--csr', csr, '--out', join(base, 'legacy-1.pem')], env));
    assert.match(warned.stderr, /warning: [^\n]*2,048 iterations[^\n]*Re-encrypt it: bulwark pki rekey-root --dir \S*legacy-root/);

    const newPass = join(base, 'new-passphrase');
    writeFileSync(newPass, 'rotated root passphrase 43\n', { mode: 0o600 });
    const rekeyed = JSON.parse(
      ok(await bulwark(['pki', 'rekey-root', '--dir', legacy, '--new-passphrase-file', newPass, '--json'], env)).stdout,
    );
    assert.match(rekeyed.before, /2,048 iterations/);
    assert.match(rekeyed.after, /PBKDF2-HMAC-SHA256, 600,000 iterations, AES-256-CBC/);
    assert.equal(statSync(key).mode & 0o777, 0o600);
    const [old, signed] = await Promise.all([
      bulwark(['pki', 'sign-issuing', '--dir', legacy, '--csr', csr, '--out', join(base, 'legacy-2.pem')], env),
      bulwark(['pki', 'sign-issuing', '--dir', legacy, '--csr', csr, '--out', join(base, 'legacy-3.pem'), '--passphrase-file', newPass]),
    ]);
    assert.equal(old.code, 2);
    assert.match(old.stderr, /keys\.passphrase_wrong/);
    assert.doesNotMatch(ok(signed).stderr, /warning/);
    assert.match(await ssl.must(['verify', '-CAfile', join(legacy, 'root.pem'), join(base, 'legacy-3.pem')]), /OK/);
  });
});
