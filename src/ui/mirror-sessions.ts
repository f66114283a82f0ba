/**
 * The sessions of a relay another window owns, as its batches describe them: what the Sessions view and
 * the status bar of an attached window read instead of a registry of their own. Pure.
 */
import type { SessionInfo, Totals } from '../core/registry';
import type { SessionBatch } from '../core/shared/protocol';

/** What the views read: a SessionRegistry or a mirror of another window's. */
export interface SessionSource {
  readonly size: number;
  snapshot(): SessionInfo[];
  recentlyClosed(): readonly SessionInfo[];
  totals(): Totals;
}

const ZERO: Totals = { active: 0, opened: 0, bytesUp: 0, bytesDown: 0, datagramsUp: 0, datagramsDown: 0, droppedDatagrams: 0 };

export class MirrorSessions implements SessionSource {
  private live: readonly SessionInfo[] = [];
  private closed: SessionInfo[] = [];
  private sums: Totals = ZERO;

  constructor(private readonly keepClosed = 100) {}

  apply(batch: SessionBatch): void {
    this.live = batch.live;
    if (batch.reset) this.closed = [];
    if (batch.closed.length > 0) {
      this.closed.push(...batch.closed);
      if (this.closed.length > this.keepClosed) this.closed.splice(0, this.closed.length - this.keepClosed);
    }
    this.sums = batch.totals;
  }

  clear(): void {
    this.live = [];
    this.closed = [];
    this.sums = ZERO;
  }

  clearClosed(): void {
    this.closed = [];
  }

  get size(): number {
    return this.live.length;
  }

  snapshot(): SessionInfo[] {
    return [...this.live];
  }

  recentlyClosed(): readonly SessionInfo[] {
    return this.closed;
  }

  totals(): Totals {
    return this.sums;
  }
}
