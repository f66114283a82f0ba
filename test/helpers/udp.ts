/** A hand-rolled SOCKS5 UDP ASSOCIATE client for tests: the control connection, a client socket and the relay's address. */
import * as dgram from 'node:dgram';
import { rawConnect, RawConnection } from './socks';
import { decodeReply } from '../../src/core/socks5/protocol';

export interface Association {
  control: RawConnection;
  client: dgram.Socket;
  relay: { host: string; port: number };
  /** Sends raw bytes (header included) from the client socket to the relay. */
  send(datagram: Buffer): void;
  /** The next datagram the relay sends the client, or undefined after `timeoutMs`. */
  next(timeoutMs: number): Promise<Buffer | undefined>;
  close(): void;
}

/** Greets (no auth, or RFC 1929 with `auth`), asks UDP ASSOCIATE with the client socket's port as DST.PORT. */
export async function associate(proxyPort: number, auth?: { username: string; password: string }): Promise<Association> {
  const client = dgram.createSocket('udp4');
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  const control = await rawConnect(proxyPort);
  if (auth) {
    control.write([5, 1, 2]);
    const sel = await control.read(2);
    if (sel[1] !== 2) throw new Error(`method 0x${sel.toString('hex')}`);
    const u = Buffer.from(auth.username);
    const p = Buffer.from(auth.password);
    control.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
    const st = await control.read(2);
    if (st[1] !== 0) throw new Error('authentication refused');
  } else {
    control.write([5, 1, 0]);
    await control.read(2);
  }
  const port = client.address().port;
  control.write([5, 3, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff]);
  const head = await control.read(4);
  const rest = await control.read(head[3] === 4 ? 18 : 6);
  const r = decodeReply(Buffer.concat([head, rest]));
  if (!r || r.value.reply !== 0) throw new Error(`UDP ASSOCIATE refused: ${Buffer.concat([head, rest]).toString('hex')}`);
  const relay = { host: r.value.bound.host, port: r.value.bound.port };
  const inbox: Buffer[] = [];
  let waiter: (() => void) | undefined;
  client.on('message', (m) => {
    inbox.push(m);
    waiter?.();
  });
  return {
    control,
    client,
    relay,
    send: (d) => client.send(d, relay.port, relay.host),
    next: (timeoutMs) =>
      new Promise((resolve) => {
        if (inbox.length > 0) return resolve(inbox.shift());
        const t = setTimeout(() => {
          waiter = undefined;
          resolve(undefined);
        }, timeoutMs);
        waiter = () => {
          clearTimeout(t);
          waiter = undefined;
          resolve(inbox.shift());
        };
      }),
    close: () => {
      control.socket.destroy();
      client.close();
    },
  };
}

/** RSV RSV FRAG ATYP ADDR PORT DATA with the address bytes as given (`addr` starts with ATYP). */
export function rawDatagram(addr: number[], port: number, payload: string | Buffer, frag = 0): Buffer {
  return Buffer.concat([Buffer.from([0, 0, frag, ...addr, port >> 8, port & 0xff]), Buffer.from(payload)]);
}

/** ATYP X'03' with a name given as bytes or text (length byte included). */
export function domainAddr(name: string | Buffer): number[] {
  const b = Buffer.from(name);
  return [3, b.length, ...b];
}
