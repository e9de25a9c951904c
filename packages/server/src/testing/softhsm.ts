/**
 * A throwaway SoftHSM token for a test file: its own token directory and config in a temp dir,
 * SOFTHSM2_CONF pointed at it (read by the module at C_Initialize), initialised with softhsm2-util.
 *
 * Without softhsm2 installed, the HSM tests are skipped with one loud line; with CI=true they fail.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SOFTHSM_MODULE } from '../keys/pkcs11.js';

function probeSoftHsm(): string | null {
  const util = spawnSync('softhsm2-util', ['--version'], { encoding: 'utf8' });
  if (util.error || util.status !== 0) return 'softhsm2-util is not installed (Debian package softhsm2)';
  if (!existsSync(SOFTHSM_MODULE)) return `${SOFTHSM_MODULE} is missing (Debian package softhsm2)`;
  return null;
}

const problem = probeSoftHsm();
if (problem) {
  if (process.env.CI === 'true') throw new Error(`${problem}, and CI=true makes the HSM tests mandatory`);
  console.error(`\n!!! ${problem}: PKCS#11 (SoftHSM) tests are SKIPPED !!!\n`);
}

/** Reason to skip the HSM tests here, or false. */
export const softHsmSkip: string | false = problem ?? false;

export interface TestToken {
  label: string;
  pin: string;
  dir: string;
  remove(): void;
}

export function createTestToken(label = 'bulwark-test'): TestToken {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-softhsm-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  const pin = TEST_PIN;
  addTestToken(label);
  return { label, pin, dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const TEST_PIN = '1234-test';

/** Another token beside those of the current SOFTHSM2_CONF (after createTestToken): keys spread over several tokens. */
export function addTestToken(label: string, pin = TEST_PIN): void {
  const init = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', '5678-test-so', '--pin', pin], {
    encoding: 'utf8',
    env: process.env,
  });
  if (init.status !== 0) throw new Error(`softhsm2-util --init-token failed: ${init.stderr || init.stdout}`);
}
