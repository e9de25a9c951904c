/**
 * The password dictionaries in a worker thread of a serving node. zxcvbn's ranked dictionaries
 * and the breached-password list hold some 25 MB of V8 heap: in the main thread they were a third
 * of an idle node's live heap, marked again by every full garbage collection (a rollout over a
 * fleet makes one every second or so), and built on the event loop at start. Here they live in an
 * isolate of their own, which collects only when a password is judged; the policy itself (length,
 * what counts as too weak, the messages) stays in passwords.ts.
 *
 * The worker is plain CommonJS run with `eval`, so it loads the same way from the sources, the
 * build and the bundles (as telemetry/batch-worker.ts); the estimator's packages are resolved by
 * the main thread, and it runs the judge `judgePasswordHere` runs (JUDGE_SOURCE). A worker that
 * fails or exits is not restarted: what it had not answered, and everything after, is judged in
 * the main thread (a refusal must not turn into an error the user cannot act on).
 */
import { Worker } from 'node:worker_threads';
import { ESTIMATOR_OPTIONS, estimatorModules, JUDGE_SOURCE, judgePasswordHere, type PasswordJudgment } from './password-dictionaries.js';

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const judge = (${JUDGE_SOURCE})(require, workerData.modules, workerData.options);
parentPort.on('message', ({ id, password, words }) => parentPort.postMessage({ id, ...judge(password, words) }));
parentPort.postMessage({ ready: true });
`;

interface Asked {
  password: string;
  words: string[];
  resolve: (judgment: PasswordJudgment) => void;
}

export class PasswordJudgeWorker {
  private readonly worker: Worker;
  /** Questions sent and not answered yet, by id. */
  private readonly asked = new Map<number, Asked>();
  private nextId = 0;
  /** Set once the worker failed or exited: everything is judged in the main thread from then on. */
  private gone = false;
  private readonly started: Promise<void>;

  /**
   * The worker keeps its process alive only while it owes something (its dictionaries, an
   * answer): an idle one does not hold up a process that is done, and a serving node stops it as
   * it shuts down (stopJudgingOffThread).
   */
  constructor() {
    this.worker = new Worker(WORKER, { eval: true, workerData: { modules: estimatorModules(), options: ESTIMATOR_OPTIONS } });
    this.started = new Promise<void>((resolve) => {
      this.worker.on('message', (message: { ready?: true; id?: number } & Partial<PasswordJudgment>) => {
        if (message.ready) {
          if (this.asked.size === 0) this.worker.unref();
          return resolve();
        }
        const asked = this.asked.get(message.id!);
        if (!asked) return;
        this.asked.delete(message.id!);
        if (this.asked.size === 0) this.worker.unref();
        asked.resolve({ breached: message.breached!, score: message.score!, suggestions: message.suggestions! });
      });
      const fail = () => {
        this.gone = true;
        resolve();
        for (const { password, words, resolve: answer } of this.asked.values()) answer(judgePasswordHere(password, words));
        this.asked.clear();
      };
      this.worker.on('error', fail);
      this.worker.on('exit', fail);
    });
  }

  /** Resolves once the worker has built its dictionaries (or has failed: the main thread judges then). */
  ready(): Promise<void> {
    return this.started;
  }

  /** Whether the worker is gone (failed or stopped), so the main thread judges. */
  get inMainThread(): boolean {
    return this.gone;
  }

  judge(password: string, words: string[]): Promise<PasswordJudgment> {
    if (this.gone) return Promise.resolve(judgePasswordHere(password, words));
    return new Promise((resolve) => {
      const id = this.nextId++;
      this.asked.set(id, { password, words, resolve });
      this.worker.ref();
      this.worker.postMessage({ id, password, words });
    });
  }

  async stop(): Promise<void> {
    if (this.gone) return;
    await this.worker.terminate();
  }
}
