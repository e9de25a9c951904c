/**
 * A full audit run at fleet scale: fills a node with 100,000 devices and 1,000,000 certificate rows
 * (ten per device: one active, nine revoked; 1 % expiring within the window; 10 % connected, some
 * of those on a revoked certificate; 10 % with a symmetric key), then times every audit check over
 * the organization (first run: opens findings; later runs: refresh them) with its peak memory, and
 * the compliance report. Baseline, measured in the same run on the same rows: a bare scan of the
 * certificate table and of the devices (count and max over every row), what the database alone
 * needs to read the fleet once.
 *
 *   node --conditions=source --import tsx bench/assessment/audit.ts [--pg] [--devices 100000] [--certificates 1000000]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { sql, type Insertable } from 'kysely';
import type {
  DevicePresenceTable,
  DevicesTable,
  DeviceSymmetricKeysTable,
  IssuedCertificatesTable,
} from '../../packages/server/src/storage/schema.js';
import { AUDIT_CHECKS } from '../../packages/server/src/assessment/checks/index.js';
import { EvidenceStore } from '../../packages/server/src/assessment/evidence-store.js';
import { AssessmentService } from '../../packages/server/src/assessment/service.js';
import { AssessmentStore } from '../../packages/server/src/assessment/store.js';
import { deviceRow } from '../support/fleet.js';
import { machine, median, table } from '../support/measure.js';
import { startBenchPlatform } from '../support/platform.js';

const { values } = parseArgs({
  options: {
    pg: { type: 'boolean', default: false },
    devices: { type: 'string', default: '100000' },
    certificates: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
  },
});
const DEVICES = Number(values.devices);
const CERTIFICATES = Number(values.certificates);
const RUNS = Math.max(2, Number(values.runs));
const PER_DEVICE = Math.max(1, Math.round(CERTIFICATES / DEVICES));
const DAY = 86_400_000;

/** One real device certificate (P-256, made by openssl), stored in every row: checks that parse certificates parse real ones. */
function sampleCertificate(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-bench-cert-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=bench-device',
      '-days', '365', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'),
    ], { stdio: 'ignore' }); // prettier-ignore
    return readFileSync(join(dir, 'c.pem'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Peak RSS and heap above the start while `work` runs, sampled every 10 ms. */
async function measured<T>(work: () => Promise<T>): Promise<{ value: T; seconds: number; rssMb: number; heapMb: number }> {
  global.gc?.();
  const start = process.memoryUsage();
  let rss = start.rss;
  let heap = start.heapUsed;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed);
  }, 10);
  const started = performance.now();
  const value = await work();
  const seconds = (performance.now() - started) / 1000;
  clearInterval(timer);
  const end = process.memoryUsage();
  return {
    value,
    seconds,
    rssMb: (Math.max(rss, end.rss) - start.rss) / 2 ** 20,
    heapMb: (Math.max(heap, end.heapUsed) - start.heapUsed) / 2 ** 20,
  };
}

