/**
 * Several processes serving one node (`node.workers`, `bulwark serve --workers N|auto`): the primary
 * forks the workers with node:cluster and serves nothing itself. Each worker runs the whole platform
 * (runner/server.ts); the HTTPS and MQTT listening sockets are the primary's, and it hands each new
 * connection to the next worker in turn. The workers coordinate as several nodes do: PostgreSQL
 * (job leases, presence, quotas, the audit lock) and Redis (MQTT routing, sessions, retained
 * messages), which config validation requires (ops/config.ts).
 *
 * The primary restarts a worker that exits (after a backoff that doubles with each failure in a
 * row, logged), gives up and exits 1 when a worker keeps failing before it listens, and on SIGTERM
 * or SIGINT stops every worker gracefully (each drains as a single node does) and exits 0.
 *
 * A scrape of /metrics reaches one worker; that worker asks the primary, which gathers every
 * worker's metrics (prom-client's AggregatorRegistry, over the same IPC channel) and answers with
 * the node's sum, so a counter does not jump between workers' values from one scrape to the next.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

/** What a worker tells the primary once its HTTPS (and MQTT) listeners accept connections. */
export interface ListeningMessage {
  bulwark: 'listening';
  url: string;
  mqtt: { host: string; port: number } | null;
}

export function isListeningMessage(message: unknown): message is ListeningMessage {
  return typeof message === 'object' && message !== null && (message as { bulwark?: unknown }).bulwark === 'listening';
}

/** The environment variable carrying a worker's number (1…N, kept across its restarts). */
export const WORKER_SLOT_ENV = 'BULWARK_WORKER_SLOT';

/** This process's worker number, or null in a process that is not a worker. */
export function workerSlot(env: NodeJS.ProcessEnv = process.env): number | null {
  if (!cluster.isWorker) return null;
  const slot = Number(env[WORKER_SLOT_ENV]);
  return Number.isInteger(slot) && slot > 0 ? slot : null;
}

/** A worker asking the primary for the node's metrics, and the answer. */
interface MetricsRequest {
  bulwark: 'metrics?';
  id: number;
}
interface MetricsAnswer {
  bulwark: 'metrics';
  id: number;
  text?: string;
  error?: string;
}

function isMetricsRequest(message: unknown): message is MetricsRequest {
  return typeof message === 'object' && message !== null && (message as { bulwark?: unknown }).bulwark === 'metrics?';
}

/** How long a worker waits for the node's metrics (prom-client's own gathering gives up after 5 s). */
const NODE_METRICS_TIMEOUT_MS = 6000;

/**
 * In a worker: answers the primary's gathering with `registry`, and returns what a scrape of the
 * node calls (the node's metrics, from the primary).
 */
export function nodeMetricsThroughPrimary(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry(); // its constructor makes this worker answer the primary's requests
  const pending = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  let next = 0;
  process.on('message', (message: unknown) => {
    if (typeof message !== 'object' || message === null || (message as { bulwark?: unknown }).bulwark !== 'metrics') return;
    const answer = message as MetricsAnswer;
    const waiting = pending.get(answer.id);
    if (!waiting) return;
    pending.delete(answer.id);
    clearTimeout(waiting.timer);
    if (answer.text !== undefined) waiting.resolve(answer.text);
    else waiting.reject(new Error(`the node's metrics could not be gathered: ${answer.error ?? 'no answer'}`));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      if (!process.connected) return reject(new Error("the node's metrics could not be gathered: no primary"));
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`the node's metrics could not be gathered within ${NODE_METRICS_TIMEOUT_MS} ms`));
      }, NODE_METRICS_TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      process.send!({ bulwark: 'metrics?', id } satisfies MetricsRequest);
    });
}

export interface SupervisorLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface SupervisorOptions {
  count: number;
  log: SupervisorLog;
  /** Called once, when every worker has listened for the first time. */
  onListening(message: ListeningMessage): void;
  /** Delay before a restart: `baseMs`, doubled per failure in a row, at most `capMs`. */
  restart?: { baseMs: number; capMs: number };
  /** Failures in a row before listening after which the node stops (a bad port, an unreachable database). */
  maxStartFailures?: number;
  /** A worker that served this long before exiting starts its backoff over. */
  stableMs?: number;
  /** A graceful stop that takes longer ends the workers left with SIGKILL (and the primary exits 1). */
  stopTimeoutMs: number;
  /** The signals that stop the node (the CLI's SIGTERM and SIGINT). */
  signals?: NodeJS.Signals[];
}

interface Slot {
  index: number;
  worker: Worker | null;
  listenedAt: number | null;
  /** Exits in a row (reset by a worker that served `stableMs`). */
  failures: number;
  /** Exits in a row before listening (reset by a worker that listens). */
  startFailures: number;
  timer: NodeJS.Timeout | null;
}

