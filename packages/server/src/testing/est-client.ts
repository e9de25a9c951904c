/**
 * For tests: a device's side of EST over real TLS. Posts a base64 DER CSR to /.well-known/est/…
 * with an optional client certificate (the device's current one, or a bootstrap certificate) and
 * bearer token, on a fresh connection each time (no TLS session reuse between identities), and
 * makes the openssl CSRs and certificates the attacks need.
 */
import { execFile } from 'node:child_process';
import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { Openssl } from './openssl.js';
import { P256 } from './openssl.js';

export interface EstAnswer {
  status: number;
  text: string;
  /** The parsed error body, when the answer is one. */
  error?: { code: string; message: string };
}

/** `agent`: a keep-alive agent holding the client certificate, for many requests over few connections. */
export function estPost(
  port: number,
  ca: string,
  path: string,
  csrBase64: string,
  options: { cert?: string; key?: string; bearer?: string; agent?: https.Agent } = {},
): Promise<EstAnswer> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port,
        path: `/.well-known/est/${path}`,
        method: 'POST',
        ca,
        agent: options.agent ?? false,
        ...(options.cert ? { cert: options.cert, key: options.key } : {}),
        headers: { 'content-type': 'application/pkcs10', ...(options.bearer ? { authorization: `Bearer ${options.bearer}` } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let error: EstAnswer['error'];
          if ((res.headers['content-type'] ?? '').includes('json')) error = (JSON.parse(text) as { error?: EstAnswer['error'] }).error;
          resolve({ status: res.statusCode ?? 0, text, ...(error ? { error } : {}) });
        });
      },
    );
    request.on('error', reject);
    request.end(csrBase64);
  });
}

/** A CSR for `subject` as base64 DER (an EST body); `keyArgs` makes a new key, or `['-key', 'name.key']` reuses one. */
export async function estCsr(ssl: Openssl, name: string, subject: string, keyArgs: string[] = P256): Promise<string> {
  const reuse = keyArgs[0] === '-key';
  await ssl.must([
    'req',
    '-new',
    ...keyArgs,
    ...(reuse ? [] : ['-nodes', '-keyout', `${name}.key`]),
    '-subj',
    subject,
    '-outform',
    'DER',
    '-out',
    `${name}.der`,
  ]);
  return (await ssl.must(['base64', '-A', '-in', `${name}.der`])).trim();
}

/** The first certificate of an EST answer (base64 PKCS#7), as PEM, decoded by openssl as a device would. */
export async function certificateOf(ssl: Openssl, name: string, answer: string): Promise<string> {
  ssl.write(`${name}.p7.b64`, answer);
  await ssl.must(['base64', '-d', '-A', '-in', `${name}.p7.b64`, '-out', `${name}.p7`]);
  await ssl.must(['pkcs7', '-inform', 'DER', '-in', `${name}.p7`, '-print_certs', '-out', `${name}.pem`]);
  return ssl.read(`${name}.pem`);
}

/** A CA made by openssl (self-signed, CA:TRUE) under `name`.pem / `name`.key, with the given subject. */
export async function opensslCa(ssl: Openssl, name: string, subject: string): Promise<string> {
  await ssl.must([
    'req',
    '-x509',
    ...P256,
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-subj',
    subject,
    '-days',
    '3650',
    '-out',
    `${name}.pem`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return ssl.read(`${name}.pem`);
}

/**
 * A client certificate for `subject` issued by the openssl CA `ca` (see opensslCa), under `name`.pem / `name`.key;
 * `keyArgs` are the key's genpkey arguments (P-256 unless given).
 */
export async function opensslLeaf(
  ssl: Openssl,
  ca: string,
  name: string,
  subject: string,
  days = 365,
  keyArgs: string[] = P256,
): Promise<string> {
  await ssl.csr(name, subject, keyArgs);
  await ssl.must([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    String(days),
    '-out',
    `${name}.pem`,
  ]);
  return ssl.read(`${name}.pem`);
}

/** openssl's -subj form of a certificate's subject ("/CN=…/O=…"). */
export function opensslSubject(pem: string): string {
  return new X509Certificate(pem).subject
    .split('\n')
    .map((part) => `/${part}`)
    .join('');
}

/** curl, as a device with nothing else would run it; resolves with the HTTP status and body. */
export function curl(args: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '-w', '\n%{http_code}', ...args], { timeout: 20_000 }, (error, stdout) => {
      if (error) return reject(error);
      const cut = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) });
    });
  });
}