const bench = await startBenchPlatform({ postgres: values.pg ?? false });
try {
  const { platform, admin } = bench;
  const { db } = platform;
  const org = admin.organizationId;
  const product = await platform.devices.service.createProduct(admin, { name: 'Audit bench meter' });
  const pem = sampleCertificate();
  const now = Date.now();

  const filling = performance.now();
  const BATCH = 500;
  for (let start = 0; start < DEVICES; start += BATCH) {
    const devices: Insertable<DevicesTable>[] = [];
    const certificates: Insertable<IssuedCertificatesTable>[] = [];
    const presence: Insertable<DevicePresenceTable>[] = [];
    const keys: Insertable<DeviceSymmetricKeysTable>[] = [];
    for (let i = start; i < Math.min(start + BATCH, DEVICES); i++) {
      const device = deviceRow(org, product.id, `AUD-${i}`, now - 400 * DAY, {
        firmware_version: `1.${i % 5}.0`,
        last_seen_at: now - (i % 1000) * 1000,
        updated_at: now,
      });
      devices.push(device);
      const { id } = device;
      for (let c = 0; c < PER_DEVICE; c++) {
        const active = c === PER_DEVICE - 1;
        certificates.push({
          serial: randomBytes(16).toString('hex'),
          organization_id: org,
          device_id: id,
          subject: `CN=${id}`,
          not_before: now - (PER_DEVICE - c) * 30 * DAY,
          // 1 % of the active certificates end within the expiry window.
          not_after: active ? now + (i % 100 === 0 ? 10 : 300) * DAY : now - c * DAY,
          fingerprint_sha256: randomBytes(32).toString('hex'),
          pem,
          status: active ? ('active' as const) : ('revoked' as const),
          revoked_at: active ? null : now - (PER_DEVICE - c) * 29 * DAY,
          revocation_reason: active ? null : 'superseded',
          created_at: now - (PER_DEVICE - c) * 30 * DAY,
        });
      }
      if (i % 10 === 0)
        presence.push({
          device_id: id,
          organization_id: org,
          connected_since: now - 3600_000,
          node_id: 'bench',
          remote_address: `10.0.${(i >> 8) & 255}.${i & 255}`,
          protocol: 'mqtt5',
          changed_at: now,
        });
      if (i % 10 === 5)
        keys.push({
          id: `${id}:1`,
          device_id: id,
          organization_id: org,
          version: 1,
          sealed_key: randomBytes(48).toString('base64'),
          enrollment_group_id: null,
          created_at: now - (i % 20 === 5 ? 500 : 10) * DAY,
          valid_until: null,
        });
    }
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('devices').values(devices).execute();
      for (let c = 0; c < certificates.length; c += BATCH)
        await trx
          .insertInto('issued_certificates')
          .values(certificates.slice(c, c + BATCH))
          .execute();
      if (presence.length) await trx.insertInto('device_presence').values(presence).execute();
      if (keys.length) await trx.insertInto('device_symmetric_keys').values(keys).execute();
    });
  }
  // The last connected device of each thousand: its newest certificate revoked (a session revocation should have ended).
  await sql`update issued_certificates set status = 'revoked', revoked_at = ${now}
    where status = 'active' and device_id in (select device_id from device_presence where remote_address like '%.0')`.execute(db);
  if (bench.engine === 'postgres') await sql`analyze`.execute(db);
  const fillSeconds = (performance.now() - filling) / 1000;
  console.error(`rows written in ${fillSeconds.toFixed(1)} s`);

  const bare = async () => {
    const started = performance.now();
    await sql`select count(*), max(not_after), max(fingerprint_sha256) from issued_certificates where organization_id = ${org}`.execute(db);
    await sql`select count(*), max(last_seen_at) from devices where organization_id = ${org}`.execute(db);
    return (performance.now() - started) / 1000;
  };
  const bareSeconds = median([await bare(), await bare(), await bare()]);

  const runs = [];
  for (let r = 0; r < RUNS; r++) {
    runs.push(await measured(() => platform.assessment.service.run(admin, 'cli')));
    console.error(`run ${r + 1}: ${runs[r]!.seconds.toFixed(2)} s`);
  }
  const first = runs[0]!;
  const later = runs.slice(1);
  const laterSeconds = median(later.map((r) => r.seconds));
  const report = await measured(() => platform.assessment.compliance.report(admin));
  // Each check alone (a service that evaluates only it), to show where a run's time goes: its
  // first run and a later one (what a check keeps across runs, such as key verdicts, is then known).
  const perCheck: [string, number, number][] = [];
  for (const check of AUDIT_CHECKS) {
    const alone = new AssessmentService(
      new AssessmentStore(db),
      new EvidenceStore(db),
      platform.audit,
      platform.clock,
      platform.config,
      { caChain: () => platform.pki.caChain() },
      [check],
    );
    const timed = async () => {
      const started = performance.now();
      await alone.run(admin, 'cli');
      return (performance.now() - started) / 1000;
    };
    perCheck.push([check.id, await timed(), await timed()]);
  }
  perCheck.sort((a, b) => b[1] - a[1]);

  console.log(
    `\nFull audit run over ${DEVICES.toLocaleString()} devices and ${(DEVICES * PER_DEVICE).toLocaleString()} certificate rows, ${bench.engine}`,
  );
  console.log(
    `${machine()}; rows written in ${fillSeconds.toFixed(0)} s; ${first.value.checks.length} checks, ${first.value.openTotal} findings open`,
  );
  if (first.value.failures.length) console.log('check failures:', first.value.failures);
  table(
    ['', 'wall s', 'peak RSS +MB', 'peak heap +MB', 'bare scan s', 'ratio'],
    [
      ['first run (opens findings)', first.seconds, first.rssMb, first.heapMb, bareSeconds, first.seconds / bareSeconds],
      [
        `later runs (median of ${later.length})`,
        laterSeconds,
        Math.max(...later.map((r) => r.rssMb)),
        Math.max(...later.map((r) => r.heapMb)),
        bareSeconds,
        laterSeconds / bareSeconds,
      ],
      ['compliance report', report.seconds, report.rssMb, report.heapMb, bareSeconds, report.seconds / bareSeconds],
    ],
  );
  console.log(
    'slowest checks, each alone, first / later run (s):',
    perCheck
      .slice(0, 5)
      .map(([id, first, later]) => `${id} ${first.toFixed(3)} / ${later.toFixed(3)}`)
      .join(', '),
  );
  const slow = await db
    .selectFrom('audit_log')
    .select('details')
    .where('action', '=', 'assessment.run')
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  console.log(`last run as audited: ${slow?.details ?? ''}`);
} finally {
  await bench.close();
}
