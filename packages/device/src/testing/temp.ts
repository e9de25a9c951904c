/**
 * Temporary directories for the device SDK's tests (no platform needed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix = 'device'): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `bulwark-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
