/**
 * Each device connection holds a file descriptor. Past the process's limit on open files, Node
 * can accept no socket at all: a connection beyond it fails at accept() with EMFILE and the device
 * sees nothing, while the node also loses the descriptors it needs for its database, HTTPS and
 * Redis. So the broker holds at most the limit less a reserve, and says so at start when
 * `mqtt.maxConnections` asks for more (docs/operations.md, "Connections per node").
 */
import { readFileSync } from 'node:fs';

/** Descriptors kept for everything but device connections: database, HTTPS clients, Redis, files, logs. */
export const FD_RESERVE = 500;

/** The soft limit on open files from `/proc/self/limits` text; null when it is unlimited or not there. */
export function parseOpenFileLimit(limits: string): number | null {
  const line = limits.split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  return soft && /^\d+$/.test(soft) ? Number(soft) : null;
}

/** This process's soft limit on open files (Linux), or null where it cannot be read. */
export function openFileLimit(): number | null {
  try {
    return parseOpenFileLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return null;
  }
}

/** The connections the broker holds: the configured number, or less where the descriptors cannot hold it. */
export function connectionCeiling(configured: number, fdLimit: number | null): { max: number; capped: boolean } {
  if (fdLimit === null) return { max: configured, capped: false };
  const room = Math.max(1, fdLimit - FD_RESERVE);
  return configured > room ? { max: room, capped: true } : { max: configured, capped: false };
}
