import * as dgram from 'node:dgram';
import { isIP } from 'node:net';
import { Endpoint, endpoint, formatEndpoint, normalizeIp } from '../address';
import { Cancellation } from '../cancel';
import type { ConnectionContext } from '../context';
import type { Dialer, UdpPath } from '../dialer';
import { describeError, Reply } from '../errors';
import type { Session } from '../registry';
import type { ClientStream } from '../transport';
import { printableEndpoint, undeliverable } from '../udp-destination';
import { decodeUdpHeader, encodeReply, encodeUdpHeader } from './protocol';

/** One UDP ASSOCIATE: a client-facing relay socket, outbound paths per route, and their lifetime. */
export class UdpAssociation {
  private relaySocket: dgram.Socket | undefined;
  private readonly clientIp: string;
  private clientPort: number | undefined;
  /** The relay socket is connect()ed to the client once its port is known (see connectToClient). */
  private connected = false;
  private readonly paths = new Map<Dialer, UdpPath | Promise<UdpPath | undefined>>();
  private lastActivity = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private done = false;
  private readonly headerCache = new Map<string, Buffer>();
  private readonly abort = new Cancellation();

  constructor(
    private readonly control: ClientStream,
    private readonly ctx: ConnectionContext,
    private readonly session: Session,
    hint: Endpoint,
    private readonly tag: string,
  ) {
    this.clientIp = normalizeIp(control.remoteAddress);
    // RFC 1928: DST.PORT is the port the client will send from; 0 means "not known yet".
    this.clientPort = hint.port !== 0 ? hint.port : undefined;
  }

  async open(): Promise<void> {
    const localIp = normalizeIp(this.control.localAddress);
    const sock = dgram.createSocket({ type: isIP(localIp) === 6 ? 'udp6' : 'udp4' });
    this.relaySocket = sock;
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, localIp, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    sock.on('error', (err) => this.ctx.logger.debug(`${this.tag}: UDP relay socket: ${err.message}`));
    sock.on('message', (msg, rinfo) => {
      // The last line of defence: a datagram is client input and must never end the process.
      try {
        this.fromClient(msg, rinfo);
      } catch (err) {
        this.drop(`internal error: ${describeError(err)}`);
      }
    });
    if (this.clientPort !== undefined) this.connectToClient(this.clientPort);
    const bound = endpoint(localIp, sock.address().port);
    this.control.write(encodeReply(Reply.SUCCEEDED, bound));
    this.session.update({ state: 'open' });
    this.ctx.logger.debug(`${this.tag}: UDP ASSOCIATE relaying on ${formatEndpoint(bound)}`);
    // The association lives as long as its TCP connection (RFC 1928 section 7); drain anything sent on it.
    this.control.on('data', () => undefined);
    this.control.on('end', () => this.teardown('ok'));
    this.control.on('close', () => this.teardown('ok'));
    this.control.on('error', (err) => this.teardown(`control connection: ${err.message}`));
    this.control.resume();
    const idle = this.ctx.options.udpIdleTimeoutMs;
    if (idle > 0) {
      this.idleTimer = setInterval(() => {
        if (Date.now() - this.lastActivity >= idle) this.teardown(`UDP idle for ${idle} ms`);
      }, Math.max(50, Math.min(idle / 4, 5_000)));
      this.idleTimer.unref();
    }
    this.session.closer = { close: (reason) => this.teardown(reason) };
    // A FIN that came with the request may have ended the stream before the 'end' listener above (while the
    // relay socket was being bound): the association ends as at any later FIN, once the reply is out.
    if (this.control.readableEnded) this.control.end(() => this.teardown('ok'));
  }

  teardown(reason: string): void {
    if (this.done) return;
    this.done = true;
    this.abort.abort();
    clearInterval(this.idleTimer);
    this.relaySocket?.close();
    for (const p of this.paths.values()) {
      if (p instanceof Promise) void p.then((path) => path?.close());
      else p.close();
    }
    this.paths.clear();
    this.ctx.releaseUdp();
    if (reason !== 'ok') this.ctx.logger.debug(`${this.tag}: UDP association ended: ${reason}`);
    this.session.close(reason);
    if (!this.control.destroyed) this.control.destroy();
  }

