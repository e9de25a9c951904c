/**
 * `bulwark firmware …`: the firmware signing ceremony (docs/updates.md). Everything but
 * `online-keys` runs offline with no server: keys in passphrase-encrypted files
 * (BULWARK_KEY_PASSPHRASE; keys/passphrase-keys.ts) and their re-encryption (`rekey`), or on a
 * PKCS#11 token named by a `pkcs11:` URI (updates/tuf/token-keys.ts; PIN in BULWARK_PKCS11_PIN), roots,
 * top-level targets with the product lines' delegations, and the product line's signed metadata
 * for an image. `online-keys` runs on the server against its data directory and prints the
 * public halves the root must name.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import semver from 'semver';
import { ErrorCodes } from '@bulwark/protocol';
import { NotFoundError, ValidationError } from '../errors.js';
import { checkPassphrase, KEY_ENCRYPTION, rekeyFiles, requirePassphrase } from '../keys/passphrase-keys.js';
import {
  addImageTarget,
  buildDirectorRoot,
  buildRoot,
  DEFAULT_EXPIRY_DAYS,
  delegateProduct,
  expiresIn,
  generateKeyFiles,
  hashFile,
  loadPrivateKey,
  loadPublicKey,
  onlineKeysFromJson,
  onlineKeysJson,
  publicKeyJson,
  readAnyMetadata,
  readJson,
  readRoot,
  readTargets,
  signWith,
  softwareSigner,
  writeMetadata,
  type OfflineSigner,
} from '../updates/tuf/offline.js';
import { isTokenKeyUri, parseTokenKeyUri, TokenKeys } from '../updates/tuf/token-keys.js';
import { action, addDataDir, print, withPlatform, type GlobalOptions } from './context.js';

const PASSPHRASE_ENV = 'BULWARK_KEY_PASSPHRASE';
const NEW_PASSPHRASE_ENV = 'BULWARK_NEW_KEY_PASSPHRASE';
const GIVE_PASSPHRASE = `set ${PASSPHRASE_ENV}`;

/**
 * The key passphrase, from the environment only (never an argument: it would show in `ps`). Keys
 * written get the passphrase rule; keys opened only need it to open them (and warn when weak).
 */
const passphrase = () => requirePassphrase(process.env[PASSPHRASE_ENV], GIVE_PASSPHRASE);
const newKeyPassphrase = () => checkPassphrase(process.env[PASSPHRASE_ENV], GIVE_PASSPHRASE);

/** Opens an offline key file, telling the key holder on stderr when its file is below the policy. */
const openKey = (path: string, secret: string) => loadPrivateKey(path, secret, (warning) => process.stderr.write(`warning: ${warning}\n`));

const KEY_HELP =
  'a private key file (passphrase in BULWARK_KEY_PASSPHRASE) or a token key pkcs11:token=<label>;object=<label> (PIN in BULWARK_PKCS11_PIN)';

/**
 * Runs `use` with a function opening offline keys, files or token keys; the passphrase is asked
 * for only when a file is opened, and every token opened is logged out of afterwards.
 */
async function withKeys<T>(use: (open: (ref: string) => OfflineSigner) => Promise<T> | T): Promise<T> {
  const tokens = new TokenKeys();
  let secret: string | undefined;
  try {
    return await use((ref) => (isTokenKeyUri(ref) ? tokens.signer(ref) : softwareSigner(openKey(ref, (secret ??= passphrase())))));
  } finally {
    tokens.close();
  }
}

function positiveInteger(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new ValidationError(`${what} must be a whole number from 1, not "${value}"`);
  return n;
}

function days(value: string): number {
  return positiveInteger(value, '--expires-days');
}

