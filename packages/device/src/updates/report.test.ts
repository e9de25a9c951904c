import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { VersionReport } from '@bulwark/protocol';
import { parseSignedReport, reportSignatureValid } from '@bulwark/server/testing';
import { tempDir } from '../testing/temp.js';
import { makeTestPki } from '../testing/update-pki.js';
import { ReportCounter, signVersionReport, verifyVersionReport } from './report.js';

describe('signed version report', () => {
  const temp = tempDir('report');
  after(() => temp.remove());

  const report = (counter: number): VersionReport => ({
    deviceId: 'dev-report',
    counter,
    ts: 1_790_000_000_000,
    running: { target: 'p/firmware-1.0.0.bin', version: '1.0.0', sha256: 'ab'.repeat(32) },
    slot: 'a',
    securityVersion: 2,
    errors: [{ code: 'update.hash_mismatch', message: 'the image hash differs' }],
  });

  it('is signed so that the platform verifies it with the device certificate, and a changed report no longer verifies', async () => {
    const pki = await makeTestPki();
    const device = await pki.device('dev-report');
    const signed = signVersionReport(report(7), device.key);
    const parsed = parseSignedReport(Buffer.from(JSON.stringify(signed)));
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.message);
    assert.ok(reportSignatureValid(signed.report, signed.signature, device.cert));
    assert.ok(verifyVersionReport(signed, device.cert));
    const altered = { ...signed.report, securityVersion: 3 };
    assert.equal(reportSignatureValid(altered, signed.signature, device.cert), false);
    const other = await pki.device('dev-other');
    assert.equal(reportSignatureValid(signed.report, signed.signature, other.cert), false);
  });

  it('hands out strictly increasing counters that survive a restart', () => {
    const first = new ReportCounter(temp.dir);
    assert.deepEqual([first.next(), first.next()], [1, 2]);
    assert.equal(new ReportCounter(temp.dir).next(), 3);
  });
});
