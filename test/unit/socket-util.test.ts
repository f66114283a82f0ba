/** resetOrDestroy: found by the live fuzz (a client's FIN then RST made the relay reset a socket it was still ending). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { resetOrDestroy } from '../../src/core/socket-util';

async function pair(): Promise<{ a: net.Socket; b: net.Socket; done: () => void }> {
  const server = net.createServer({ allowHalfOpen: true });
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise((r) => a.once('connect', r));
  const b = await accepted;
  for (const s of [a, b]) s.on('error', () => undefined);
  return { a, b, done: () => (b.destroy(), server.close()) };
}

const closes = (s: net.Socket, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });

test('resetOrDestroy: a socket whose end() is still pending is closed, not leaked (plain resetAndDestroy never closes it)', async () => {
  const { a, done } = await pair();
  try {
    a.end();
    resetOrDestroy(a);
    assert.ok(await closes(a, 1_000), "'close' arrives: the handle was closed");
  } finally {
    done();
  }
});

test('resetOrDestroy: an open socket is reset (the peer sees ECONNRESET)', async () => {
  const { a, b, done } = await pair();
  try {
    const err = new Promise<string | undefined>((r) => {
      b.once('error', (e: NodeJS.ErrnoException) => r(e.code));
      b.once('end', () => r('end'));
    });
    resetOrDestroy(a);
    assert.equal(await err, 'ECONNRESET');
  } finally {
    done();
  }
});