export function registerFirmwareCommands(program: Command): void {
  const firmware = program.command('firmware').description('firmware signing ceremony: keys, roots, delegations, signed images');

  firmware
    .command('keygen')
    .description(
      'offline: a new Ed25519 key: <prefix>.key (PKCS#8 encrypted under BULWARK_KEY_PASSPHRASE, at least 12 characters; mode 0600) and <prefix>.pub',
    )
    .requiredOption('--out <prefix>', 'path prefix of the two files (never overwritten)')
    .option(
      '--pkcs11 <uri>',
      'generate the key on a PKCS#11 token instead (pkcs11:token=<label>;object=<new key label>, PIN in BULWARK_PKCS11_PIN): only <prefix>.pub is written',
    )
    .option('--json', 'machine-readable output')
    .action(
      action(async (flags: { out: string; pkcs11?: string; json?: boolean }) => {
        if (flags.pkcs11) {
          const ref = parseTokenKeyUri(flags.pkcs11);
          const pubPath = `${flags.out}.pub`;
          if (existsSync(pubPath))
            throw new ValidationError(`${pubPath} exists: choose another --out prefix`, undefined, ErrorCodes.keyFileExists);
          const tokens = new TokenKeys();
          try {
            const { key } = tokens.generate(flags.pkcs11);
            writeFileSync(pubPath, JSON.stringify(publicKeyJson(key), null, 2) + '\n', { mode: 0o644, flag: 'wx' });
            const result = { keyid: key.keyID, token: ref.token, object: ref.object, key: flags.pkcs11, pub: pubPath };
            print(
              flags,
              result,
              () =>
                `Key ${result.keyid}\n  private: on token "${ref.token}" as "${ref.object}" (generated there, not extractable)\n  public:  ${pubPath}\n  sign with --key '${flags.pkcs11}'`,
            );
          } finally {
            tokens.close();
          }
          return;
        }
        const written = generateKeyFiles(flags.out, newKeyPassphrase());
        const result = { keyid: written.key.keyID, key: written.keyPath, pub: written.pubPath };
        print(flags, result, () => `Key ${result.keyid}\n  private: ${result.key} (encrypted; keep it offline)\n  public:  ${result.pub}`);
      }),
    );

  firmware
    .command('rekey')
    .description(
      `offline: re-encrypt key files at the current policy (${KEY_ENCRYPTION.kdf}, ${KEY_ENCRYPTION.iterations.toLocaleString('en-US')} iterations, ${KEY_ENCRYPTION.cipher}): the current passphrase in ${PASSPHRASE_ENV}, a new one in ${NEW_PASSPHRASE_ENV} (default: keep the current one)`,
    )
    .requiredOption('--key <key...>', 'private key files (one current passphrase); each is replaced whole, or left as it was')
    .option('--json', 'machine-readable output')
    .action(
      action(async (flags: { key: string[]; json?: boolean }) => {
        const current = passphrase();
        const next = process.env[NEW_PASSPHRASE_ENV] || current;
        const results = rekeyFiles(flags.key, current, next, `set ${NEW_PASSPHRASE_ENV} to a new passphrase`);
        const view = results.map((r) => ({ key: r.path, before: r.before.description, after: r.after.description }));
        print(flags, { keys: view }, () => view.map((r) => `Re-encrypted ${r.key}: ${r.before} -> ${r.after}`).join('\n'));
      }),
    );

  addDataDir(
    firmware
      .command('online-keys')
      .description('on the server: the public snapshot, timestamp and director keys of an organization (created on first use)'),
  )
    .requiredOption('--org <slug-or-id>', 'organization slug or ID')
    .requiredOption('--out <file>', 'where to write the keys (input of `firmware root create --online`)')
    .option('--json', 'machine-readable output')
    .action(
      action(async (flags: GlobalOptions & { org: string; out: string }) => {
        const keys = await withPlatform(flags, async (platform) => {
          const org = (await platform.accounts.store.listOrganizations()).find((o) => o.slug === flags.org || o.id === flags.org);
          if (!org) throw new NotFoundError(`Organization "${flags.org}"`);
          return onlineKeysJson(await platform.updates.repository.onlineKeys(org.id));
        });
        writeFileSync(flags.out, JSON.stringify(keys, null, 2) + '\n', { mode: 0o644 });
        print(flags, keys, () => `Online keys of ${String(keys.organizationId)} written to ${flags.out}`);
      }),
    );

  const root = firmware.command('root').description('offline: image repository and director roots');
  root
    .command('create')
    .description('write unsigned root.json and director-root.json into DIR; each root key holder then runs `firmware root sign`')
    .requiredOption('--online <file>', 'the output of `firmware online-keys`')
    .requiredOption('--root-key <pub...>', 'root key holders’ .pub files')
    .requiredOption('--threshold <n>', 'root signatures needed')
    .requiredOption('--targets-key <pub...>', 'targets keys’ .pub files')
    .option('--targets-threshold <n>', 'targets signatures needed', '1')
    .requiredOption('--out <dir>', 'output directory')
    .option('--expires-days <n>', 'validity in days', String(DEFAULT_EXPIRY_DAYS))
    .option('--version <n>', 'root version (default 1, or one more than --previous)')
    .option('--previous <root.json>', 'the current root, when rotating')
    .option('--director-version <n>', 'director root version', '1')
    .option('--json', 'machine-readable output')
    .action(
      action(
        async (flags: {
          online: string;
          rootKey: string[];
          threshold: string;
          targetsKey: string[];
          targetsThreshold: string;
          out: string;
          expiresDays: string;
          version?: string;
          previous?: string;
          directorVersion: string;
          json?: boolean;
        }) => {
          const online = onlineKeysFromJson(readJson(flags.online), flags.online);
          const previous = flags.previous ? readRoot(flags.previous).signed.version : null;
          const version = flags.version ? positiveInteger(flags.version, '--version') : (previous ?? 0) + 1;
          if (previous !== null && version !== previous + 1)
            throw new ValidationError(`--version must be ${previous + 1}: a new root is exactly one version after the previous one`);
          const rootKeys = flags.rootKey.map(loadPublicKey);
          const expires = expiresIn(days(flags.expiresDays));
          const threshold = positiveInteger(flags.threshold, '--threshold');
          const image = buildRoot({
            rootKeys,
            threshold,
            targetsKeys: flags.targetsKey.map(loadPublicKey),
            targetsThreshold: positiveInteger(flags.targetsThreshold, '--targets-threshold'),
            online,
            expires,
            version,
          });
          const director = buildDirectorRoot({
            rootKeys,
            threshold,
            online,
            expires,
            version: positiveInteger(flags.directorVersion, '--director-version'),
          });
          mkdirSync(flags.out, { recursive: true });
          const files = { root: join(flags.out, 'root.json'), directorRoot: join(flags.out, 'director-root.json') };
          writeMetadata(files.root, image);
          writeMetadata(files.directorRoot, director);
          print(
            flags,
            { ...files, version, expires },
            () =>
              `Unsigned root version ${version} (expires ${expires}): ${files.root}, ${files.directorRoot}\nEach root key holder signs: bulwark firmware root sign --key <key> ${files.root} ${files.directorRoot}`,
          );
        },
      ),
    );

  root
    .command('sign')
    .description('offline: append this key’s signature to root (or targets) metadata files, in place')
    .requiredOption('--key <key>', KEY_HELP)
    .argument('<files...>', 'metadata files to sign')
    .option('--json', 'machine-readable output')
    .action(
      action(async (files: string[], flags: { key: string; json?: boolean }) => {
        const keyid = await withKeys((open) => {
          const signer = open(flags.key);
          for (const file of files) writeMetadata(file, signWith(readAnyMetadata(file), signer));
          return signer.key.keyID;
        });
        print(flags, { keyid, files }, () => `Signed ${files.join(', ')} with key ${keyid}`);
      }),
    );

  firmware
    .command('delegate')
    .description('offline: the next top-level targets, delegating a product line to its release keys, signed by the targets key')
    .requiredOption('--targets-key <key>', `the targets key: ${KEY_HELP}`)
    .requiredOption('--product <id>', 'product ID')
    .requiredOption('--key <pub...>', 'release keys’ .pub files')
    .option('--threshold <n>', 'release signatures needed', '1')
    .requiredOption('--metadata <file>', 'the current top-level targets.json, or "none" for the first')
    .requiredOption('--out <file>', 'where to write the signed top-level targets')
    .option('--expires-days <n>', 'validity in days', String(DEFAULT_EXPIRY_DAYS))
    .option('--json', 'machine-readable output')
    .action(
      action(
        async (flags: {
          targetsKey: string;
          product: string;
          key: string[];
          threshold: string;
          metadata: string;
          out: string;
          expiresDays: string;
          json?: boolean;
        }) => {
          const current = flags.metadata === 'none' ? null : readTargets(flags.metadata);
          const next = delegateProduct(current, {
            productId: flags.product,
            keys: flags.key.map(loadPublicKey),
            threshold: positiveInteger(flags.threshold, '--threshold'),
            expires: expiresIn(days(flags.expiresDays)),
          });
          await withKeys((open) => writeMetadata(flags.out, signWith(next, open(flags.targetsKey))));
          print(
            flags,
            { out: flags.out, version: next.signed.version },
            () =>
              `Top-level targets version ${next.signed.version} delegating product-${flags.product}: ${flags.out}\nUpload: POST /api/v1/updates/repository/targets`,
          );
        },
      ),
    );

  firmware
    .command('sign')
    .description("offline: add an image to its product line's metadata (next version) and sign it with release keys")
    .requiredOption('--image <file>', 'the firmware image')
    .requiredOption('--product <id>', 'product ID')
    .requiredOption('--version <semver>', 'the image version')
    .requiredOption('--security-version <n>', 'anti-rollback counter (whole number from 0)')
    .requiredOption('--hardware <id...>', 'hardware IDs the image is for')
    .requiredOption('--key <key...>', `release keys, each ${KEY_HELP}; files share one passphrase`)
    .option('--metadata <file>', "the product line's current metadata (omit for its first image)")
    .requiredOption('--out <file>', 'where to write the signed metadata')
    .option('--expires-days <n>', 'validity in days', String(DEFAULT_EXPIRY_DAYS))
    .option('--json', 'machine-readable output')
    .action(
      action(
        async (flags: {
          image: string;
          product: string;
          version: string;
          securityVersion: string;
          hardware: string[];
          key: string[];
          metadata?: string;
          out: string;
          expiresDays: string;
          json?: boolean;
        }) => {
          if (semver.valid(flags.version) !== flags.version)
            throw new ValidationError(`--version "${flags.version}" must be a semantic version such as 1.4.0`);
          const securityVersion = Number(flags.securityVersion);
          if (!/^\d+$/.test(flags.securityVersion) || !Number.isSafeInteger(securityVersion))
            throw new ValidationError('--security-version must be a whole number from 0');
          const { length, sha256 } = await hashFile(flags.image);
          const next = addImageTarget(flags.metadata ? readTargets(flags.metadata) : null, {
            product: flags.product,
            version: flags.version,
            securityVersion,
            hardwareIds: flags.hardware,
            length,
            sha256,
            expires: expiresIn(days(flags.expiresDays)),
          });
          await withKeys((open) => {
            // Every key opens before anything is written: a wrong PIN or passphrase leaves no half-signed file.
            const signers = flags.key.map(open);
            for (const signer of signers) signWith(next, signer);
            writeMetadata(flags.out, next);
          });
          const result = {
            out: flags.out,
            version: next.signed.version,
            target: `${flags.product}/firmware-${flags.version}.bin`,
            length,
            sha256,
          };
          print(
            flags,
            result,
            () =>
              `Signed ${result.target} (${length} bytes, sha256 ${sha256}) in metadata version ${result.version}: ${flags.out}\nUpload the image (PUT /api/v1/updates/blobs/${sha256}), then POST /api/v1/updates/releases`,
          );
        },
      ),
    );
}
