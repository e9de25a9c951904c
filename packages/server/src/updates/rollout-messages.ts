/**
 * Strict parsers of what a device publishes below `d/<id>/updates/`: an UpdateStatus on `status`
 * and a SignedVersionReport on `report`, plus the report's signature check (ECDSA P-256 SHA-256,
 * DER, over the canonical JSON of `report`, by the device's certificate key). Anything not exactly
 * of the contract's shape is refused with a message saying what was expected.
 */
import { verify, X509Certificate, type KeyObject } from 'node:crypto';
import { canonicalize } from '@tufjs/canonical-json';
import { UPDATE_STATES, type SignedVersionReport, type UpdateState, type UpdateStatus, type VersionReport } from '@bulwark/protocol';

export const MAX_MESSAGE_BYTES = 16 * 1024;
const MAX_REPORT_ERRORS = 20;

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const fail = (message: string): { ok: false; message: string } => ({ ok: false, message });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const boundedString = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

function onlyKeys(value: Record<string, unknown>, allowed: string[], what: string): string | null {
  const extra = Object.keys(value).filter((k) => !allowed.includes(k));
  return extra.length ? `${what} has unknown fields: ${extra.slice(0, 5).join(', ')}` : null;
}

function json(payload: Buffer): Parsed<unknown> {
  if (payload.length > MAX_MESSAGE_BYTES) return fail(`The message is ${payload.length} bytes; at most ${MAX_MESSAGE_BYTES}`);
  try {
    return { ok: true, value: JSON.parse(payload.toString('utf8')) };
  } catch {
    return fail('The message is not valid JSON');
  }
}

function errorEntry(value: unknown, what: string): Parsed<{ code: string; message: string }> {
  if (!isObject(value)) return fail(`${what} must be { code, message }`);
  const extra = onlyKeys(value, ['code', 'message'], what);
  if (extra) return fail(extra);
  if (!boundedString(value.code, 64)) return fail(`${what}.code must be a string of 1 to 64 characters`);
  if (typeof value.message !== 'string' || value.message.length > 500)
    return fail(`${what}.message must be a string of at most 500 characters`);
  return { ok: true, value: { code: value.code, message: value.message } };
}

export function parseStatus(payload: Buffer): Parsed<UpdateStatus> {
  const parsed = json(payload);
  if (!parsed.ok) return parsed;
  const body = parsed.value;
  if (!isObject(body)) return fail('Send { rolloutId, state, target, ts, error? }');
  const extra = onlyKeys(body, ['rolloutId', 'state', 'target', 'ts', 'error'], 'The status');
  if (extra) return fail(extra);
  if (!boundedString(body.rolloutId, 64)) return fail('rolloutId must be a string of 1 to 64 characters');
  if (typeof body.state !== 'string' || !(UPDATE_STATES as readonly string[]).includes(body.state))
    return fail(`state must be one of ${UPDATE_STATES.join(', ')}`);
  if (!boundedString(body.target, 256)) return fail('target must be a string of 1 to 256 characters');
  if (typeof body.ts !== 'number' || !Number.isFinite(body.ts) || body.ts < 0) return fail('ts must be milliseconds since the epoch');
  const status: UpdateStatus = { rolloutId: body.rolloutId, state: body.state as UpdateState, target: body.target, ts: body.ts };
  if (body.error !== undefined) {
    const error = errorEntry(body.error, 'error');
    if (!error.ok) return error;
    status.error = error.value;
  }
  return { ok: true, value: status };
}

function nullableString(value: unknown, max: number): value is string | null {
  return value === null || boundedString(value, max);
}

function parseReport(value: unknown): Parsed<VersionReport> {
  if (!isObject(value)) return fail('report must be an object');
  const extra = onlyKeys(value, ['deviceId', 'counter', 'ts', 'running', 'slot', 'securityVersion', 'errors'], 'report');
  if (extra) return fail(extra);
  if (!boundedString(value.deviceId, 64)) return fail('report.deviceId must be a string of 1 to 64 characters');
  if (!Number.isSafeInteger(value.counter) || (value.counter as number) < 0) return fail('report.counter must be a non-negative integer');
  if (typeof value.ts !== 'number' || !Number.isFinite(value.ts) || value.ts < 0)
    return fail('report.ts must be milliseconds since the epoch');
  const running = value.running;
  if (!isObject(running)) return fail('report.running must be { target, version, sha256 }');
  const runningExtra = onlyKeys(running, ['target', 'version', 'sha256'], 'report.running');
  if (runningExtra) return fail(runningExtra);
  if (!nullableString(running.target, 256)) return fail('report.running.target must be a string of 1 to 256 characters or null');
  if (!nullableString(running.version, 64)) return fail('report.running.version must be a string of 1 to 64 characters or null');
  if (!(running.sha256 === null || (typeof running.sha256 === 'string' && /^[0-9a-f]{64}$/.test(running.sha256))))
    return fail('report.running.sha256 must be 64 lowercase hex digits or null');
  if (value.slot !== 'a' && value.slot !== 'b') return fail('report.slot must be "a" or "b"');
  if (!Number.isSafeInteger(value.securityVersion) || (value.securityVersion as number) < 0)
    return fail('report.securityVersion must be a non-negative integer');
  if (!Array.isArray(value.errors) || value.errors.length > MAX_REPORT_ERRORS)
    return fail(`report.errors must be an array of at most ${MAX_REPORT_ERRORS} entries`);
  const errors: { code: string; message: string }[] = [];
  for (const [i, entry] of value.errors.entries()) {
    const error = errorEntry(entry, `report.errors[${i}]`);
    if (!error.ok) return error;
    errors.push(error.value);
  }
  return {
    ok: true,
    value: {
      deviceId: value.deviceId,
      counter: value.counter as number,
      ts: value.ts,
      running: { target: running.target, version: running.version, sha256: running.sha256 },
      slot: value.slot,
      securityVersion: value.securityVersion as number,
      errors,
    },
  };
}

export function parseSignedReport(payload: Buffer): Parsed<SignedVersionReport> {
  const parsed = json(payload);
  if (!parsed.ok) return parsed;
  const body = parsed.value;
  if (!isObject(body)) return fail('Send { report, signature }');
  const extra = onlyKeys(body, ['report', 'signature'], 'The signed report');
  if (extra) return fail(extra);
  if (typeof body.signature !== 'string' || body.signature.length > 200 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body.signature))
    return fail('signature must be base64 (DER ECDSA), at most 200 characters');
  const report = parseReport(body.report);
  if (!report.ok) return report;
  return { ok: true, value: { report: report.value, signature: body.signature } };
}

/** The P-256 public key of a device certificate (PEM), or null when it is not one. */
export function reportKeyOf(certificatePem: string): KeyObject | null {
  try {
    const key = new X509Certificate(certificatePem).publicKey;
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? key : null;
  } catch {
    return null;
  }
}

/** Whether `signature` is the certificate key's ECDSA P-256 SHA-256 signature over the canonical JSON of `report`. */
export function reportSignatureValid(report: VersionReport, signature: string, certificate: string | KeyObject): boolean {
  const key = typeof certificate === 'string' ? reportKeyOf(certificate) : certificate;
  if (!key) return false;
  try {
    return verify('sha256', Buffer.from(canonicalize(report), 'utf8'), { key, dsaEncoding: 'der' }, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}
