/**
 * When each session's credential expires, for a whole node under one timer: a binary min-heap of
 * the sessions by deadline, with one Timeout armed for the earliest. A session with a timer of its
 * own (a Timeout, its closure and their context, some 250 bytes) held that much for as long as it
 * lasted; here it holds its place in the heap (`expirySlot`) and the heap one slot and one double.
 * Adding and removing cost O(log n); a removed session leaves nothing behind (a disconnected
 * device's session is not kept until its certificate would have expired).
 *
 * Deadlines are on the monotonic clock (performance.now()), as a Timeout's are: a session is cut
 * `ms` after it was added, whatever the wall clock does meanwhile.
 */

/** What the schedule keeps of an item on the item itself: its index in the heap (-1: not scheduled). */
export interface Expiring {
  expirySlot: number;
}

/** Node's timers take at most 2^31 - 1 ms; a later deadline is looked at again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ExpirySchedule<T extends Expiring> {
  private readonly items: T[] = [];
  private readonly deadlines: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** The earliest deadline the armed timer covers (monotonic ms; it fires at or just after it); Infinity when none is armed. */
  private armedFor = Number.POSITIVE_INFINITY;
  private readonly fire = (): void => {
    this.timer = null;
    this.armedFor = Number.POSITIVE_INFINITY;
    this.expireDue();
  };

  constructor(
    /** Called with each item whose deadline has passed, after it left the schedule. */
    private readonly onExpire: (item: T) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.items.length;
  }

  /** Schedules `item` to expire `ms` from now (moving it if it was scheduled already). */
  add(item: T, ms: number): void {
    this.remove(item);
    const deadline = this.now() + Math.max(ms, 0);
    const slot = this.items.length;
    this.items.push(item);
    this.deadlines.push(deadline);
    item.expirySlot = slot;
    this.up(slot);
    if (deadline < this.armedFor) this.arm();
  }

  /** Takes `item` off the schedule; nothing if it is not on it. */
  remove(item: T): void {
    const slot = item.expirySlot;
    if (slot < 0 || this.items[slot] !== item) return;
    item.expirySlot = -1;
    const last = this.items.length - 1;
    const movedItem = this.items.pop()!;
    const movedDeadline = this.deadlines.pop()!;
    if (slot === last) return;
    this.items[slot] = movedItem;
    this.deadlines[slot] = movedDeadline;
    movedItem.expirySlot = slot;
    this.down(slot);
    this.up(slot);
    // The armed timer may now be early (its item left): it finds nothing due and re-arms.
  }

  /** Empties the schedule and stops its timer. */
  clear(): void {
    for (const item of this.items) item.expirySlot = -1;
    this.items.length = 0;
    this.deadlines.length = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  /** Expires every item whose deadline has passed, earliest first, then arms the timer for the next. */
  expireDue(): void {
    const now = this.now();
    while (this.items.length > 0 && this.deadlines[0]! <= now) {
      const item = this.items[0]!;
      this.remove(item);
      this.onExpire(item);
    }
    this.arm();
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Number.POSITIVE_INFINITY;
    if (this.items.length === 0) return;
    const now = this.now();
    const wait = Math.min(Math.max(Math.ceil(this.deadlines[0]! - now), 1), MAX_TIMER_MS);
    this.armedFor = Math.min(this.deadlines[0]!, now + wait);
    this.timer = setTimeout(this.fire, wait);
    this.timer.unref();
  }

  private up(slot: number): void {
    while (slot > 0) {
      const parent = (slot - 1) >> 1;
      if (this.deadlines[parent]! <= this.deadlines[slot]!) return;
      this.swap(slot, parent);
      slot = parent;
    }
  }

  private down(slot: number): void {
    const n = this.items.length;
    for (;;) {
      const left = 2 * slot + 1;
      if (left >= n) return;
      const right = left + 1;
      const child = right < n && this.deadlines[right]! < this.deadlines[left]! ? right : left;
      if (this.deadlines[slot]! <= this.deadlines[child]!) return;
      this.swap(slot, child);
      slot = child;
    }
  }

  private swap(a: number, b: number): void {
    const item = this.items[a]!;
    const deadline = this.deadlines[a]!;
    this.items[a] = this.items[b]!;
    this.deadlines[a] = this.deadlines[b]!;
    this.items[b] = item;
    this.deadlines[b] = deadline;
    this.items[a]!.expirySlot = a;
    item.expirySlot = b;
  }
}