/** Forks `count` workers and keeps them running; resolves with the primary's exit code once they are all stopped. */
export function superviseWorkers(options: SupervisorOptions): Promise<number> {
  const { count, log } = options;
  const restart = options.restart ?? { baseMs: 500, capMs: 30_000 };
  const maxStartFailures = options.maxStartFailures ?? 3;
  const stableMs = options.stableMs ?? 60_000;
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const slots: Slot[] = Array.from({ length: count }, (_, i) => ({
    index: i + 1,
    worker: null,
    listenedAt: null,
    failures: 0,
    startFailures: 0,
    timer: null,
  }));
  let announced = false;
  const aggregator = new AggregatorRegistry();
  const answerMetrics = (worker: Worker, request: MetricsRequest) => {
    const send = (answer: MetricsAnswer) => {
      if (worker.isConnected()) worker.send(answer);
    };
    aggregator.clusterMetrics().then(
      (text) => send({ bulwark: 'metrics', id: request.id, text }),
      (error: Error) => {
        log.warn({ workerPid: worker.process.pid, err: error.message }, "the node's metrics could not be gathered");
        send({ bulwark: 'metrics', id: request.id, error: error.message });
      },
    );
  };
  let stopping: { code: number; done: (code: number) => void; killTimer: NodeJS.Timeout | null } | null = null;

  return new Promise<number>((resolve) => {
    const fork = (slot: Slot) => {
      slot.timer = null;
      slot.listenedAt = null;
      const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot.index) });
      slot.worker = worker;
      log.info({ worker: slot.index, workerPid: worker.process.pid }, 'worker started');
      worker.on('message', (message: unknown) => {
        if (isMetricsRequest(message)) return answerMetrics(worker, message);
        if (!isListeningMessage(message) || slot.worker !== worker) return;
        slot.listenedAt = Date.now();
        slot.startFailures = 0;
        if (!announced && slots.every((s) => s.listenedAt !== null)) {
          announced = true;
          options.onListening(message);
        }
      });
      worker.on('exit', (code, signal) => exited(slot, worker, code, signal));
    };

    const exited = (slot: Slot, worker: Worker, code: number | null, signal: string | null) => {
      if (slot.worker !== worker) return;
      slot.worker = null;
      const fields = { worker: slot.index, workerPid: worker.process.pid, code, signal };
      if (stopping) {
        // A worker still starting has no handler yet: SIGTERM ends it at once, which is a clean stop too.
        if (code !== 0 && signal !== 'SIGTERM') stopping.code = 1;
        log.info(fields, 'worker stopped');
        if (slots.every((s) => s.worker === null)) finish();
        return;
      }
      const listened = slot.listenedAt !== null;
      if (listened && Date.now() - slot.listenedAt! >= stableMs) slot.failures = 0;
      slot.failures++;
      if (!listened) slot.startFailures++;
      if (slot.startFailures >= maxStartFailures) {
        log.error(
          { ...fields, startFailures: slot.startFailures },
          `worker ${slot.index} exited before listening ${slot.startFailures} times in a row: the node stops`,
        );
        stop(1);
        return;
      }
      const delay = Math.min(restart.capMs, restart.baseMs * 2 ** (slot.failures - 1));
      log.warn({ ...fields, restartInMs: delay, failuresInARow: slot.failures }, `worker ${slot.index} exited: restarting it`);
      slot.timer = setTimeout(() => fork(slot), delay);
    };

    const finish = () => {
      if (!stopping) return;
      for (const signal of signals) process.removeListener(signal, onSignal);
      if (stopping.killTimer) clearTimeout(stopping.killTimer);
      stopping.done(stopping.code);
    };

    const stop = (code: number) => {
      if (stopping) return;
      stopping = { code, done: resolve, killTimer: null };
      for (const slot of slots) {
        if (slot.timer) clearTimeout(slot.timer);
        slot.timer = null;
      }
      const running = slots.filter((s) => s.worker !== null);
      if (running.length === 0) return finish();
      log.info({ workers: running.length }, 'stopping every worker');
      for (const slot of running) slot.worker!.process.kill('SIGTERM');
      stopping.killTimer = setTimeout(() => {
        for (const slot of slots) {
          if (!slot.worker) continue;
          log.error({ worker: slot.index, workerPid: slot.worker.process.pid }, 'worker did not stop in time: killed');
          slot.worker.process.kill('SIGKILL');
        }
        if (stopping) stopping.code = 1;
      }, options.stopTimeoutMs);
      stopping.killTimer.unref();
    };

    const onSignal = (signal: NodeJS.Signals) => {
      log.info({ signal }, 'stop requested: the workers drain and stop');
      stop(0);
    };
    for (const signal of signals) process.on(signal, onSignal);
    for (const slot of slots) fork(slot);
  });
}
