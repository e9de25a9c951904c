/**
 * What the password dictionaries say of a password: in the breached-password list shipped with
 * zxcvbn, and zxcvbn's estimate (which also knows the user's own name and email). Built here for
 * this thread, or in a serving node's worker thread (password-judge-worker.ts) from the same
 * modules and options; passwords.ts decides what is too weak.
 */
import { createRequire } from 'node:module';
import { runInThisContext } from 'node:vm';

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

/** Judges one password: `words` are the user's own name and email, split. */
type Judge = (password: string, words: string[]) => PasswordJudgment;

/**
 * The judge, built from the estimator's packages: CommonJS source, run in this thread
 * (`judgePasswordHere`) and as the body of a serving node's worker (password-judge-worker.ts), so
 * the two build and judge alike. Loaded through require (the packages ship CommonJS) so a check
 * in this thread stays synchronous.
 */
export const JUDGE_SOURCE = `(require, modules, options) => {
  const { ZxcvbnFactory } = require(modules.core);
  const common = require(modules.common);
  const english = require(modules.english);
  const estimator = new ZxcvbnFactory({
    dictionary: { ...common.dictionary, ...english.dictionary },
    graphs: common.adjacencyGraphs,
    translations: english.translations,
    ...options,
  });
  const breached = new Set(common.dictionary['passwords-common'].map((p) => p.toLowerCase()));
  return (password, words) => {
    if (breached.has(password.toLowerCase())) return { breached: true, score: 0, suggestions: [] };
    const estimate = estimator.check(password.slice(0, 100), words);
    return { breached: false, score: estimate.score, suggestions: estimate.feedback.suggestions };
  };
}`;

let here: Judge | undefined;
/**
 * Judges a password in this thread. The estimator and the breached-password list are built on
 * first use: unpacking and ranking the dictionaries costs over a second of CPU, which every CLI
 * command opening the platform (and every test process) would otherwise pay without checking a
 * password, and they hold some 25 MB of heap for as long as the process lives. A serving node
 * judges passwords in a worker thread instead (`judgePasswordsOffThread`): there the dictionaries
 * are neither built on the event loop nor marked by every full garbage collection of the main heap.
 */
export function judgePasswordHere(password: string, words: string[]): PasswordJudgment {
  if (!here) {
    const build = runInThisContext(JUDGE_SOURCE) as (require: NodeJS.Require, modules: object, options: object) => Judge;
    here = build(createRequire(import.meta.url), estimatorModules(), ESTIMATOR_OPTIONS);
  }
  return here(password, words);
}
