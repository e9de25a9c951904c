/**
 * `bulwark pki …`: the offline root ceremony (docs/operations.md). `init-root`, `sign-issuing` and
 * `rekey-root` run on the offline machine against its root directory; `request-issuing`, `import-issuing`,
 * `export-root` and `status` run on the server against the data directory, and every change
 * there is audited as the CLI actor.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { BulwarkError, ValidationError } from '../errors.js';
import { DEFAULT_PIN_ENV } from '../keys/pkcs11.js';
import type { CaKeyAccess } from '../pki/ca.js';
import { checkKind, exportRoot, importIssuingCa, pkiStatus, requestIssuingCa, type CaStatus } from '../pki/ceremony.js';
import { initOfflineRoot, openOfflineRoot, rekeyOfflineRoot, signIssuingCsr, type RootKeyOptions } from '../pki/offline-root.js';
import type { Platform } from '../platform.js';
import { CA_REVOCATION_REASONS, type CaRevocationReason } from '../pki/ca-revocations.js';
import { registerManufacturerCaCommands } from './manufacturer-cas.js';
import { action, actorForOrganization, addDataDir, configFor, print, withPlatform, type GlobalOptions } from './context.js';

interface PassphraseFlags {
  passphraseFile?: string;
}

interface HsmFlags extends PassphraseFlags {
  hsm?: boolean;
  tokenLabel?: string;
  pkcs11Module?: string;
  pinEnv: string;
}

/** A passphrase file's content, one trailing newline dropped. */
const readPassphraseFile = (file: string) => readFileSync(file, 'utf8').replace(/\r?\n$/, '');

/** The passphrase from --passphrase-file or BULWARK_ROOT_PASSPHRASE. */
function passphrase(flags: PassphraseFlags): string | undefined {
  if (flags.passphraseFile) return readPassphraseFile(flags.passphraseFile);
  return process.env.BULWARK_ROOT_PASSPHRASE;
}

function rootKeyOptions(flags: HsmFlags): RootKeyOptions {
  if (!flags.hsm) return { passphrase: passphrase(flags) };
  if (!flags.tokenLabel)
    throw new ValidationError(
      '--hsm needs --token-label LABEL (and the PIN in the variable named by --pin-env)',
      {},
      'pki.token_label_missing',
    );
  return { hsm: { tokenLabel: flags.tokenLabel, module: flags.pkcs11Module, pinEnv: flags.pinEnv } };
}

function addPassphrase(command: Command): Command {
  return command.option(
    '--passphrase-file <file>',
    'file holding the root key passphrase (else env BULWARK_ROOT_PASSPHRASE); at least 12 characters',
  );
}

function keyAccess(platform: Platform): CaKeyAccess {
  const hsm = platform.hsm;
  return { box: platform.box, token: hsm ? () => hsm.get() : null };
}

const cliActor = () => ({ type: 'cli' as const, id: process.env.USER ?? 'cli' });

/** Runs a data-directory change and audits it, or audits its refusal and rethrows. */
async function audited<T extends object>(
  platform: Platform,
  action: string,
  target: { type: string; id: string | null },
  fn: () => Promise<T>,
): Promise<T> {
  try {
    const result = await fn();
    await platform.audit.record({
      organizationId: null,
      actor: cliActor(),
      action,
      target,
      details: { ...(result as Record<string, unknown>) },
    });
    return result;
  } catch (error) {
    if (error instanceof BulwarkError) {
      await platform.audit.record({
        organizationId: null,
        actor: cliActor(),
        action,
        target,
        outcome: 'denied',
        details: { code: error.code, reason: error.message },
      });
    }
    throw error;
  }
}

async function organizationName(platform: Platform): Promise<string> {
  return (await platform.accounts.store.listOrganizations())[0]?.name ?? 'Bulwark';
}

function describeCa(name: string, ca: CaStatus): string {
  const key =
    ca.keyLocation === 'hsm'
      ? `HSM (label ${ca.tokenLabel})`
      : ca.keyLocation === 'offline'
        ? 'offline (not on this server)'
        : 'data directory (sealed under the master key)';
  return `${name}: ${ca.subject}\n  expires ${ca.notAfter} (${ca.daysLeft} days)\n  key: ${key}`;
}

