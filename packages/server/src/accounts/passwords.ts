/**
 * Password policy (NIST SP 800-63B) and hashing (argon2id with OWASP parameters).
 * Length is the rule: 12+ for operators, 8+ for consumers, up to 256; no composition rules;
 * common and easily guessed passwords (a shipped list of 49k breached passwords and a zxcvbn
 * estimate that also knows the user's own name and email) are refused.
 */
import { hash, verify } from '@node-rs/argon2';
import { ValidationError } from '../errors.js';
import { judgePasswordHere, type PasswordJudgment } from './password-dictionaries.js';
import { PasswordJudgeWorker } from './password-judge-worker.js';

let offThread: PasswordJudgeWorker | null = null;
/**
 * From now on `checkPasswordPolicy` judges in a worker thread, started now (the server runner
 * does at start, so the first sign-up does not wait for the dictionaries). Resolves once the
 * worker has built them.
 */
export async function judgePasswordsOffThread(): Promise<void> {
  offThread ??= new PasswordJudgeWorker();
  await offThread.ready();
}

/** Stops the worker of `judgePasswordsOffThread`, if any (judging returns to this thread). */
export async function stopJudgingOffThread(): Promise<void> {
  const worker = offThread;
  offThread = null;
  await worker?.stop();
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

/** Throws PasswordRejectedError when the password is too short or too long. */
function checkLength(password: string, kind: 'operator' | 'consumer'): void {
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
}

/** The words of the user's own details (name, email) a password must not lean on. */
function contextWords(context: string[]): string[] {
  return context.flatMap((c) => c.toLowerCase().split(/[^a-z0-9]+/)).filter((w) => w.length >= 3);
}

/** Throws PasswordRejectedError for a breached or guessable password. */
function refuseWeak(judgment: PasswordJudgment): void {
  if (judgment.breached) throw new PasswordRejectedError('it appears in lists of breached passwords', { reason: 'breached' });
  if (judgment.score < 3) {
    throw new PasswordRejectedError('it is too easy to guess (common words, names, sequences or repeats)', {
      reason: 'guessable',
      suggestions: judgment.suggestions,
    });
  }
}

/**
 * Rejects with PasswordRejectedError and a reason the user can act on. Judged in the serving
 * node's worker thread when it runs one (`judgePasswordsOffThread`), else in this thread.
 */
export async function checkPasswordPolicy(password: string, kind: 'operator' | 'consumer', context: string[] = []): Promise<void> {
  checkLength(password, kind);
  const words = contextWords(context);
  refuseWeak(offThread ? await offThread.judge(password, words) : judgePasswordHere(password, words));
}

/** The same policy, judged in this thread and at once: for the CLI's key passphrases (keys/passphrase-keys.ts). */
export function checkPasswordPolicyHere(password: string, kind: 'operator' | 'consumer', context: string[] = []): void {
  checkLength(password, kind);
  refuseWeak(judgePasswordHere(password, contextWords(context)));
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
