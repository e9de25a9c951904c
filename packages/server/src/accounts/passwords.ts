/**
 * Password policy (NIST SP 800-63B) and hashing (argon2id with OWASP parameters).
 * Length is the rule: 12+ for operators, 8+ for consumers, up to 256; no composition rules;
 * common and easily guessed passwords (a shipped list of 49k breached passwords and a zxcvbn
 * estimate that also knows the user's own name and email) are refused.
 */
import { createRequire } from 'node:module';
import { hash, verify } from '@node-rs/argon2';
import type { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { ValidationError } from '../errors.js';

interface Dictionaries {
  estimator: ZxcvbnFactory;
  common: Set<string>;
}

let dictionaries: Dictionaries | undefined;
/**
 * The zxcvbn estimator and the breached-password list, built on first use: unpacking and ranking
 * the dictionaries costs over a second of CPU, which every CLI command opening the platform (and
 * every test process) would otherwise pay without checking a password. `loadPasswordDictionaries()`
 * builds them ahead (the server runner does at start, so the first sign-up does not wait).
 * Loaded through require (the packages ship CommonJS) so the policy check stays synchronous.
 */
export function loadPasswordDictionaries(): Dictionaries {
  if (dictionaries) return dictionaries;
  const require = createRequire(import.meta.url);
  const { ZxcvbnFactory } = require('@zxcvbn-ts/core') as typeof import('@zxcvbn-ts/core');
  const common = require('@zxcvbn-ts/language-common') as typeof import('@zxcvbn-ts/language-common');
  const english = require('@zxcvbn-ts/language-en') as typeof import('@zxcvbn-ts/language-en');
  const estimator = new ZxcvbnFactory({
    dictionary: { ...common.dictionary, ...english.dictionary },
    graphs: common.adjacencyGraphs,
    translations: english.translations,
    // The l33t matcher tries substitution combinations: at its default cap (100) a long random
    // password costs seconds of blocked event loop, which anyone who may set a password could repeat.
    l33tMaxSubstitutions: 10,
  });
  const list = new Set((common.dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));
  dictionaries = { estimator, common: list };
  return dictionaries;
}

/** argon2id (algorithm 2 in @node-rs/argon2), OWASP's m=19 MiB, t=2, p=1. */
export const ARGON2_PARAMS = { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;
export const MAX_PASSWORD_LENGTH = 256;

export const MIN_LENGTH = { operator: 12, consumer: 8 } as const;

export class PasswordRejectedError extends ValidationError {
  /** `problem`: what is wrong, as the user can act on it (also used for key passphrases, keys/passphrase-keys.ts). */
  constructor(
    readonly problem: string,
    details: Record<string, unknown>,
  ) {
    super(`Password rejected: ${problem}`, details, 'auth.password_rejected');
  }
}

/** Throws PasswordRejectedError with a reason the user can act on. */
export function checkPasswordPolicy(password: string, kind: 'operator' | 'consumer', context: string[] = []): void {
  const length = [...password].length;
  const min = MIN_LENGTH[kind];
  if (length < min)
    throw new PasswordRejectedError(`use at least ${min} characters (a passphrase of several words works well)`, {
      reason: 'too_short',
      minLength: min,
    });
  if (length > MAX_PASSWORD_LENGTH)
    throw new PasswordRejectedError(`use at most ${MAX_PASSWORD_LENGTH} characters`, {
      reason: 'too_long',
      maxLength: MAX_PASSWORD_LENGTH,
    });
  const { estimator, common } = loadPasswordDictionaries();
  if (common.has(password.toLowerCase()))
    throw new PasswordRejectedError('it appears in lists of breached passwords', { reason: 'breached' });
  const words = context.flatMap((c) => c.toLowerCase().split(/[^a-z0-9]+/)).filter((w) => w.length >= 3);
  const estimate = estimator.check(password.slice(0, 100), words);
  if (estimate.score < 3) {
    throw new PasswordRejectedError('it is too easy to guess (common words, names, sequences or repeats)', {
      reason: 'guessable',
      suggestions: estimate.feedback.suggestions,
    });
  }
}

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2_PARAMS);
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}

/** True when the stored hash was made with other parameters than today's, so it is redone at next login. */
export function needsRehash(stored: string): boolean {
  const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(stored);
  if (!match) return true;
  return (
    Number(match[1]) !== ARGON2_PARAMS.memoryCost ||
    Number(match[2]) !== ARGON2_PARAMS.timeCost ||
    Number(match[3]) !== ARGON2_PARAMS.parallelism
  );
}

let dummy: Promise<string> | undefined;
/**
 * Verifies against a throwaway hash so that a login for an unknown account costs the same
 * argon2id work as one for a real account: timing does not reveal which emails exist.
 */
export async function burnVerification(password: string): Promise<void> {
  dummy ??= hashPassword('bulwark-timing-equalizer-not-a-password');
  await verifyPassword(await dummy, password);
}