export function registerPkiCommands(program: Command): void {
  const pki = program.command('pki').description('CA hierarchy: offline root ceremony, issuing CAs, status, manufacturer CAs');
  registerManufacturerCaCommands(pki);

  addPassphrase(
    pki.command('init-root').description('on an offline machine: create a root CA (ECDSA P-256, pathLen 1, 20 years) in DIR (0700)'),
  )
    .requiredOption('--dir <dir>', 'offline root directory (created 0700; the key file is 0600)')
    .option('--name <dn>', 'root subject', 'CN=Bulwark Offline Root CA')
    .option('--hsm', 'generate the root key on a PKCS#11 token instead of a passphrase-encrypted file')
    .option('--token-label <label>', 'with --hsm: the token label')
    .option('--pkcs11-module <path>', 'with --hsm: the PKCS#11 module (default SoftHSM)')
    .option('--pin-env <name>', 'with --hsm: environment variable holding the user PIN', DEFAULT_PIN_ENV)
    .option('--json', 'machine-readable output')
    .action(
      action(async (flags: HsmFlags & { dir: string; name: string; json?: boolean }) => {
        const root = await initOfflineRoot(flags.dir, flags.name, rootKeyOptions(flags));
        const result = {
          certPath: root.paths.cert,
          keyLocation: root.keyLocation,
          subject: root.cert.subject,
          notAfter: root.cert.notAfter.toISOString(),
        };
        print(flags, result, () =>
          [
            `Root CA created: ${result.subject}, valid until ${result.notAfter}`,
            `Certificate: ${result.certPath} (copy it to the server)`,
            `Key: ${root.keyLocation === 'pkcs11' ? 'on the PKCS#11 token' : `${root.paths.key} (passphrase-encrypted; keep the machine offline)`}`,
          ].join('\n'),
        );
      }),
    );

  addPassphrase(pki.command('sign-issuing').description('on the offline machine: sign an issuing CA certificate (pathLen 0) from its CSR'))
    .requiredOption('--dir <dir>', 'offline root directory')
    .requiredOption('--csr <file>', 'the CSR from `bulwark pki request-issuing`')
    .requiredOption('--out <file>', 'where to write the certificate (PEM)')
    .option('--days <n>', 'validity in days (never past the root)', '3650')
    .option('--json', 'machine-readable output')
    .action(
      action(async (flags: PassphraseFlags & { dir: string; csr: string; out: string; days: string; json?: boolean }) => {
        const root = await openOfflineRoot(flags.dir, { passphrase: passphrase(flags) });
        if (root.warning) process.stderr.write(`warning: ${root.warning}\n`);
        try {
          const cert = await signIssuingCsr(root, flags.dir, readFileSync(flags.csr, 'utf8'), Number(flags.days));
          writeFileSync(flags.out, cert.toString('pem') + '\n', { mode: 0o644 });
          const result = { certPath: flags.out, subject: cert.subject, serial: cert.serialNumber, notAfter: cert.notAfter.toISOString() };
          print(
            flags,
            result,
            () =>
              `Signed ${result.subject} (serial ${result.serial}, valid until ${result.notAfter}): ${flags.out}\nCarry it to the server: bulwark pki import-issuing --kind … --cert ${flags.out}`,
          );
        } finally {
          root.close();
        }
      }),
    );

  addPassphrase(
    pki
      .command('rekey-root')
      .description('on the offline machine: re-encrypt the root key file at the current policy, under a new passphrase or the current one'),
  )
    .requiredOption('--dir <dir>', 'offline root directory')
    .option(
      '--new-passphrase-file <file>',
      'file holding the new passphrase (else env BULWARK_ROOT_NEW_PASSPHRASE, else the current one); at least 12 characters',
    )
    .option('--json', 'machine-readable output')
    .action(
      action(async (flags: PassphraseFlags & { dir: string; newPassphraseFile?: string; json?: boolean }) => {
        const next = flags.newPassphraseFile ? readPassphraseFile(flags.newPassphraseFile) : process.env.BULWARK_ROOT_NEW_PASSPHRASE;
        const result = rekeyOfflineRoot(flags.dir, passphrase(flags), next);
        const view = { key: result.path, before: result.before.description, after: result.after.description };
        print(flags, view, () => `Re-encrypted ${view.key}: ${view.before} -> ${view.after}`);
      }),
    );

  addDataDir(
    pki
      .command('request-issuing')
      .description('on the server: a new issuing CA key (sealed, or on the token) kept as pending, and its CSR for the offline root'),
  )
    .requiredOption('--kind <kind>', 'device or server')
    .option('--replace', 'replace a request that is already pending')
    .option('--json', 'machine-readable output')
    .action(
      action((flags: GlobalOptions & { kind: string; replace?: boolean }) =>
        withPlatform(flags, async (platform) => {
          const kind = checkKind(flags.kind);
          const orgName = await organizationName(platform);
          const result = await audited(platform, 'pki.issuing_ca_requested', { type: 'certificate_authority', id: kind }, async () => {
            const { csrPem: _csr, ...report } = await requestIssuingCa(platform.config.dataDir, keyAccess(platform), kind, {
              organizationName: orgName,
              replace: flags.replace ?? false,
            });
            return report;
          });
          print(
            flags,
            result,
            () =>
              `Pending ${kind} issuing CA key: ${result.keyLocation === 'hsm' ? `on the token (label ${result.tokenLabel})` : 'sealed in the data directory'}\nCSR: ${result.csrPath}\nSign it offline: bulwark pki sign-issuing --dir ROOT_DIR --csr ${kind}-ca.csr --out ${kind}-ca.pem`,
          );
        }),
      ),
    );

  addDataDir(
    pki
      .command('import-issuing')
      .description('on the server: install the issuing CA certificate the offline root signed for the pending key'),
  )
    .requiredOption('--kind <kind>', 'device or server')
    .requiredOption('--cert <file>', 'the issuing CA certificate (PEM)')
    .option('--root <file>', 'a new root CA certificate to trust; it replaces DIR/pki/ca.pem')
    .option('--json', 'machine-readable output')
    .action(
      action((flags: GlobalOptions & { kind: string; cert: string; root?: string }) =>
        withPlatform(flags, async (platform) => {
          const kind = checkKind(flags.kind);
          const certPem = readFileSync(flags.cert, 'utf8');
          const rootPem = flags.root ? readFileSync(flags.root, 'utf8') : undefined;
          const orgName = await organizationName(platform);
          const result = await audited(platform, 'pki.issuing_ca_imported', { type: 'certificate_authority', id: kind }, () =>
            importIssuingCa(platform.config.dataDir, keyAccess(platform), kind, certPem, {
              rootPem,
              organizationName: orgName,
              extraServerNames: platform.config.http.serverNames,
            }),
          );
          print(flags, result, () =>
            [
              `Installed the ${kind} issuing CA ${result.subject} (serial ${result.serial}, until ${result.notAfter})`,
              result.rootReplaced ? 'ca.pem now holds the new root: give it to clients and devices.' : '',
              result.serverCertificateReissued ? 'The HTTPS server certificate was reissued under it.' : '',
              'Restart the servers to use it.',
            ]
              .filter(Boolean)
              .join('\n'),
          );
        }),
      ),
    );

  addPassphrase(
    addDataDir(
      pki
        .command('export-root')
        .description('move the embedded root key out of the data directory (passphrase-encrypted) and delete it there'),
    ),
  )
    .requiredOption('--out <dir>', 'offline root directory to create (0700); carry it to the offline machine')
    .option('--json', 'machine-readable output')
    .action(
      action((flags: GlobalOptions & PassphraseFlags & { out: string }) =>
        withPlatform(flags, async (platform) => {
          const secret = passphrase(flags);
          const result = await audited(platform, 'pki.root_exported', { type: 'certificate_authority', id: 'root' }, () =>
            exportRoot(platform.config.dataDir, keyAccess(platform), flags.out, secret),
          );
          print(
            flags,
            result,
            () =>
              `The root key now lives only in ${result.keyPath} (passphrase-encrypted) and was deleted from the data directory.\nMove ${result.dir} to the offline machine; issuance and CRLs keep working on the issuing CAs.`,
          );
        }),
      ),
    );

  addDataDir(
    pki
      .command('revoke-ca')
      .description(
        "record a CA certificate as revoked: deployment-wide (an issuing CA the root revoked), or with --org an organization's (a bootstrap CA); audit checks then find what it still signs or enrolls",
      ),
  )
    .requiredOption('--certificate <file>', 'the revoked CA certificate (PEM)')
    .requiredOption('--reason <reason>', `one of ${CA_REVOCATION_REASONS.join(', ')}`)
    .option('--org <slug>', "an organization's record instead of the deployment's")
    .option('--json', 'machine-readable output')
    .action(
      action((flags: GlobalOptions & { certificate: string; reason: string; org?: string }) =>
        withPlatform(flags, async (platform) => {
          const actor = flags.org ? await actorForOrganization(platform, flags.org) : null;
          const revoked = await platform.caRevocations.revoke(actor, {
            certificate: readFileSync(flags.certificate, 'utf8'),
            reason: flags.reason as CaRevocationReason,
          });
          print(flags, revoked, () => `Recorded ${revoked.subject} (${revoked.fingerprintSha256}) as revoked: ${revoked.reason}`);
        }),
      ),
    );

  addDataDir(pki.command('status').description('where the root and issuing CA keys live, and when the CAs expire'))
    .option('--json', 'machine-readable output')
    .action(
      action(async (flags: GlobalOptions) => {
        const status = pkiStatus((await configFor(flags)).dataDir);
        print(flags, status, () =>
          [
            describeCa('Root CA', status.root),
            ...status.previousRoots.map((s) => `  (ca.pem also holds the previous root ${s} until both issuing CAs chain to the new one)`),
            ...(['device', 'server'] as const).map((kind) => {
              const ca = status.issuing[kind];
              if (!ca)
                return `${kind} issuing CA: none${status.legacy && kind === 'device' ? ' (the root issues device certificates)' : ''}`;
              return (
                describeCa(`${kind[0]!.toUpperCase()}${kind.slice(1)} issuing CA`, ca) +
                (ca.pendingRequest ? '\n  a new key is pending import (bulwark pki import-issuing)' : '')
              );
            }),
          ].join('\n'),
        );
      }),
    );
}
