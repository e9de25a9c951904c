/**
 * What the password dictionaries say of a password: in the breached-password list shipped with
 * zxcvbn, and zxcvbn's estimate (which also knows the user's own name and email). Built here for
 * this thread, or in a serving node's worker thread (password-judge-worker.ts) from the same
 * modules and options; passwords.ts decides what is too weak.
 */
import { createRequire } from 'node:module';
import type { ZxcvbnFactory } from '@zxcvbn-ts/core';

/** What the dictionaries say of a password: breached (in the shipped list), zxcvbn's score (0-4) and its suggestions. */
export interface PasswordJudgment {
  breached: boolean;
  score: number;
  suggestions: string[];
}

/**
 * zxcvbn's options beside its dictionaries, for this thread's estimator and the worker's. The l33t
 * matcher tries substitution combinations: at its default cap (100) a long random password costs
 * seconds of CPU, which anyone who may set a password could repeat.
 */
export const ESTIMATOR_OPTIONS = { l33tMaxSubstitutions: 10 } as const;

/** The estimator's packages, resolved here (the worker loads them by path, from the sources, the build or the bundles alike). */
export function estimatorModules(): { core: string; common: string; english: string } {
  const require = createRequire(import.meta.url);
  return {
    core: require.resolve('@zxcvbn-ts/core'),
    common: require.resolve('@zxcvbn-ts/language-common'),
    english: require.resolve('@zxcvbn-ts/language-en'),
  };
}

interface Dictionaries {
  estimator: ZxcvbnFactory;
  common: Set<string>;
}

let dictionaries: Dictionaries | undefined;
/**
 * The zxcvbn estimator and the breached-password list in this thread, built on first use:
 * unpacking and ranking the dictionaries costs over a second of CPU, which every CLI command
 * opening the platform (and every test process) would otherwise pay without checking a password,
 * and they hold some 25 MB of heap for as long as the process lives. A serving node judges
 * passwords in a worker thread instead (`judgePasswordsOffThread`): there the dictionaries are
 * neither built on the event loop nor marked by every full garbage collection of the main heap.
 * Loaded through require (the packages ship CommonJS) so the check stays synchronous.
 */
function loadPasswordDictionaries(): Dictionaries {
  if (dictionaries) return dictionaries;
  const modules = estimatorModules();
  const require = createRequire(import.meta.url);
  const { ZxcvbnFactory } = require(modules.core) as typeof import('@zxcvbn-ts/core');
  const common = require(modules.common) as typeof import('@zxcvbn-ts/language-common');
  const english = require(modules.english) as typeof import('@zxcvbn-ts/language-en');
  const estimator = new ZxcvbnFactory({
    dictionary: { ...common.dictionary, ...english.dictionary },
    graphs: common.adjacencyGraphs,
    translations: english.translations,
    ...ESTIMATOR_OPTIONS,
  });
  const list = new Set((common.dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));
  dictionaries = { estimator, common: list };
  return dictionaries;
}

/** Judges a password in this thread (`words`: the user's own name and email, split). */
export function judgePasswordHere(password: string, words: string[]): PasswordJudgment {
  const { estimator, common } = loadPasswordDictionaries();
  if (common.has(password.toLowerCase())) return { breached: true, score: 0, suggestions: [] };
  const estimate = estimator.check(password.slice(0, 100), words);
  return { breached: false, score: estimate.score, suggestions: estimate.feedback.suggestions };
}
