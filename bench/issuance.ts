/**
 * Device certificate issuance from CSRs: certificates per second on every core (worker threads,
 * one CertificateIssuer each), beside the one-thread issuer rate and the bare ECDSA P-256 sign
 * rate measured in the same run. Issuance is the CSR signature check, the key and identity
 * checks, and building, signing and PEM-encoding the certificate (no database write).
 *
 *   node --conditions=source --import tsx bench/issuance.ts [--duration 3] [--rounds 3] [--threads N]
 */
import 'reflect-metadata';
import { generateKeyPairSync, sign, webcrypto } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import * as x509 from '@peculiar/x509';
import { createIssuingCa, createRootCa } from '../packages/server/src/pki/ca.js';
import { CertificateIssuer } from '../packages/server/src/pki/issuer.js';
import { generateSoftwareSigner, importSoftwareSigner } from '../packages/server/src/pki/signer.js';
import { machine, median, table } from './support/measure.js';

const AIM_PER_SECOND = 2000;
const CSR_POOL = 64;
const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

interface Material {
  caCert: string;
  caKey: string;
  csrs: { deviceId: string; pem: string }[];
}

interface WorkerInput extends Material {
  durationMs: number;
}

async function issuerFor(material: Material): Promise<CertificateIssuer> {
  return CertificateIssuer.create(material.caCert, await importSoftwareSigner(material.caKey), {
    crlUrl: 'https://bulwark.example/pki/crl.pem',
  });
}

/** Issues round-robin from the CSR pool for `durationMs`; returns certificates per second. */
async function issueFor(issuer: CertificateIssuer, csrs: Material['csrs'], durationMs: number): Promise<number> {
  const started = performance.now();
  const end = started + durationMs;
  let count = 0;
  while (performance.now() < end) {
    const csr = csrs[count % csrs.length]!;
    await issuer.issueDeviceCertificate(csr.deviceId, csr.pem, new Date());
    count++;
  }
  return count / ((performance.now() - started) / 1000);
}

function bareSign(durationMs: number): number {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.alloc(400, 7); // about the size of a device certificate's TBS
  const started = performance.now();
  let count = 0;
  while (performance.now() - started < durationMs) {
    sign('sha256', data, privateKey);
    count++;
  }
  return count / ((performance.now() - started) / 1000);
}

/** All threads start together (after each has warmed up) and issue for the same time. */
async function parallelRate(material: Material, threads: number, durationMs: number): Promise<number> {
  // Node 20 does not carry --import tsx into worker threads: the worker loads this file through tsx's API.
  const boot = `import('tsx/esm/api').then(({ tsImport }) => tsImport(${JSON.stringify(import.meta.url)}, ${JSON.stringify(import.meta.url)}))`;
  const workers = Array.from(
    { length: threads },
    () => new Worker(boot, { eval: true, workerData: { ...material, durationMs } satisfies WorkerInput }),
  );
  try {
    await Promise.all(workers.map((w) => new Promise((resolve, reject) => w.once('message', resolve).once('error', reject))));
    const rates = workers.map((w) => new Promise<number>((resolve, reject) => w.once('message', resolve).once('error', reject)));
    for (const w of workers) w.postMessage('go');
    return (await Promise.all(rates)).reduce((a, b) => a + b, 0);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

async function workerMain(): Promise<void> {
  const input = workerData as WorkerInput;
  const issuer = await issuerFor(input);
  await issueFor(issuer, input.csrs, 300);
  parentPort!.postMessage('ready');
  parentPort!.once('message', () => {
    void issueFor(issuer, input.csrs, input.durationMs).then((rate) => parentPort!.postMessage(rate));
  });
}

async function material(): Promise<Material> {
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const now = new Date();
  const root = await createRootCa('CN=Bench Root CA', now);
  const deviceKey = await generateSoftwareSigner();
  const device = await createIssuingCa(root, 'CN=Bench Device Issuing CA', now, deviceKey);
  const csrs = await Promise.all(
    Array.from({ length: CSR_POOL }, async (_v, i) => {
      const keys = (await webcrypto.subtle.generateKey(EC_P256, false, ['sign', 'verify'])) as unknown as CryptoKeyPair;
      const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=bench-${i}`, keys, signingAlgorithm: EC_P256 });
      return { deviceId: `bench-${i}`, pem: csr.toString('pem') };
    }),
  );
  return { caCert: device.cert.toString('pem'), caKey: await deviceKey.exportPkcs8Pem(), csrs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '3' },
      threads: { type: 'string', default: String(availableParallelism()) },
    },
  });
  const durationMs = Number(values.duration) * 1000;
  const rounds = Number(values.rounds);
  const threads = Number(values.threads);
  console.log(
    `certificate issuance from P-256 CSRs: ${machine()}; ${threads} worker threads; ${rounds} rounds of ${values.duration} s; load average ${loadavg()[0]!.toFixed(2)} at start`,
  );

  const input = await material();
  const issuer = await issuerFor(input);
  await issueFor(issuer, input.csrs, 500);

  const rows: (string | number)[][] = [];
  const all = { sign: [] as number[], one: [] as number[], many: [] as number[] };
  for (let round = 1; round <= rounds; round++) {
    const signRate = bareSign(durationMs);
    const one = await issueFor(issuer, input.csrs, durationMs);
    const many = await parallelRate(input, threads, durationMs);
    all.sign.push(signRate);
    all.one.push(one);
    all.many.push(many);
    rows.push([`round ${round}`, signRate, one, many, (many / one).toFixed(2), (one / signRate).toFixed(3)]);
  }
  const [sign1, one, many] = [median(all.sign), median(all.one), median(all.many)];
  rows.push(['median', sign1, one, many, (many / one).toFixed(2), (one / sign1).toFixed(3)]);
  table(
    [
      '',
      'bare P-256 sign/s (1 thread)',
      'issued/s (1 thread)',
      `issued/s (${threads} threads)`,
      'threads ÷ 1 thread',
      '1 thread ÷ bare sign',
    ],
    rows,
  );
  console.log(
    `\n${threads}-thread issuance: ${Math.round(many)}/s (aim ≥${AIM_PER_SECOND}/s: ${many >= AIM_PER_SECOND ? 'met' : 'NOT met'}); ${(1e6 / one).toFixed(0)} µs per certificate on one thread vs ${(1e6 / sign1).toFixed(1)} µs per bare signature`,
  );
}

if (isMainThread) await main();
else await workerMain();
