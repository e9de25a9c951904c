/**
 * The node's Prometheus metrics. Process metrics come
 * without the exact Node version; every answer of the HTTPS server is counted by route pattern
 * (`/api/v1/devices/:id`, or `unmatched`) and status, including the answers made before a route
 * is found; the MQTT gateway's counters are read at scrape time from its stats object, each
 * field of it, so a field added there appears without an edit here.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Aggregator } from 'prom-client';

const PREFIX = 'bulwark_';

export class Metrics {
  readonly registry = new Registry();
  private readonly duration = new Histogram({
    name: `${PREFIX}http_request_duration_seconds`,
    help: 'HTTP answers by method, route pattern (unmatched when no route matched) and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  /** A worker's scrape of the whole node (runner/workers.ts): every worker's metrics, summed by the primary. */
  private nodeWide: (() => Promise<string>) | null = null;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    // The exact Node version tells an attacker which CVEs apply; operators know it from their deployment.
    this.registry.removeSingleMetric(`${PREFIX}nodejs_version_info`);
  }

  /**
   * Times every request the server receives, from its arrival to the end of its answer, labelled
   * by the pattern of the route it matched. A raw-server listener sees the answers made outside
   * Fastify's hooks too (a malformed URL, a path parameter over the limit).
   */
  instrument(app: FastifyInstance): void {
    const routes = new WeakMap<IncomingMessage, string>();
    app.addHook('onRequest', async (request) => {
      const pattern = request.routeOptions.url;
      if (pattern) routes.set(request.raw, pattern);
    });
    app.server.on('request', (req: IncomingMessage, res) => {
      const started = process.hrtime.bigint();
      res.once('close', () => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        this.duration.observe(
          { method: req.method ?? 'UNKNOWN', route: routes.get(req) ?? 'unmatched', status: String(res.statusCode) },
          seconds,
        );
      });
    });
  }

  /** Every (method, route pattern, status) answered so far, with how many times. */
  async answers(): Promise<Array<{ method: string; route: string; status: number; count: number }>> {
    const { values } = await this.duration.get();
    return values
      .filter((v) => v.metricName?.endsWith('_count'))
      .map((v) => ({ method: String(v.labels.method), route: String(v.labels.route), status: Number(v.labels.status), count: v.value }));
  }

  /** Scrapes of the node answer `source` (what every worker holds) instead of this process's registry. */
  aggregateThrough(source: () => Promise<string>): void {
    this.nodeWide = source;
  }

  /** The text of a scrape: the node's (every worker's, summed) or this process's only. */
  exposition(scope: 'node' | 'process'): Promise<string> {
    return scope === 'node' && this.nodeWide ? this.nodeWide() : this.registry.metrics();
  }

  /**
   * A gauge read at each scrape. `aggregator` says how the node's scrape combines the workers'
   * values (prom-client's: the sum by default; `omit` keeps it out of the node's answer).
   */
  gauge(name: string, help: string, read: () => number, aggregator: Aggregator = 'sum'): void {
    new Gauge({
      name: `${PREFIX}${name}`,
      help,
      aggregator,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** `name{event="snake_case_field"}` for each numeric field of the object `read` returns, read at each scrape. */
  countersOf(name: string, help: string, read: () => object): void {
    new Counter({
      name: `${PREFIX}${name}`,
      help,
      labelNames: ['event'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [field, value] of Object.entries(read())) {
          if (typeof value === 'number') this.inc({ event: field.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase() }, value);
        }
      },
    });
  }
}
