/**
 * Bounds the audit entries that anonymous callers can cause. The first occurrence of a kind (say, a
 * refused device certificate for one reason from one address) in a window is recorded; the rest of
 * that window are only counted, and the count goes into the next recorded entry of that kind. So a
 * flood of refused requests costs the log one entry per kind, source and window, while every
 * refusal still reaches the node's log. In memory, per node, bounded in size.
 */
export class RepeatSampler {
  private readonly windows = new Map<string, { start: number; unrecorded: number }>();

  constructor(
    readonly windowMs = 60_000,
    private readonly maxKeys = 10_000,
  ) {}

  /** Whether to record this occurrence, and how many of its kind went unrecorded since the last one recorded. */
  admit(key: string, now: number): { record: boolean; unrecorded: number } {
    const window = this.windows.get(key);
    if (window && now - window.start < this.windowMs) {
      window.unrecorded++;
      return { record: false, unrecorded: 0 };
    }
    if (!window && this.windows.size >= this.maxKeys) this.prune(now);
    this.windows.set(key, { start: now, unrecorded: 0 });
    return { record: true, unrecorded: window?.unrecorded ?? 0 };
  }

  private prune(now: number): void {
    for (const [key, window] of this.windows) if (now - window.start >= this.windowMs) this.windows.delete(key);
    // Under a flood of more kinds than the bound, forgetting is better than exhausting memory.
    if (this.windows.size >= this.maxKeys) this.windows.clear();
  }
}