  private fromClient(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (normalizeIp(rinfo.address) !== this.clientIp) return; // only the client may use its association
    if (this.clientPort === undefined) {
      this.clientPort = rinfo.port;
      this.connectToClient(rinfo.port);
    } else if (rinfo.port !== this.clientPort) return;
    this.lastActivity = Date.now();
    let datagram;
    try {
      datagram = decodeUdpHeader(msg);
    } catch (err) {
      this.drop(`malformed: ${describeError(err)}`);
      return;
    }
    if (datagram.frag !== 0) {
      this.drop(`fragment ${datagram.frag} (fragmentation is not supported)`, datagram.destination);
      return;
    }
    // RFC 1928 section 7: the relay drops datagrams it cannot relay, silently to the client.
    const bad = undeliverable(datagram.destination);
    if (bad !== undefined) {
      this.drop(bad, datagram.destination);
      return;
    }
    const decision = this.ctx.router.decide(datagram.destination, { command: 'udp-associate', user: this.session.user });
    if (this.session.destination === undefined || this.session.route === undefined) {
      this.session.update({ destination: formatEndpoint(datagram.destination), route: decision.route, routeInfo: decision.info });
    }
    if (decision.action === 'block') {
      this.drop(`blocked by ${decision.route}`, datagram.destination);
      return;
    }
    this.session.countDatagram('up', datagram.payload.length);
    const path = this.paths.get(decision.dialer);
    if (path && !(path instanceof Promise)) {
      path.send(datagram.destination, datagram.payload);
      return;
    }
    const pending = path ?? this.openPath(decision.dialer);
    const { destination, payload } = datagram;
    void pending.then((p) => {
      if (this.done) return;
      if (!p) {
        this.onPathDrop(destination, payload.length, 'no UDP path for its route');
        return;
      }
      try {
        p.send(destination, payload);
      } catch (err) {
        // Outside the message handler's guard: a throw here would be an unhandled rejection.
        this.onPathDrop(destination, payload.length, `internal error: ${describeError(err)}`);
      }
    });
  }

  /** A datagram dropped before it was counted as relayed; the debug line says why. */
  private drop(reason: string, destination?: Endpoint): void {
    this.session.countDropped();
    if (this.ctx.logger.debugEnabled !== false) {
      this.ctx.logger.debug(`${this.tag}: dropped UDP datagram${destination ? ` to ${printableEndpoint(destination)}` : ''}: ${reason}`);
    }
  }

  /** A path could not send a datagram it was handed (already counted as relayed, so that count is taken back). */
  private readonly onPathDrop = (destination: Endpoint, bytes: number, reason: string): void => {
    if (this.done) return;
    this.session.countDropped(bytes);
    if (this.ctx.logger.debugEnabled !== false) this.ctx.logger.debug(`${this.tag}: dropped UDP datagram to ${printableEndpoint(destination)}: ${reason}`);
  };

  /**
   * The relay socket talks to one client endpoint only: connected to it, the kernel drops datagrams from
   * anyone else, and each answer is sent without an address (no lookup and route per datagram in Node and
   * the kernel). Until the connect completes, answers carry the address.
   */
  private connectToClient(port: number): void {
    // The callback also gets a failed connect's error: then answers keep carrying the address.
    this.relaySocket?.connect(port, this.clientIp, (err?: Error) => {
      if (err) this.ctx.logger.debug(`${this.tag}: UDP relay socket: connect to the client failed: ${describeError(err)}`);
      else this.connected = true;
    });
  }

  private openPath(dialer: Dialer): Promise<UdpPath | undefined> {
    const pending = (dialer.openUdp ? dialer.openUdp((src, payload) => this.toClient(src, payload), { signal: this.abort.signal, route: this.session, onDrop: this.onPathDrop }) : Promise.reject(new Error(`UDP is not supported through ${dialer.label}`))).then(
      (path) => {
        if (this.done) {
          path.close();
          return undefined;
        }
        this.paths.set(dialer, path);
        return path;
      },
      (err: unknown) => {
        this.paths.delete(dialer);
        this.ctx.logger.warn(`${this.tag}: UDP through ${dialer.label} failed: ${describeError(err)}`);
        return undefined;
      },
    );
    this.paths.set(dialer, pending);
    return pending;
  }

  private toClient(source: Endpoint, payload: Buffer): void {
    if (this.done || this.clientPort === undefined || !this.relaySocket) return;
    this.lastActivity = Date.now();
    this.session.countDatagram('down', payload.length);
    // An answer comes from the network (or an upstream), not the client, but must not end the process
    // either: encodeUdpHeader and dgram.send throw on what they cannot handle.
    try {
      const key = `${source.host}|${source.port}`;
      let header = this.headerCache.get(key);
      if (!header) {
        if (this.headerCache.size >= 1024) this.headerCache.clear();
        header = encodeUdpHeader(source);
        this.headerCache.set(key, header);
      }
      // A list of buffers goes out as one datagram without copying the payload.
      if (this.connected) this.relaySocket.send([header, payload]);
      else this.relaySocket.send([header, payload], this.clientPort, this.clientIp);
    } catch (err) {
      this.ctx.logger.debug(`${this.tag}: UDP answer from ${printableEndpoint(source)} not delivered: ${describeError(err)}`);
    }
  }
}
