/**
 * Deadlines for many keys on one timer, instead of a setTimeout (a Timeout object and a timer-list insert)
 * per key: handshake deadlines per connection, connect deadlines per dial. Entries are kept in insertion
 * order, so with one fixed duration the first entry is always the next to expire. (An entry added with a
 * shorter duration than earlier ones, e.g. after a setting was lowered, may wait until they expire.)
 */
export class DeadlineQueue<K> {
  private readonly entries = new Map<K, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly expire: (key: K) => void) {}

  add(key: K, ms: number): void {
    this.entries.set(key, Date.now() + ms);
    if (this.timer === undefined) this.arm(ms);
  }

  /** Idempotent. */
  delete(key: K): void {
    this.entries.delete(key);
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private readonly sweep = (): void => {
    this.timer = undefined;
    const now = Date.now();
    for (const [key, deadline] of this.entries) {
      if (deadline > now) {
        this.arm(deadline - now);
        return;
      }
      this.entries.delete(key);
      this.expire(key);
    }
  };

  private arm(ms: number): void {
    // Never holds the process open: whatever the deadline guards (a socket) does that.
    this.timer = setTimeout(this.sweep, ms);
    this.timer.unref();
  }
}
