// The Node floor: a minimal SOCKS5 relay that does the handshake (no auth, CONNECT only) and then
// pipe()s both ways. No limits, no registry, no logging. SOCKS Relay should match it.
// Usage: node bench/node-relay.mjs PORT
import * as net from 'node:net';

const port = Number(process.argv[2]);

net
  .createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    let buf = Buffer.alloc(0);
    let stage = 0;
    const onData = (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (stage === 0) {
        if (buf.length < 2 || buf.length < 2 + buf[1]) return;
        buf = buf.subarray(2 + buf[1]);
        client.write(Buffer.from([5, 0]));
        stage = 1;
      }
      if (buf.length < 5) return;
      const atyp = buf[3];
      const alen = atyp === 1 ? 4 : atyp === 4 ? 16 : 1 + buf[4];
      if (buf.length < 4 + alen + 2) return;
      const host =
        atyp === 1
          ? buf.subarray(4, 8).join('.')
          : atyp === 4
            ? buf.subarray(4, 20).toString('hex').match(/.{4}/g).join(':')
            : buf.subarray(5, 5 + buf[4]).toString();
      const dport = buf.readUInt16BE(4 + alen);
      const rest = buf.subarray(4 + alen + 2);
      client.off('data', onData);
      client.pause();
      const target = net.connect({ host, port: dport, allowHalfOpen: true, noDelay: true }, () => {
        client.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
        if (rest.length) client.unshift(rest);
        client.pipe(target);
        target.pipe(client);
      });
      target.on('error', () => client.destroy());
      client.on('error', () => target.destroy());
      client.on('close', () => target.destroy());
      target.on('close', () => client.destroy());
    };
    client.on('data', onData);
    client.on('error', () => client.destroy());
  })
  .listen(port, '127.0.0.1', () => console.log('ready'));

// Same memory probe as bench/proxy-runner.mjs: SIGUSR2 collects garbage when run with --expose-gc.
process.on('SIGUSR2', () => globalThis.gc?.());
