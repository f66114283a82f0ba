/**
 * Keep-alive connections to origins for HTTP forward mode, kept between requests of any client that takes
 * the same route as the same user to the same origin. A connection comes back only after a complete
 * response on a connection both sides keep alive (node:http decides that: it emits 'free'), and while idle
 * it is watched: the origin closing it, an error, or bytes nobody asked for remove it. Bounded per key and
 * in total, and idle-timed (one sweep timer, not a timer per connection).
 */
import type { Socket } from 'node:net';
import type { Dialer } from '../dialer';

export interface OriginPoolOptions {
  /** Idle connections kept per (route, user, origin). */
  readonly maxIdlePerKey?: number;
  /** Idle connections kept in all. */
  readonly maxIdle?: number;
  /** An idle connection is closed after this long (ms). */
  readonly idleMs?: number;
}

interface Idle {
  readonly socket: Socket;
  readonly key: string;
  readonly since: number;
}

const kIdle = Symbol('socks-relay.pool-idle');
type Pooled = Socket & { [kIdle]?: Idle; [kPool]?: OriginPool };
const kPool = Symbol('socks-relay.pool');

export class OriginPool {
  private readonly byKey = new Map<string, Idle[]>();
  private size = 0;
  private readonly maxIdlePerKey: number;
  private readonly maxIdle: number;
  private readonly idleMs: number;
  private sweep: NodeJS.Timeout | undefined;
  private readonly dialerIds = new WeakMap<Dialer, number>();
  private nextDialerId = 1;
  /** Connections reused and connections handed in, for tests and the bench. */
  reused = 0;

  constructor(options: OriginPoolOptions = {}) {
    this.maxIdlePerKey = options.maxIdlePerKey ?? 64;
    this.maxIdle = options.maxIdle ?? 512;
    this.idleMs = options.idleMs ?? 15_000;
  }

  /** The pool key: connections are never shared between routes (dialers) or users. */
  key(dialer: Dialer, user: string | undefined, host: string, port: number): string {
    let id = this.dialerIds.get(dialer);
    if (id === undefined) {
      id = this.nextDialerId++;
      this.dialerIds.set(dialer, id);
    }
    return `${id}\0${user ?? ''}\0${host}\0${port}`;
  }

  get idle(): number {
    return this.size;
  }

  /** An idle connection for `key`, newest first (the likeliest still open), or undefined. */
  take(key: string): Socket | undefined {
    const list = this.byKey.get(key);
    for (let entry = list?.pop(); entry; entry = list?.pop()) {
      this.size--;
      const s = entry.socket as Pooled;
      unwatch(s);
      if (s.destroyed || !s.writable || s.readableEnded) {
        s.destroy();
        continue;
      }
      if (list?.length === 0) this.byKey.delete(key);
      this.reused++;
      return s;
    }
    this.byKey.delete(key);
    return undefined;
  }

  /** A connection whose exchange completed and that both sides keep alive; closed if the pool is full. */
  give(key: string, socket: Socket): void {
    const s = socket as Pooled;
    if (s.destroyed || !s.writable || s.readableEnded) {
      s.destroy();
      return;
    }
    let list = this.byKey.get(key);
    if (!list) this.byKey.set(key, (list = []));
    if (list.length >= this.maxIdlePerKey || this.size >= this.maxIdle) {
      s.destroy();
      return;
    }
    const entry: Idle = { socket: s, key, since: Date.now() };
    list.push(entry);
    this.size++;
    s[kIdle] = entry;
    s[kPool] = this;
    s.setTimeout(0);
    s.on('data', onIdleData);
    s.on('end', onIdleGone);
    s.on('close', onIdleGone);
    s.on('error', onIdleGone);
    s.resume();
    this.armSweep();
  }

  /** Closes every idle connection (the proxy stops, or the routes changed). */
  clear(): void {
    for (const list of this.byKey.values()) {
      for (const e of list) {
        unwatch(e.socket as Pooled);
        e.socket.destroy();
      }
    }
    this.byKey.clear();
    this.size = 0;
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = undefined;
  }

  /** Removes one idle entry (it closed or misbehaved). */
  drop(entry: Idle): void {
    const list = this.byKey.get(entry.key);
    const i = list?.indexOf(entry) ?? -1;
    if (list && i >= 0) {
      list.splice(i, 1);
      this.size--;
      if (list.length === 0) this.byKey.delete(entry.key);
    }
    unwatch(entry.socket as Pooled);
    entry.socket.destroy();
  }

  private armSweep(): void {
    if (this.sweep) return;
    this.sweep = setInterval(() => {
      const cutoff = Date.now() - this.idleMs;
      for (const list of [...this.byKey.values()]) {
        // Oldest first: entries are pushed in time order.
        while (list.length > 0 && list[0].since <= cutoff) this.drop(list[0]);
      }
      if (this.size === 0 && this.sweep) {
        clearInterval(this.sweep);
        this.sweep = undefined;
      }
    }, Math.max(250, Math.min(this.idleMs / 4, 5_000)));
    this.sweep.unref();
  }
}

function unwatch(s: Pooled): void {
  s.off('data', onIdleData);
  s.off('end', onIdleGone);
  s.off('close', onIdleGone);
  s.off('error', onIdleGone);
  s[kIdle] = undefined;
  s[kPool] = undefined;
}

// Shared listeners (no closures per connection): an idle connection that speaks, ends or fails is dropped.
function onIdleData(this: Pooled): void {
  const e = this[kIdle];
  if (e) this[kPool]?.drop(e);
  else this.destroy();
}

function onIdleGone(this: Pooled): void {
  const e = this[kIdle];
  if (e) this[kPool]?.drop(e);
}
