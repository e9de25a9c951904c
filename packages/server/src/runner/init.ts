/**
 * First-run setup of a deployment: the data directory (0700), the master key, the database
 * schema, the first organization and its owner (with a one-time password that must be changed
 * at first sign-in), and the CA hierarchy (root, device and server issuing CAs) with the HTTPS
 * server certificate (pki/ca.ts). With a PKCS#11 token configured (keys.pkcs11), the CA keys are
 * generated on the token, and with `hsmMasterKey` so is the master key (keys/master-key.ts). Safe
 * to run again: whatever exists is kept, and no second password is ever printed.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { cliActor } from '../accounts/roles.js';
import { ValidationError } from '../errors.js';
import { ensureMasterKey, type MasterKeyLocation } from '../keys/master-key.js';
import { openPlatform, type PlatformOptions } from '../platform.js';
import { caKeyLocation, ensureDeploymentPki, pkiPaths } from '../pki/ca.js';
import type { Config } from '../ops/config.js';

export interface InitOptions {
  organizationSlug: string;
  organizationName: string;
  ownerEmail: string;
  ownerName: string;
  /** Insist on CA keys on the token (`bulwark init --hsm`): refused when keys.pkcs11 is not configured. */
  hsm?: boolean;
  /** Generate the master key on the token (`bulwark init --hsm-master-key`): refused when keys.pkcs11 is not configured. */
  hsmMasterKey?: boolean;
}

export interface InitResult {
  dataDir: string;
  masterKeyCreated: boolean;
  /** Where the master key is: DIR/keys/master.key, BULWARK_MASTER_KEY, or the PKCS#11 token. */
  masterKey: MasterKeyLocation;
  organization: { slug: string; created: boolean };
  owner: { email: string; oneTimePassword: string } | null;
  caCertPath: string;
  pkiCreated: boolean;
  /** Where the CA keys were made: sealed in the data directory, or on the token. */
  caKeys: 'data-dir' | 'hsm';
}

export const DEFAULT_INIT: InitOptions = {
  organizationSlug: 'default',
  organizationName: 'Default organization',
  ownerEmail: 'owner@bulwark.local',
  ownerName: 'Owner',
};

export async function initialize(config: Config, options: InitOptions, platformOptions: PlatformOptions = {}): Promise<InitResult> {
  if (options.hsm && !config.keys?.pkcs11) {
    throw new ValidationError(
      '--hsm needs a PKCS#11 token: set keys.pkcs11.tokenLabel (BULWARK_KEYS_PKCS11_TOKEN_LABEL), optionally keys.pkcs11.module, and the PIN in BULWARK_PKCS11_PIN',
      {},
      'config.pkcs11_missing',
    );
  }
  if (options.hsmMasterKey && !config.keys?.pkcs11) {
    throw new ValidationError(
      '--hsm-master-key needs a PKCS#11 token: set keys.pkcs11.tokenLabel (BULWARK_KEYS_PKCS11_TOKEN_LABEL), optionally keys.pkcs11.module, and the PIN in BULWARK_PKCS11_PIN',
      {},
      'config.pkcs11_missing',
    );
  }
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(config.dataDir, 0o700);
  const masterKey = ensureMasterKey(config.dataDir, {
    onToken: options.hsmMasterKey ?? false,
    fromEnv: Boolean(platformOptions.env?.BULWARK_MASTER_KEY || process.env.BULWARK_MASTER_KEY),
    pkcs11: config.keys?.pkcs11,
    env: platformOptions.env ?? process.env,
  });
  const platform = await openPlatform(config, platformOptions);
  try {
    const existing = await platform.accounts.store.listOrganizations();
    let owner: InitResult['owner'] = null;
    let slug = existing[0]?.slug ?? options.organizationSlug;
    let orgName = existing[0]?.name ?? options.organizationName;
    if (existing.length === 0) {
      const created = await platform.db.transaction().execute(async (trx) => {
        const org = await platform.accounts.service.createOrganization(
          { slug: options.organizationSlug, name: options.organizationName },
          { type: 'cli', id: 'init' },
          trx,
        );
        const { user, oneTimePassword } = await platform.accounts.service.createOperator(
          cliActor(org.id, 'init'),
          { email: options.ownerEmail, name: options.ownerName, role: 'owner' },
          trx,
        );
        await platform.audit.record(
          {
            organizationId: null,
            actor: { type: 'cli', id: 'init' },
            action: 'platform.initialized',
            target: { type: 'organization', id: org.id },
          },
          trx,
        );
        return { org, user, oneTimePassword: oneTimePassword! };
      });
      slug = created.org.slug;
      orgName = created.org.name;
      owner = { email: created.user.email, oneTimePassword: created.oneTimePassword };
    }
    const token = platform.hsm && !existsSync(pkiPaths(config.dataDir).serverCert) ? platform.hsm.get() : null;
    const pki = await ensureDeploymentPki({
      dataDir: config.dataDir,
      box: platform.box,
      token,
      organizationName: orgName,
      extraServerNames: config.http.serverNames,
    });
    return {
      dataDir: config.dataDir,
      masterKeyCreated: masterKey.created,
      masterKey: masterKey.location,
      organization: { slug, created: existing.length === 0 },
      owner,
      caCertPath: pki.paths.caCert,
      pkiCreated: pki.created,
      caKeys: caKeyLocation(pki.paths.dir, 'device-ca')?.location === 'pkcs11' ? 'hsm' : 'data-dir',
    };
  } finally {
    await platform.close();
  }
}

/** True when `bulwark init` has run on this data directory (an organization exists). */
export async function isInitialized(config: Config, platformOptions: PlatformOptions = {}): Promise<boolean> {
  try {
    const platform = await openPlatform(config, platformOptions);
    try {
      return (await platform.accounts.store.listOrganizations()).length > 0;
    } finally {
      await platform.close();
    }
  } catch {
    return false;
  }
}
