import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { createMasterKeyFile, loadMasterKey } from '../keys/master-key.js';
import { ensureDeploymentPki, loadDeviceIssuingCa, pkiPaths } from './ca.js';
import { CertificateIssuer } from './issuer.js';

describe('deployment CA hierarchy', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const fresh = () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-ca-'));
    dirs.push(dir);
    createMasterKeyFile(dir);
    return { dir, box: loadMasterKey(dir, {}) };
  };

  it('loads the device issuing CA, whose chain ends at the root in ca.pem, and keeps what exists on a second run', async () => {
    const { dir, box } = fresh();
    const first = await ensureDeploymentPki({ dataDir: dir, box, organizationName: 'Acme', extraServerNames: [] });
    assert.equal(first.created, true);
    const ca = await loadDeviceIssuingCa(dir, { box, token: null });
    assert.equal(ca.legacy, false);
    const root = new X509Certificate(ca.root);
    const issuing = new X509Certificate(ca.cert);
    assert.ok(issuing.checkIssued(root) && issuing.verify(root.publicKey));
    assert.match(issuing.subject, /Device Issuing CA/);
    assert.equal((await ensureDeploymentPki({ dataDir: dir, box, organizationName: 'Acme', extraServerNames: [] })).created, false);
  });

  it('keeps using the single CA of a data directory made before the hierarchy', async () => {
    const { dir, box } = fresh();
    await ensureDeploymentPki({ dataDir: dir, box, organizationName: 'Old', extraServerNames: [] });
    const paths = pkiPaths(dir);
    // What an older `bulwark init` left behind: ca.pem, its key, and the server certificate.
    for (const file of [paths.deviceCaCert, paths.deviceCaKey, paths.serverCaCert, paths.serverCaKey]) unlinkSync(file);
    assert.equal((await ensureDeploymentPki({ dataDir: dir, box, organizationName: 'Old', extraServerNames: [] })).created, false);
    assert.equal(existsSync(paths.deviceCaCert), false);
    const ca = await loadDeviceIssuingCa(dir, { box, token: null });
    assert.equal(ca.legacy, true);
    assert.equal(ca.cert, ca.root);
    const issuer = await CertificateIssuer.create(ca.cert, ca.signer, { crlUrl: 'https://x.example/pki/crl.pem' });
    assert.match(issuer.caCertificate.subject, /Root CA/);
  });
});
