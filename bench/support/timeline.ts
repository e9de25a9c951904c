/**
 * What held the broker's PUBACKs up, moment by moment (bench:ingest --timeline): the load
 * generator writes each acknowledged publish's send time and latency (mqtt-load.ts
 * `timelineFile`), the broker's process records here its garbage-collection pauses, its
 * event-loop stalls and the telemetry log's slices (which hold the writer thread) on the same clock (performance.timeOrigin + now), and the two are joined in
 * windows of WINDOW_MS. A window is slow when at least a tenth of its PUBACKs took over SLOW_MS;
 * the report says which slow windows had a major collection or a stall in them or just before.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { PerformanceObserver, constants } from 'node:perf_hooks';

const WINDOW_MS = 100;
const SLOW_MS = 30;
/** A timer due every TICK_MS that fires STALL_MS late or more: the event loop was held that long. */
const TICK_MS = 5;
const STALL_MS = 20;

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental marking',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
};

interface BrokerEvent {
  at: number;
  what: string;
  ms: number;
}

export class BrokerTimeline {
  private readonly events: BrokerEvent[] = [];
  private readonly gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind ?? -1;
      this.events.push({ at: performance.timeOrigin + entry.startTime, what: GC_KINDS[kind] ?? `gc ${kind}`, ms: entry.duration });
    }
  });
  private ticker: NodeJS.Timeout | null = null;

  /** `slices`: the telemetry log mover's slices and their time so far (its stats), polled each tick: a slice is recorded when it ended. */
  start(slices?: () => { count: number; ms: number }): void {
    this.gc.observe({ entryTypes: ['gc'] });
    let last = performance.now();
    let moved = slices?.();
    this.ticker = setInterval(() => {
      const now = performance.now();
      if (now - last - TICK_MS >= STALL_MS)
        this.events.push({ at: performance.timeOrigin + last, what: 'event-loop stall', ms: now - last });
      last = now;
      const next = slices?.();
      if (moved && next && next.count > moved.count) {
        const ms = next.ms - moved.ms;
        const what = next.count - moved.count > 1 ? `${next.count - moved.count} log slices` : 'log slice';
        this.events.push({ at: performance.timeOrigin + now - ms, what, ms });
      }
      moved = next;
    }, TICK_MS);
  }

  stop(): void {
    this.gc.disconnect();
    if (this.ticker) clearInterval(this.ticker);
  }

  /**
   * Joins the generator's `timelineFile` with the broker's events, writes the windows to `out`
   * (one line each: seconds from the first publish, PUBACKs, over SLOW_MS, the slowest, and the
   * broker's events), and returns a one-line summary.
   */
  report(generatorFile: string, out: string): string {
    const sends = readFileSync(generatorFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split(' ').map(Number) as [number, number]);
    if (sends.length === 0) return 'timeline: no PUBACK recorded';
    const first = Math.min(...sends.map(([at]) => at));
    const windows = new Map<number, { acks: number; slow: number; max: number }>();
    let slowAcks = 0;
    for (const [at, latency] of sends) {
      const w = Math.floor((at - first) / WINDOW_MS);
      const window = windows.get(w) ?? { acks: 0, slow: 0, max: 0 };
      window.acks++;
      if (latency > SLOW_MS) {
        window.slow++;
        slowAcks++;
      }
      window.max = Math.max(window.max, latency);
      windows.set(w, window);
    }
    const eventsNear = (w: number) =>
      this.events.filter((e) => e.at - first >= (w - 1) * WINDOW_MS && e.at - first < (w + 1) * WINDOW_MS && e.what !== 'scavenge');
    const lines: string[] = [];
    let slowWindows = 0;
    let withMajor = 0;
    let withStall = 0;
    let withSlice = 0;
    let acksInSlowWindows = 0;
    for (const [w, window] of [...windows].sort(([a], [b]) => a - b)) {
      const near = eventsNear(w);
      const slow = window.slow >= window.acks / 10;
      if (slow) {
        slowWindows++;
        acksInSlowWindows += window.slow;
        if (near.some((e) => e.what === 'mark-compact')) withMajor++;
        if (near.some((e) => e.what === 'event-loop stall')) withStall++;
        if (near.some((e) => e.what.includes('log slice'))) withSlice++;
      }
      lines.push(
        `${((w * WINDOW_MS) / 1000).toFixed(1)} s  ${window.acks} PUBACKs, ${window.slow} over ${SLOW_MS} ms, slowest ${window.max.toFixed(0)} ms${slow ? '  SLOW' : ''}` +
          (near.length > 0
            ? `  | ${near.map((e) => `${((e.at - first) / 1000).toFixed(2)} s ${e.what} ${e.ms.toFixed(1)} ms`).join('; ')}`
            : ''),
      );
    }
    writeFileSync(out, lines.join('\n') + '\n');
    const scavenges = this.events.filter((e) => e.what === 'scavenge').length;
    const majors = this.events.filter((e) => e.what === 'mark-compact').length;
    return (
      `timeline (${out}): ${slowWindows} of ${windows.size} windows of ${WINDOW_MS} ms slow (a tenth of their PUBACKs over ${SLOW_MS} ms), ` +
      `holding ${acksInSlowWindows} of the ${slowAcks} PUBACKs over ${SLOW_MS} ms; ${withMajor} with a mark-compact in or just before them, ${withStall} with an event-loop stall of ${STALL_MS} ms or more, ${withSlice} with a slice of the telemetry log; ` +
      `${majors} mark-compacts and ${scavenges} scavenges in all (from the open loop's connect phase on)`
    );
  }
}
