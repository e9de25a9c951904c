/**
 * Secrets in the configuration file (the SMTP password today) are stored sealed under the master
 * key, as `sealed:<envelope>`, written by `bulwark admin smtp-password`. A plain-text secret in
 * the file is refused at load; the same setting from the environment (BULWARK_SMTP_PASSWORD) is
 * accepted, since it is not at rest.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyCustody } from './custody.js';
import { replaceFileDurably } from './durable-file.js';

export const SEALED_PREFIX = 'sealed:';

/** Configuration paths whose values are secrets. */
export const SECRET_CONFIG_PATHS = ['smtp.password'] as const;
export type SecretConfigPath = (typeof SECRET_CONFIG_PATHS)[number];

const context = (path: string) => `config:${path}`;

export function isSealedConfigValue(value: string): boolean {
  return value.startsWith(SEALED_PREFIX);
}

export function sealConfigSecret(box: KeyCustody, path: SecretConfigPath, plaintext: string): string {
  return SEALED_PREFIX + box.seal(plaintext, context(path));
}

/** The secret's plain text: opened when sealed, as given when it came from the environment. */
export function openConfigSecret(box: KeyCustody, path: SecretConfigPath, value: string): string {
  return isSealedConfigValue(value) ? box.openText(value.slice(SEALED_PREFIX.length), context(path)) : value;
}

/** The sealed value re-wrapped under the current master key, or null when it already is (rotate-master). */
export function rewrapConfigSecret(box: KeyCustody, path: SecretConfigPath, value: string): string | null {
  if (!isSealedConfigValue(value)) return null;
  const rewrapped = box.rewrap(value.slice(SEALED_PREFIX.length), context(path));
  return rewrapped === null ? null : SEALED_PREFIX + rewrapped;
}

type JsonObject = Record<string, unknown>;

function configFile(dataDir: string): string {
  return join(dataDir, 'config.json');
}

function readConfigFile(dataDir: string): JsonObject {
  const file = configFile(dataDir);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as JsonObject) : {};
}

/** Flushed temporary file and rename: a node reading the config (or a crash) sees the old file or the new one. */
function writeConfigFile(dataDir: string, config: JsonObject): void {
  replaceFileDurably(configFile(dataDir), JSON.stringify(config, null, 2) + '\n');
}

function section(config: JsonObject, path: string): { parent: JsonObject; key: string } {
  const [head, key] = path.split('.') as [string, string];
  const parent = (config[head] ??= {}) as JsonObject;
  return { parent, key };
}

/** Sets one `section.key` of DIR/config.json (keeping everything else in the file). */
export function storeConfigValue(dataDir: string, path: string, value: string): void {
  const config = readConfigFile(dataDir);
  const { parent, key } = section(config, path);
  parent[key] = value;
  writeConfigFile(dataDir, config);
}

/** Seals a secret into DIR/config.json (keeping everything else in the file). */
export function storeConfigSecret(dataDir: string, box: KeyCustody, path: SecretConfigPath, plaintext: string): void {
  storeConfigValue(dataDir, path, sealConfigSecret(box, path, plaintext));
}

/** Re-wraps the sealed secrets of DIR/config.json under the current master key; returns how many changed. */
export function rewrapConfigFile(dataDir: string, box: KeyCustody): number {
  if (!existsSync(configFile(dataDir))) return 0;
  const config = readConfigFile(dataDir);
  let changed = 0;
  for (const path of SECRET_CONFIG_PATHS) {
    const { parent, key } = section(config, path);
    const value = parent[key];
    if (typeof value !== 'string') continue;
    const next = rewrapConfigSecret(box, path, value);
    if (next) {
      parent[key] = next;
      changed++;
    }
  }
  if (changed) writeConfigFile(dataDir, config);
  return changed;
}
