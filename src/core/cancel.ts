/**
 * Cancellation for dials. The engine needs only this much of AbortSignal, and AbortSignal satisfies it
 * (health checks and upstream deadlines still use AbortController). Handlers create a Cancellation per
 * request instead: an AbortController is an EventTarget, whose creation and listener bookkeeping showed up
 * at about 20 µs of the proxy's CPU per connection in `--cpu-prof` (bench/, connection rate).
 */
import { ProxyError } from './errors';

export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

// One shared reason: a client leaving mid-dial is routine, and a new Error per abort would build a stack.
const ABORTED = new ProxyError('DIAL_FAILED', 'aborted');

export class Cancellation implements CancelSignal {
  aborted = false;
  reason: unknown = undefined;
  // Almost always zero or one listener (the dial in progress).
  private listeners: (() => void)[] | undefined;

  get signal(): CancelSignal {
    return this;
  }

  /** Like AbortController.abort(): listeners run once, in order; later calls do nothing. */
  abort(reason: unknown = ABORTED): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const l of listeners) l();
  }

  // Every listener here is a once-listener (abort fires at most once), as with CancelSignal's { once: true }.
  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners?.splice(i, 1);
  }
}
