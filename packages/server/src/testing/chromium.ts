/**
 * Debian's Chromium driven by playwright-core, set up once for every browser test: the binary
 * (never a downloaded browser), the flags this closed machine needs (its own background
 * connections fail here without them), a fresh profile directory, and the skip rule (no
 * binary: skip with a message, except under CI=true, where .ci/run must have installed it).
 * For WebAuthn: the flag that trusts the test platform's server key (Chromium refuses passkeys
 * on a page with a certificate error, even one ignored) and a virtual authenticator on a page.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** `skip` option for node:test: false when Chromium is there; throws under CI=true when it is not. */
export function chromiumSkip(what: string): string | false {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: .ci/run must install Debian's chromium package`);
  return `${CHROMIUM} is missing (apt-get install chromium); ${what} skipped`;
}

export interface Chromium {
  context: BrowserContext;
  /** Closes the browser, then removes its profile. */
  close(): Promise<void>;
}

/** A headless Chromium with its own throw-away profile. */
export async function launchChromium(options: { args?: string[]; context?: BrowserContextOptions } = {}): Promise<Chromium> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'bulwark-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...FLAGS, ...(options.args ?? [])],
    ...options.context,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    },
  };
}

/** A headless Chromium for several contexts at once (each its own cookie jar: two people in one test); close it when done. */
export function launchBrowser(args: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...FLAGS, ...args] });
}

/**
 * The flag that makes Chromium trust the platform's server certificate by its public key (SHA-256
 * of the SPKI, base64), so a page at https://localhost:PORT is a secure context without errors.
 */
export async function trustServerKey(port: number, ca: string): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca });
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  const spki = socket.getPeerX509Certificate()!.publicKey.export({ type: 'spki', format: 'der' });
  socket.destroy();
  return `--ignore-certificate-errors-spki-list=${createHash('sha256').update(spki).digest('base64')}`;
}

/**
 * A virtual platform authenticator (CTAP2, resident keys, user verification that always passes,
 * presence given at once) on `page`, through the DevTools WebAuthn domain; returns its ID.
 */
export async function addVirtualAuthenticator(context: BrowserContext, page: Page): Promise<string> {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return authenticatorId;
}
