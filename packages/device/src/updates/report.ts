/**
 * The signed version report (`d/<id>/updates/report`): what the device runs, signed with its own
 * certificate key (ECDSA P-256, SHA-256, DER, base64) over the canonical JSON of the report, so a
 * relay cannot forge or alter it; the counter is persisted and strictly increasing, so a replayed
 * report is recognisable.
 */
import { createPublicKey, verify } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SignedVersionReport, VersionReport } from '@bulwark/protocol';
import { canonicalize } from '@tufjs/canonical-json';
import { signDer, type DeviceKey } from '../keys.js';
import { writeDurably } from './durable.js';

export function signVersionReport(report: VersionReport, key: DeviceKey): SignedVersionReport {
  return { report, signature: signDer(key, Buffer.from(canonicalize(report))).toString('base64') };
}

/** Checks a report's signature against the device certificate (or public key) that should have made it. */
export function verifyVersionReport(signed: SignedVersionReport, certOrKeyPem: string): boolean {
  return verify('sha256', Buffer.from(canonicalize(signed.report)), createPublicKey(certOrKeyPem), Buffer.from(signed.signature, 'base64'));
}

/** Hands out report counters, persisting each before it is used. */
export class ReportCounter {
  private readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, 'report-counter');
  }

  next(): number {
    const current = existsSync(this.path) ? Number.parseInt(readFileSync(this.path, 'utf8'), 10) : 0;
    const next = current + 1;
    writeDurably(this.path, `${next}\n`);
    return next;
  }
}
