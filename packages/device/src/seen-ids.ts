/**
 * The command IDs a device has already run, so a QoS 1 redelivery (or the platform sending a
 * pending command again after a reconnect or a device restart) never runs a command twice.
 * Bounded: the newest `limit` IDs are kept, in memory and, when a file is given, in an
 * append-only file that is rewritten when it grows to twice the bound.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { writeAtomically } from './identity.js';

export class SeenIds {
  private readonly ids = new Set<string>();
  private lines = 0;

  constructor(
    private readonly file: string | null,
    private readonly limit = 1000,
  ) {
    if (file && existsSync(file)) {
      for (const id of readFileSync(file, 'utf8').split('\n')) if (id) this.remember(id);
      this.lines = this.ids.size;
    }
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** Records the ID (durably, when backed by a file) before the command runs. */
  add(id: string): void {
    this.remember(id);
    if (!this.file) return;
    if (++this.lines > 2 * this.limit) {
      writeAtomically(this.file, [...this.ids].map((i) => `${i}\n`).join(''), 0o600);
      this.lines = this.ids.size;
    } else appendFileSync(this.file, `${id}\n`, { mode: 0o600 });
  }

  private remember(id: string): void {
    this.ids.delete(id);
    this.ids.add(id);
    if (this.ids.size > this.limit) this.ids.delete(this.ids.values().next().value!);
  }
}
